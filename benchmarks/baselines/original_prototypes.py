"""Baseline for benchmarks/prototypes.py: the prototype refresh as the original SLPD does it.

A plain re-implementation written for timing from a description of the original's
``main_SLPD.py`` refresh (not its code), with its settings and its vectorisation:

1. the region embeddings are L2-normalised in one call and split by slide;
2. per slide with at least ``min_regions`` regions, a new ``faiss.Clustering`` (L2,
   ``niter`` 10, ``nredo`` 5, ``seed`` 0, ``max_points_per_centroid`` 1000,
   ``min_points_per_centroid`` 4) is trained with a new flat L2 index (the original's
   ``GpuIndexFlatL2``; ``IndexFlatL2`` on the CPU), every region is assigned by
   ``index.search(x, 1)`` (the nearest raw centroid), and the centroids are then
   L2-normalised into the prototypes;
3. the neighbours: an (S, S, K!) tensor is filled with one ``einsum('nkd,mkd->nm')`` per
   permutation of the K prototypes, the maximum over permutations is taken, similarities
   of exactly 0 (slides without prototypes have zero prototypes) are lowered by 4, and
   ``topk(r + 1)`` with the first column (the slide itself) dropped gives the neighbours;
4. the matched prototypes: ``argmax`` of ``einsum('nkd,nld->nkl')`` with each neighbour.

Left out, so that the baseline is if anything faster than the original: the per-cluster
density the original computes with Python loops over regions and then does not use, and
its per-slide creation of GPU resources. The (S, S, K!) tensor is filled in blocks of
rows when it would exceed ``max_bytes`` (the original fills it whole; the arithmetic is
the same). A size whose whole tensor would not fit in this machine's memory (K = 8 at
TCGA scale: 1,041^2 x 8! float32 = 175 GB) is refused with :class:`TooLargeForUpstream`,
as the original, which allocates it whole, would fail there.

Shapes: N = regions, D = dim, S = slides, K = prototypes per slide, r = neighbours.
"""
from __future__ import annotations

import itertools
import math
import os

import faiss
import torch
import torch.nn.functional as F


