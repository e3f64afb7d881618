"""Building the prototype bank from region embeddings.

See docs/prototypes.md and the SLPD paper (arXiv 2307.10696).

Shapes: N = regions, D = embedding dim, S = slides, C = slides clustered here,
K = prototypes per slide, r = neighbour slides.

Distributed use: each rank calls :func:`cluster_slides` on its share of the slides,
the centroids, validity and inertia are all-gathered into slide order, and every rank
calls :func:`finish_bank` on the same inputs, so every rank ends with the same bank.
The torch backend seeds each slide by its id, so a slide's prototypes do not depend on
which shard it is in; :func:`build_bank` is the single-process version of the same.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .bank import PrototypeBank
from .faiss_backend import faiss_kmeans
from .kmeans import batched_kmeans
from .matching import match_prototypes
from .neighbors import find_neighbors
from .packing import SlideLayout, pack_slides, slide_layout

BACKENDS = ('torch', 'faiss')
ASSIGNMENTS = ('l2', 'cosine')
_CHUNK_BYTES = 256 * 2**20
_ASSIGN_GROUP = 256


def _check_regions(embeddings: Tensor, slide_index: Tensor, num_slides: int) -> None:
    if embeddings.dim() != 2 or slide_index.shape != embeddings.shape[:1]:
        raise ValueError(f'embeddings must be (N, D) and slide_index (N,), got '
                         f'{tuple(embeddings.shape)} and {tuple(slide_index.shape)}')
    if len(slide_index) and not 0 <= int(slide_index.min()) <= int(slide_index.max()) \
            < num_slides:
        raise ValueError(f'slide_index must lie in [0, {num_slides}), got '
                         f'[{int(slide_index.min())}, {int(slide_index.max())}]')


def cluster_slides(embeddings: Tensor, slide_index: Tensor, num_slides: int,
                   num_clusters: int, min_regions: int, slides: Tensor,
                   backend: str = 'torch', iters: int = 10, restarts: int = 5,
                   seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """k-means prototypes of the given slides (one rank's share of the work).

    Embeddings are L2-normalised and every slide with at least ``min_regions`` regions is
    clustered into ``num_clusters`` clusters. The centroids are returned raw (means of
    normalised embeddings, norm <= 1): :func:`finish_bank` assigns regions to them and
    then L2-normalises them into the prototypes.
    Slides are clustered in buckets of equal padded length, the length depending only
    on the slide's own region count, so that the result for a slide does not depend on
    the other slides in ``slides``.

    Args:
        embeddings: Region embeddings with shape (N, D).
        slide_index: Slide of each region, shape (N,), long in [0, S).
        num_slides: Number of slides S.
        num_clusters: Prototypes per slide K.
        min_regions: Fewest regions a slide needs to get prototypes (>= 1). With fewer
            than K regions, a slide's extra prototypes duplicate its regions.
        slides: Slides to cluster, shape (C,), long.
        backend: ``'torch'`` (batched, on the device of ``embeddings``) or ``'faiss'``
            (one faiss k-means per slide, like the original). Defaults to ``'torch'``.
        iters: Lloyd iterations. Defaults to 10.
        restarts: k-means restarts per slide. Defaults to 5.
        seed: Random seed. Defaults to 0.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Raw k-means centroids (C, K, D), zeros for invalid
        slides; validity (C,), bool; inertia (C,), NaN for invalid slides.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if num_clusters < 1 or min_regions < 1:
        raise ValueError(f'num_clusters and min_regions must be >= 1, got '
                         f'{num_clusters} and {min_regions}')
    _check_regions(embeddings, slide_index, num_slides)
    device = embeddings.device
    embeddings = embeddings.float()
    slides = slides.to(device=device, dtype=torch.long)
    layout = slide_layout(slide_index.to(device), num_slides)
    eligible = layout.counts >= min_regions
    valid = eligible[slides]
    centroids = embeddings.new_zeros(len(slides), num_clusters, embeddings.shape[1])
    inertia = embeddings.new_full((len(slides),), float('nan'))
    if not bool(valid.any()):
        return centroids, valid, inertia
    lengths = _padded_length(layout.counts[slides])
    for length in torch.unique(lengths[valid]).tolist():
        todo = (valid & (lengths == length)).nonzero().squeeze(1)
        chunk = max(1, _CHUNK_BYTES // (4 * length * embeddings.shape[1]))
        for i in range(0, len(todo), chunk):
            rows = todo[i:i + chunk]
            points, mask, _ = pack_slides(embeddings, layout, slides[rows], length)
            points = F.normalize(points, dim=-1)
            if backend == 'torch':
                result = batched_kmeans(points, mask, num_clusters, iters, restarts, seed,
                                        slide_ids=slides[rows])
            else:
                result = faiss_kmeans(points, mask, num_clusters, iters, restarts, seed)
            centroids[rows] = result.centroids
            inertia[rows] = result.inertia
    return centroids, valid, inertia


def _padded_length(counts: Tensor) -> Tensor:
    """Padded length of slides with the given region counts, a function of the count.

    Counts are rounded up to a multiple of ``max(8, 2 ** (bit_length(count) - 3))``:
    at most 5 lengths per octave, and less than 25% (or 8 regions) of padding.
    """
    bit_length = torch.floor(torch.log2(counts.clamp_min(1).double())).long() + 1
    step = 2 ** (bit_length - 3).clamp_min(3)
    return (counts + step - 1) // step * step


def finish_bank(embeddings: Tensor, slide_index: Tensor, centroids: Tensor, valid: Tensor,
                inertia: Tensor, num_neighbors: int = 1, exact_max_slides: int = 20000,
                shortlist: int = 64, assignment: str = 'l2') -> PrototypeBank:
    """Assignments, prototypes, neighbours and matched prototypes from the centroids.

    The prototypes are the L2-normalised centroids. A region's assignment follows
    ``assignment``:

    - ``'l2'`` (the original SLPD's rule: a faiss L2 search against the raw k-means
      centroids): the centroid nearest (L2) to the L2-normalised embedding,
      ``argmin_k ||z/|z| - c_k||^2``. Raw centroids differ in norm (a tight cluster's
      mean is longer), so this is not the nearest prototype by angle.
    - ``'cosine'``: the prototype with the highest cosine similarity,
      ``argmax_k <z, c_k/|c_k|>``.

    The two agree when all of a slide's centroids have the same norm (e.g. when
    ``centroids`` are already normalised).

    Args:
        embeddings: Region embeddings with shape (N, D).
        slide_index: Slide of each region, shape (N,), long in [0, S).
        centroids: k-means centroids of every slide with shape (S, K, D), as returned by
            :func:`cluster_slides` (raw: not normalised).
        valid: Whether each slide has prototypes, shape (S,), bool.
        inertia: k-means inertia of each slide, shape (S,).
        num_neighbors: Neighbour slides per slide r. Defaults to 1.
        exact_max_slides: See :func:`~slpd_plugin.prototypes.neighbors.find_neighbors`.
            Defaults to 20000.
        shortlist: See :func:`~slpd_plugin.prototypes.neighbors.find_neighbors`.
            Defaults to 64.
        assignment: ``'l2'`` or ``'cosine'``, see above. Defaults to 'l2'.

    Returns:
        PrototypeBank: The bank, on the device of ``centroids``.
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f'assignment must be one of {ASSIGNMENTS}, got {assignment!r}')
    num_slides, k, _ = centroids.shape
    _check_regions(embeddings, slide_index, num_slides)
    if valid.shape != (num_slides,) or inertia.shape != (num_slides,):
        raise ValueError(f'valid and inertia must have shape ({num_slides},), got '
                         f'{tuple(valid.shape)} and {tuple(inertia.shape)}')
    device = centroids.device
    slide_index = slide_index.to(device)
    embeddings = embeddings.to(device=device, dtype=centroids.dtype)
    layout = slide_layout(slide_index, num_slides)
    prototypes = F.normalize(centroids, dim=-1)
    assignments = _assign(embeddings, layout, centroids if assignment == 'l2' else prototypes,
                          valid, assignment == 'l2')
    assigned = assignments >= 0
    cluster_sizes = torch.bincount(slide_index[assigned] * k + assignments[assigned],
                                   minlength=num_slides * k).view(num_slides, k)
    neighbors, similarity = find_neighbors(prototypes, valid, num_neighbors,
                                           exact_max_slides, shortlist)
    return PrototypeBank(
        centroids=prototypes, valid=valid, assignments=assignments, neighbors=neighbors,
        matched=match_prototypes(prototypes, prototypes, neighbors),
        neighbor_similarity=similarity, inertia=inertia, cluster_sizes=cluster_sizes)


def _assign(embeddings: Tensor, layout: SlideLayout, targets: Tensor, valid: Tensor,
            euclidean: bool) -> Tensor:
    """Target of each region within its slide, shape (N,); -1 for invalid slides.

    ``euclidean``: nearest target (L2) to the normalised embedding, i.e. the argmax of
    ``<z/|z|, t> - |t|^2 / 2``; otherwise the argmax of ``<z, t>``.
    """
    assignments = torch.full((len(layout.order),), -1, dtype=torch.long,
                             device=embeddings.device)
    offsets = -0.5 * targets.pow(2).sum(-1) if euclidean else None  # (S, K)
    # Slides sorted by region count, packed in groups of similar length.
    todo = valid.nonzero().squeeze(1)
    todo = todo[torch.argsort(layout.counts[todo], stable=True)]
    for i in range(0, len(todo), _ASSIGN_GROUP):
        rows = todo[i:i + _ASSIGN_GROUP]
        points, mask, regions = pack_slides(embeddings, layout, rows,
                                            int(layout.counts[rows[-1]]))
        scores = torch.bmm(F.normalize(points, dim=-1) if euclidean else points,
                           targets[rows].transpose(1, 2))  # (C, L, K)
        if offsets is not None:  # euclidean
            scores += offsets[rows, None, :]
        assignments[regions[mask]] = scores.argmax(-1)[mask]
    return assignments


def build_bank(embeddings: Tensor, slide_index: Tensor, num_clusters: int,
               min_regions: int, num_neighbors: int = 1, backend: str = 'torch',
               iters: int = 10, restarts: int = 5, seed: int = 0,
               num_slides: int | None = None, slide_subset: Tensor | None = None,
               assignment: str = 'l2') -> PrototypeBank:
    """The whole prototype refresh in one process: cluster, assign, find neighbours.

    Equal to :func:`cluster_slides` over all slides followed by :func:`finish_bank`.
    If no slide has enough regions, the bank has ``valid`` all False (the caller then
    trains plain DINO).

    Args:
        embeddings: Region embeddings with shape (N, D).
        slide_index: Slide of each region, shape (N,), long in [0, S).
        num_clusters: Prototypes per slide K.
        min_regions: Fewest regions a slide needs to get prototypes (>= 1).
        num_neighbors: Neighbour slides per slide r. Defaults to 1.
        backend: ``'torch'`` or ``'faiss'``. Defaults to ``'torch'``.
        iters: Lloyd iterations. Defaults to 10.
        restarts: k-means restarts per slide. Defaults to 5.
        seed: Random seed. Defaults to 0.
        num_slides: Number of slides S. Defaults to None (``slide_index.max() + 1``).
        slide_subset: Slides allowed to have prototypes, shape (C,), long; the others
            are invalid. Defaults to None (all slides).
        assignment: Region assignment rule, ``'l2'`` (the original's) or ``'cosine'``;
            see :func:`finish_bank`. Defaults to 'l2'.

    Returns:
        PrototypeBank: The bank, on the device of ``embeddings``.
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f'assignment must be one of {ASSIGNMENTS}, got {assignment!r}')
    if num_slides is None:
        num_slides = int(slide_index.max()) + 1 if len(slide_index) else 0
    slides = torch.arange(num_slides) if slide_subset is None else slide_subset
    slides = slides.to(device=embeddings.device, dtype=torch.long)
    part, part_valid, part_inertia = cluster_slides(
        embeddings, slide_index, num_slides, num_clusters, min_regions, slides, backend,
        iters, restarts, seed)
    centroids = part.new_zeros(num_slides, num_clusters, embeddings.shape[1])
    valid = torch.zeros(num_slides, dtype=torch.bool, device=embeddings.device)
    inertia = part.new_full((num_slides,), float('nan'))
    centroids[slides], valid[slides], inertia[slides] = part, part_valid, part_inertia
    return finish_bank(embeddings, slide_index, centroids, valid, inertia, num_neighbors,
                       assignment=assignment)
