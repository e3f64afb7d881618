"""Batched k-means: every slide clustered at once on a padded tensor.

Shapes: S = slides, L = padded regions per slide, D = embedding dim, K = clusters,
R = restarts.

Why hand-written: the original calls faiss once per slide, which pays Python and
faiss set-up costs S times for problems of ~60 points. Here one padded ``(S, L, D)``
tensor is clustered in a single batched pass (all slides and all restarts share each
matrix multiply), on whatever device the tensor is on, with seeding that makes a
slide's result independent of the shard it is clustered in. ``benchmarks/prototypes.py``
measures it against the per-slide faiss loop; on the CPU the gain is modest (TCGA
scale: 2.0x on two threads, 1.2x on one; 10x scale: 2.9x and 1.9x; docs/prototypes.md).

A slide has fewer points than dimensions (L ~ 60 regions, D = 256), so the iterations
run on its Gram matrix ``G = x x^T`` (L, L) instead of on x: a centroid is kept as
weights W over the slide's points (``c = W x``; one-hot rows for k-means++ picks,
``1 / |cluster|`` rows after an update), and ``||x_i - c||^2 = G_ii - 2 (W G)_i +
W G W^T``. Each iteration then costs R*K*L*L instead of R*K*L*D, and x is touched only
twice (to form G and the final centroids). Slides with many more regions than D would
be better served by the direct form; TCGA slides have at most ~150 regions.

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
    points, runs up to ``iters`` Lloyd iterations (a slide leaves the batch once all its
    restarts have reached a fixed point, after which iterations would change nothing),
    and the restart with the lowest inertia is
    kept for each slide separately. A cluster that becomes empty is re-seeded with the
    point farthest from its current centroid. The returned assignments and inertia are
    those of the returned centroids.

    A slide with fewer than ``k`` valid points gets duplicated points as its extra
    centroids (their clusters are empty); a slide with no valid point gets zero
    centroids, inertia 0 and all assignments -1.

    Args:
        x: Points with shape (S, L, D). Values at masked positions are ignored (they
            must be finite: they are multiplied by 0).
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
    # Per slide: x, its Gram matrix, and a few (R * K, L) weights and distances.
    per_slide = 4 * (length * dim + length * length + 5 * restarts * k * length)
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
    x = x * mask[..., None]
    if spherical:
        x = F.normalize(x, dim=-1)
    gram = torch.bmm(x, x.transpose(1, 2))
    if init == 'kmeans++':
        weights = _kmeanspp_init(gram, mask, uniforms, spherical)
    else:
        weights = _random_init(gram, mask, uniforms)
    # Slides with a restart still moving; a slide whose restarts are all at a fixed point
    # leaves the batch (its later iterations would be no-ops).
    active = torch.arange(len(x), device=x.device)
    for _ in range(iters):
        if len(active) == len(x):
            g, m, w = gram, mask, weights
        else:
            g, m, w = gram[active], mask[active], weights[active]
        updated = _update(g, m, _distances(g, w, spherical), spherical)
        moving = (updated != w).flatten(1).any(1)
        weights[active] = updated
        active = active[moving]
        if not len(active):
            break
    min_dist, assign = _distances(gram, weights, spherical).min(2)
    inertia = (min_dist.clamp_min(0) * mask[:, None]).sum(-1)
    best = inertia.argmin(1)
    rows = torch.arange(x.shape[0], device=x.device)
    centroids = torch.bmm(weights[rows, best], x)
    if spherical:
        centroids = F.normalize(centroids, dim=-1)
    assignments = torch.where(mask, assign[rows, best], -1)
    return centroids, assignments, inertia[rows, best]


def _distances(gram: Tensor, weights: Tensor, spherical: bool) -> Tensor:
    """Distances (S, R, K, L) from centroids ``weights @ x`` (weights (S, R, K, L))."""
    num_slides, restarts, k, length = weights.shape
    flat = weights.reshape(num_slides, restarts * k, length)
    cross = torch.bmm(flat, gram)
    if spherical:
        dist = 1 - cross
    else:
        sqnorm = torch.diagonal(gram, dim1=1, dim2=2)
        dist = sqnorm[:, None, :] - 2 * cross + (cross * flat).sum(-1, keepdim=True)
    return dist.view(num_slides, restarts, k, length)


def _one_hot(pos: Tensor, like: Tensor) -> Tensor:
    """Weights (S, R, 1, L) selecting point ``pos`` (S, R) of gram ``like`` (S, L, L)."""
    out = like.new_zeros(*pos.shape, 1, like.shape[-1])
    return out.scatter_(-1, pos[..., None, None], 1)


def _rank_to_position(available: Tensor, rank: Tensor) -> Tensor:
    """Position of the ``rank``-th (0-based) True entry of available (S, R, L)."""
    cumulative = available.long().cumsum(-1)
    pos = torch.searchsorted(cumulative, (rank + 1)[..., None]).squeeze(-1)
    return pos.clamp_max(available.shape[-1] - 1)


def _uniform_position(available: Tensor, u: Tensor) -> Tensor:
    """A uniformly drawn True position of available (S, R, L); u (S, R) in [0, 1)."""
    count = available.sum(-1)
    rank = (u * count).long().clamp_max((count - 1).clamp_min(0))
    return _rank_to_position(available, rank)


def _kmeanspp_init(gram: Tensor, mask: Tensor, uniforms: Tensor,
                   spherical: bool) -> Tensor:
    """k-means++ (D² sampling) centroid weights (S, R, K, L), one draw per centre.

    When every valid point already coincides with a chosen centre (fewer distinct
    points than K), the next centre is a uniformly drawn point: a duplicate.
    """
    length = gram.shape[-1]
    valid = mask[:, None, :].expand(-1, uniforms.shape[1], -1)
    picks = [_one_hot(_uniform_position(valid, uniforms[:, :, 0]), gram)]
    min_dist = _distances(gram, picks[0], spherical)[:, :, 0]
    for j in range(1, uniforms.shape[2]):
        weight = (min_dist.clamp_min(0) * mask[:, None]).double()
        cumulative = weight.cumsum(-1)
        total = cumulative[..., -1]
        target = uniforms[:, :, j] * total
        pos = torch.searchsorted(cumulative, target[..., None], right=True).squeeze(-1)
        pos = pos.clamp_max(length - 1)
        picked_zero = torch.gather(weight, -1, pos[..., None]).squeeze(-1) <= 0
        pos = torch.where(picked_zero, weight.argmax(-1), pos)
        pos = torch.where(total > 0, pos, _uniform_position(valid, uniforms[:, :, j]))
        picks.append(_one_hot(pos, gram))
        min_dist = torch.minimum(min_dist, _distances(gram, picks[-1], spherical)[:, :, 0])
    return torch.cat(picks, 2)


def _random_init(gram: Tensor, mask: Tensor, uniforms: Tensor) -> Tensor:
    """K distinct uniformly drawn points per (slide, restart) -> weights (S, R, K, L).

    Once a slide's valid points are used up, draws repeat them (duplicates).
    """
    valid = mask[:, None, :].expand(-1, uniforms.shape[1], -1)
    chosen = torch.zeros_like(valid)
    picks = []
    for j in range(uniforms.shape[2]):
        available = valid & ~chosen
        available = torch.where(available.any(-1, keepdim=True), available, valid)
        pos = _uniform_position(available, uniforms[:, :, j])
        chosen = chosen.scatter(-1, pos[..., None], True)
        picks.append(_one_hot(pos, gram))
    return torch.cat(picks, 2)


def _update(gram: Tensor, mask: Tensor, dist: Tensor, spherical: bool) -> Tensor:
    """One Lloyd update from distances (S, R, K, L) -> new weights (S, R, K, L).

    A cluster's new centroid is the mean of its points (weights ``1 / |cluster|``).
    The j-th empty cluster of a (slide, restart) takes the j-th farthest point from its
    assigned centroid (cycling over the valid points when there are fewer of them).
    """
    num_slides, restarts, k, length = dist.shape
    min_dist, assign = dist.min(2)
    onehot = torch.zeros_like(dist).scatter_(
        2, assign[:, :, None, :], mask[:, None, None, :].expand(-1, restarts, -1, -1).to(
            dist.dtype))
    counts = onehot.sum(-1, keepdim=True)
    weights = onehot / counts.clamp_min(1)
    empty = counts[..., 0] == 0
    if bool(empty.any()):
        far_dist = torch.where(mask[:, None, :], min_dist.clamp_min(0), -1)
        farthest = far_dist.topk(min(k, length), dim=-1).indices
        num_valid = mask.sum(-1).clamp_min(1)[:, None, None]
        rank = (empty.long().cumsum(-1) - 1).clamp_min(0) % num_valid
        pos = torch.gather(farthest, -1, rank.clamp_max(farthest.shape[-1] - 1))
        reseeded = torch.zeros_like(weights).scatter_(-1, pos[..., None], 1)
        weights = torch.where(empty[..., None], reseeded, weights)
    if spherical:
        flat = weights.view(num_slides, restarts * k, length)
        sqnorm = (torch.bmm(flat, gram) * flat).sum(-1).clamp_min(1e-24)
        weights = weights / sqnorm.sqrt().view(num_slides, restarts, k, 1)
    return weights