def cluster_per_slide(embeddings: torch.Tensor, slide_index: torch.Tensor, num_slides: int,
                      k: int, min_regions: int, iters: int = 10, restarts: int = 5,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One faiss k-means per slide with enough regions, then a faiss search.

    Args:
        embeddings: Region embeddings (N, D).
        slide_index: Slide of each region (N,), long.
        num_slides: Number of slides S.
        k: Prototypes per slide K.
        min_regions: Fewest regions a slide needs.
        iters: faiss ``niter``. Defaults to 10.
        restarts: faiss ``nredo``. Defaults to 5.
        seed: faiss ``seed``. Defaults to 0.

    Returns:
        tuple: Normalised prototypes (S, K, D), zeros for slides without; validity (S,);
        assignment of each region (N,), -1 for regions of slides without prototypes.
    """
    z = F.normalize(embeddings.float(), dim=-1)
    order = torch.argsort(slide_index, stable=True)
    counts = torch.bincount(slide_index, minlength=num_slides)
    blocks = torch.split(z[order], counts.tolist())
    regions = torch.split(order, counts.tolist())
    dim = z.shape[1]
    centroids = torch.zeros(num_slides, k, dim)
    assignments = torch.full((len(z),), -1, dtype=torch.long)
    valid = counts >= min_regions
    for slide in valid.nonzero().squeeze(1).tolist():
        x = blocks[slide].numpy()
        clustering = faiss.Clustering(dim, k)
        clustering.niter, clustering.nredo, clustering.seed = iters, restarts, seed
        clustering.max_points_per_centroid, clustering.min_points_per_centroid = 1000, 4
        index = faiss.IndexFlatL2(dim)
        clustering.train(x, index)
        _, nearest = index.search(x, 1)
        assignments[regions[slide]] = torch.from_numpy(nearest[:, 0])
        raw = faiss.vector_to_array(clustering.centroids).reshape(k, dim)
        centroids[slide] = F.normalize(torch.from_numpy(raw), dim=-1)
    return centroids, valid, assignments


class TooLargeForUpstream(MemoryError):
    """The original's whole (S, S, K!) tensor would not fit in this machine's memory."""


def permutation_tensor_bytes(num_slides: int, k: int) -> int:
    """Bytes of the original's whole (S, S, K!) float32 tensor of permutation scores."""
    return 4 * num_slides * num_slides * math.factorial(k)


def machine_memory_bytes() -> int:
    """Physical memory of this machine, bytes."""
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def upstream_refusal(num_slides: int, k: int, memory_bytes: int | None = None) -> str | None:
    """Why the original cannot run this size (``'upstream way: would need N GB'``), or
    None when its (S, S, K!) tensor fits in ``memory_bytes`` (default: this machine's)."""
    needed = permutation_tensor_bytes(num_slides, k)
    if needed <= (machine_memory_bytes() if memory_bytes is None else memory_bytes):
        return None
    return f'upstream way: would need {needed / 1e9:,.0f} GB'


def neighbours_by_permutations(centroids: torch.Tensor, num_neighbors: int = 1,
                               max_bytes: int = 2**31, rows: int | None = None,
                               memory_bytes: int | None = None,
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbours by the (S, S, K!) permutation tensor, and matched prototypes.

    Args:
        centroids: Prototypes (S, K, D), zeros for slides without prototypes.
        num_neighbors: Neighbours per slide r. Defaults to 1.
        max_bytes: Largest block of the (S, S, K!) tensor filled at once. Defaults to
            2 GiB.
        rows: Only the first ``rows`` slides (Q) get neighbours (for timing a sample
            of the rows when K! makes the whole tensor too slow). Defaults to None (all).
        memory_bytes: Memory the original's whole tensor must fit in. Defaults to
            None (this machine's physical memory).

    Returns:
        tuple: Neighbours (Q, r); matched prototype of each prototype and neighbour
        (Q, K, r).

    Raises:
        TooLargeForUpstream: The whole (S, S, K!) tensor exceeds ``memory_bytes``.
    """
    num, k, _ = centroids.shape
    refusal = upstream_refusal(num, k, memory_bytes)
    if refusal:
        raise TooLargeForUpstream(f'{refusal} for the ({num}, {num}, {k}!) tensor')
    queries = centroids[:rows]
    perms = list(itertools.permutations(range(k)))
    block_rows = max(1, max_bytes // (4 * num * len(perms)))
    best = torch.empty(len(queries), num)
    for i in range(0, len(queries), block_rows):
        block = queries[i:i + block_rows]
        sims = torch.zeros(len(block), num, len(perms))
        for j, perm in enumerate(perms):
            sims[:, :, j] = torch.einsum('nkd,mkd->nm', block, centroids[:, perm, :])
        best[i:i + block_rows] = sims.amax(-1)
    best[best == 0] -= 4
    neighbours = best.topk(num_neighbors + 1, dim=-1).indices[:, 1:]
    matched = torch.zeros(len(queries), k, num_neighbors, dtype=torch.long)
    for j in range(num_neighbors):
        inner = torch.einsum('nkd,nld->nkl', queries, centroids[neighbours[:, j]])
        matched[:, :, j] = inner.argmax(-1)
    return neighbours, matched


def refresh(embeddings: torch.Tensor, slide_index: torch.Tensor, num_slides: int, k: int,
            min_regions: int, num_neighbors: int = 1) -> dict[str, torch.Tensor]:
    """The whole refresh: clustering and assignment, then neighbours and matches."""
    centroids, valid, assignments = cluster_per_slide(embeddings, slide_index, num_slides,
                                                      k, min_regions)
    neighbours, matched = neighbours_by_permutations(centroids, num_neighbors)
    return dict(centroids=centroids, valid=valid, assignments=assignments,
                neighbors=neighbours, matched=matched)
