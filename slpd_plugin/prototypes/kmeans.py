"""Batched k-means: every slide clustered at once on a padded tensor.

Shapes: S = slides, L = padded regions per slide, D = embedding dim, K = clusters,
R = restarts.

Why hand-written: the original calls faiss once per slide, which pays Python and
faiss set-up costs S times for problems of ~60 points. Here one padded ``(S, L, D)``
tensor is clustered in a single batched pass (all slides and all restarts share each
matrix multiply), on whatever device the tensor is on. ``benchmarks/prototypes.py``
measures the difference against the per-slide faiss loop.

Randomness is keyed by slide id, not drawn from one shared stream: slide ``i`` in
restart ``r`` always gets the same numbers whatever other slides are in the batch, so
clustering a shard of slides on one rank gives bit-identical results to clustering all
slides at once.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .seeding import slide_uniforms

INITS = ('kmeans++', 'random')
_CHUNK_BYTES = 256 * 2**20


class KMeansResult(NamedTuple):
    """Output of a batched k-means.

    Attributes:
        centroids: Cluster centres with shape (S, K, D).
        assignments: Index of each point's cluster with shape (S, L); -1 at masked
            positions.
        inertia: Sum over each slide's valid points of the distance to their centroid
            (squared L2, or ``1 - cos`` when spherical) with shape (S,).
    """

    centroids: Tensor
    assignments: Tensor
    inertia: Tensor


def batched_kmeans(x: Tensor, mask: Tensor, k: int, iters: int = 10, restarts: int = 5,
                   seed: int = 0, init: str = 'kmeans++', spherical: bool = False,
                   slide_ids: Tensor | None = None) -> KMeansResult:
    """Lloyd's k-means on every slide of a padded batch at once.

    Each restart is initialised by k-means++ (D² sampling) or by ``k`` distinct random
    points, runs ``iters`` Lloyd iterations, and the restart with the lowest inertia is
    kept for each slide separately. A cluster that becomes empty is re-seeded with the
    point farthest from its current centroid. The returned assignments and inertia are
    those of the returned centroids.

    A slide with fewer than ``k`` valid points gets duplicated points as its extra
    centroids (their clusters are empty); a slide with no valid point gets zero
    centroids, inertia 0 and all assignments -1.

    Args:
        x: Points with shape (S, L, D). Values at masked positions are ignored.
        mask: Validity of each point with shape (S, L), bool.
        k: Number of clusters K.
        iters: Lloyd iterations per restart. Defaults to 10.
        restarts: Independent initialisations per slide. Defaults to 5.
        seed: Seed of the random stream. Defaults to 0.
        init: ``'kmeans++'`` or ``'random'``. Defaults to ``'kmeans++'``.
        spherical: Cluster by cosine similarity: points and centroids are L2-normalised
            and the distance is ``1 - cos``. Defaults to False (squared L2).
        slide_ids: Key of each slide's random stream with shape (S,), long, >= 0.
            Defaults to ``arange(S)``.

    Returns:
        KMeansResult: centroids (S, K, D), assignments (S, L), inertia (S,).
    """
    if x.dim() != 3:
        raise ValueError(f'x must have shape (S, L, D), got {tuple(x.shape)}')
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f'mask must be a bool tensor of shape {tuple(x.shape[:2])}, '
                         f'got {mask.dtype} {tuple(mask.shape)}')
    if k < 1 or iters < 0 or restarts < 1:
        raise ValueError(f'need k >= 1, iters >= 0, restarts >= 1; got k={k}, '
                         f'iters={iters}, restarts={restarts}')
    if init not in INITS:
        raise ValueError(f'init must be one of {INITS}, got {init!r}')
    num_slides, length, dim = x.shape
    if slide_ids is None:
        slide_ids = torch.arange(num_slides)
    uniforms = slide_uniforms(seed, slide_ids, restarts, k).to(x.device)
    # Per slide: x, distances/one-hots (L * R * K each) and restart centroids.
    per_slide = 4 * (length * dim + 3 * length * restarts * k + 2 * restarts * k * dim)
    chunk = max(1, _CHUNK_BYTES // per_slide)
    parts = [
        _kmeans_chunk(x[i:i + chunk], mask[i:i + chunk], uniforms[i:i + chunk], k, iters,
                      init, spherical) for i in range(0, num_slides, chunk)
    ]
    if not parts:
        return KMeansResult(x.new_zeros(0, k, dim),
                            torch.full((0, length), -1, dtype=torch.long, device=x.device),
                            x.new_zeros(0))
    return KMeansResult(*(torch.cat(p) for p in zip(*parts)))


def _kmeans_chunk(x: Tensor, mask: Tensor, uniforms: Tensor, k: int, iters: int, init: str,
                  spherical: bool) -> tuple[Tensor, Tensor, Tensor]:
    """k-means of one chunk of slides; ``uniforms`` has shape (S, R, K)."""
    x = torch.where(mask[..., None], x, 0)
    if spherical:
        x = F.normalize(x, dim=-1)
    sqnorm = (x * x).sum(-1)
    if init == 'kmeans++':
        centroids = _kmeanspp_init(x, sqnorm, mask, uniforms, spherical)
    else:
        centroids = _random_init(x, mask, uniforms)
    for _ in range(iters):
        dist = _distances(x, sqnorm, centroids, spherical)
        centroids = _update(x, mask, dist, centroids, spherical)
    min_dist, assign = _distances(x, sqnorm, centroids, spherical).min(-1)
    inertia = (min_dist.clamp_min(0) * mask[:, None]).sum(-1)
    best = inertia.argmin(1)
    rows = torch.arange(x.shape[0], device=x.device)
    assignments = torch.where(mask, assign[rows, best], -1)
    return centroids[rows, best], assignments, inertia[rows, best]


def _distances(x: Tensor, sqnorm: Tensor, centroids: Tensor, spherical: bool) -> Tensor:
    """Point-to-centroid distances (S, R, L, K) for centroids (S, R, K, D)."""
    num_slides, restarts, k, dim = centroids.shape
    flat = centroids.reshape(num_slides, restarts * k, dim)
    if spherical:
        dist = 1 - torch.bmm(x, flat.transpose(1, 2))
    else:
        base = sqnorm[:, :, None] + (flat * flat).sum(-1)[:, None, :]
        dist = torch.baddbmm(base, x, flat.transpose(1, 2), alpha=-2)
    return dist.view(num_slides, -1, restarts, k).transpose(1, 2)


def _gather_points(x: Tensor, pos: Tensor) -> Tensor:
    """Points x (S, L, D) at positions pos (S, R) -> (S, R, D)."""
    return torch.gather(x, 1, pos[..., None].expand(-1, -1, x.shape[-1]))


def _rank_to_position(available: Tensor, rank: Tensor) -> Tensor:
    """Position of the ``rank``-th (0-based) True entry of available (S, R, L)."""
    cumulative = available.long().cumsum(-1)
    pos = torch.searchsorted(cumulative, (rank + 1)[..., None]).squeeze(-1)
    return pos.clamp_max(available.shape[-1] - 1)


def _uniform_position(mask: Tensor, u: Tensor) -> Tensor:
    """A uniformly drawn valid position per (slide, restart); u (S, R) in [0, 1)."""
    available = mask[:, None, :].expand(-1, u.shape[1], -1)
    count = available.sum(-1)
    rank = (u * count).long().clamp_max((count - 1).clamp_min(0))
    return _rank_to_position(available, rank)


def _kmeanspp_init(x: Tensor, sqnorm: Tensor, mask: Tensor, uniforms: Tensor,
                   spherical: bool) -> Tensor:
    """k-means++ (D² sampling) centroids (S, R, K, D), one draw per centre.

    When every valid point already coincides with a chosen centre (fewer distinct
    points than K), the next centre is a uniformly drawn point: a duplicate.
    """
    num_slides, restarts, k = uniforms.shape
    centroids = x.new_zeros(num_slides, restarts, k, x.shape[-1])
    centroids[:, :, 0] = _gather_points(x, _uniform_position(mask, uniforms[:, :, 0]))
    min_dist = _distances(x, sqnorm, centroids[:, :, :1], spherical)[..., 0]
    for j in range(1, k):
        weight = (min_dist.clamp_min(0) * mask[:, None]).double()
        cumulative = weight.cumsum(-1)
        total = cumulative[..., -1]
        target = uniforms[:, :, j] * total
        pos = torch.searchsorted(cumulative, target[..., None], right=True).squeeze(-1)
        pos = pos.clamp_max(x.shape[1] - 1)
        picked_zero = torch.gather(weight, -1, pos[..., None]).squeeze(-1) <= 0
        pos = torch.where(picked_zero, weight.argmax(-1), pos)
        pos = torch.where(total > 0, pos, _uniform_position(mask, uniforms[:, :, j]))
        centroids[:, :, j] = _gather_points(x, pos)
        new_dist = _distances(x, sqnorm, centroids[:, :, j:j + 1], spherical)[..., 0]
        min_dist = torch.minimum(min_dist, new_dist)
    return centroids


def _random_init(x: Tensor, mask: Tensor, uniforms: Tensor) -> Tensor:
    """K distinct uniformly drawn points per (slide, restart) -> (S, R, K, D).

    Once a slide's valid points are used up, draws repeat them (duplicates).
    """
    num_slides, restarts, k = uniforms.shape
    valid = mask[:, None, :].expand(-1, restarts, -1)
    chosen = torch.zeros_like(valid)
    centroids = x.new_zeros(num_slides, restarts, k, x.shape[-1])
    for j in range(k):
        available = valid & ~chosen
        exhausted = ~available.any(-1, keepdim=True)
        available = torch.where(exhausted, valid, available)
        count = available.sum(-1)
        rank = (uniforms[:, :, j] * count).long().clamp_max((count - 1).clamp_min(0))
        pos = _rank_to_position(available, rank)
        chosen.scatter_(-1, pos[..., None], True)
        centroids[:, :, j] = _gather_points(x, pos)
    return centroids


def _update(x: Tensor, mask: Tensor, dist: Tensor, centroids: Tensor,
            spherical: bool) -> Tensor:
    """One Lloyd update from distances (S, R, L, K); empty clusters are re-seeded.

    The j-th empty cluster of a (slide, restart) takes the j-th farthest point from its
    assigned centroid (cycling over the valid points when there are fewer of them).
    """
    num_slides, restarts, k, dim = centroids.shape
    min_dist, assign = dist.min(-1)
    weight = mask[:, None, :].expand(-1, restarts, -1).to(x.dtype)
    onehot = x.new_zeros(num_slides, restarts, k, x.shape[1])
    onehot.scatter_(2, assign[:, :, None, :], weight[:, :, None, :])
    onehot = onehot.view(num_slides, restarts * k, -1)
    sums = torch.bmm(onehot, x).view(num_slides, restarts, k, dim)
    counts = onehot.sum(-1).view(num_slides, restarts, k)
    means = sums / counts.clamp_min(1)[..., None]
    if spherical:
        means = F.normalize(means, dim=-1)
    empty = counts == 0
    if not bool(empty.any()):
        return means
    far_dist = torch.where(mask[:, None, :], min_dist.clamp_min(0), -1)
    farthest = far_dist.topk(min(k, x.shape[1]), dim=-1).indices
    num_valid = mask.sum(-1).clamp_min(1)[:, None, None]
    rank = (empty.long().cumsum(-1) - 1).clamp_min(0) % num_valid
    pos = torch.gather(farthest, -1, rank.clamp_max(farthest.shape[-1] - 1))
    reseeded = _gather_points(x, pos.view(num_slides, -1)).view_as(means)
    return torch.where(empty[..., None], reseeded, means)
