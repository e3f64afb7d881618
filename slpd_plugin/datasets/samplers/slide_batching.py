"""Slide-aware sampling: batches of ``M`` slides x ``B`` regions, slides sharded by rank.

Letters: ``N`` regions, ``S`` slides, ``M`` slides per batch, ``B`` regions per slide,
``W`` world size (DDP ranks), ``T`` steps per epoch and rank.

One epoch in ``'slides'`` mode:

1. Each slide's regions are shuffled and cut into ``ceil(n / B)`` *chunks* of ``B``
   distinct regions; the last chunk is topped up with other regions of the same slide
   (without replacement). A slide with ``n < B`` regions gives one chunk: all ``n``
   regions plus ``B - n`` drawn with replacement. Every region is seen at least once,
   the rare top-ups a second time.
2. Slides go to ranks whole (disjoint shards), largest chunk counts first to the least
   loaded rank, ties in a random order. ``T = ceil(max rank load / M)`` is the same on
   every rank and in every epoch; a rank with fewer chunks adds extra chunks drawn from
   its own slides.
3. Each rank orders its chunks by a stratified random key (chunk ``j`` of a slide with
   ``c`` chunks lands in ``[j/c, (j+1)/c)`` of the epoch), so a slide's chunks are
   spread over the epoch, and ``M`` consecutive chunks form a batch of ``M * B``.

Everything depends only on ``(seed, epoch, W)``: every rank computes the same plan and
keeps its row. ``'regions'`` mode is a plain shuffle like mmengine's ``DefaultSampler``.
"""
from __future__ import annotations

import math

import numpy as np


def _chunks_of(regions: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Cut one slide's regions into chunks of ``size`` distinct regions (see step 1)."""
    n = len(regions)
    if n < size:
        extra = rng.choice(regions, size - n, replace=True)
        return [rng.permutation(np.concatenate([regions, extra]))]
    perm = rng.permutation(regions)
    chunks = [perm[i:i + size] for i in range(0, n, size)]
    short = size - len(chunks[-1])
    if short:
        chunks[-1] = np.concatenate([chunks[-1],
                                     rng.choice(perm[:n - len(chunks[-1])], short, replace=False)])
    return chunks


def _fresh_chunk(regions: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(regions, size, replace=len(regions) < size)


def assign_slides(chunk_counts: np.ndarray, world_size: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Owner rank of every slide, balancing chunk counts (largest first, random ties).

    Args:
        chunk_counts: ``(S,)`` chunks per slide.
        world_size: ``W``.
        rng: Breaks ties between slides of equal chunk count.

    Returns:
        ``(S,)`` int64 ranks in ``[0, W)``.
    """
    order = rng.permutation(len(chunk_counts))
    order = order[np.argsort(-chunk_counts[order], kind='stable')]
    load = np.zeros(world_size, dtype=np.int64)
    owner = np.empty(len(chunk_counts), dtype=np.int64)
    for s in order:
        r = int(np.argmin(load))
        owner[s] = r
        load[r] += chunk_counts[s]
    return owner


def steps_per_epoch(slide_index: np.ndarray, slides_per_batch: int, regions_per_slide: int,
                    world_size: int) -> int:
    """``T``: batches per rank and epoch in ``'slides'`` mode (the same in every epoch)."""
    counts = np.bincount(slide_index)
    chunks = -(-counts[counts > 0] // regions_per_slide)
    owner = assign_slides(chunks, world_size, np.random.default_rng(0))
    load = np.bincount(owner, weights=chunks, minlength=world_size)
    return int(math.ceil(load.max() / slides_per_batch))


def plan_epoch(slide_index: np.ndarray, slides_per_batch: int, regions_per_slide: int,
               world_size: int, seed: int, epoch: int) -> np.ndarray:
    """Every rank's batches of one epoch in ``'slides'`` mode.

    Args:
        slide_index: ``(N,)`` slide of every region (any integer ids).
        slides_per_batch: ``M``.
        regions_per_slide: ``B``.
        world_size: ``W``.
        seed: Shared seed of all ranks.
        epoch: Epoch number.

    Returns:
        ``(W, T, M * B)`` int64 region indices; row ``r`` is rank ``r``'s epoch.

    Raises:
        ValueError: if there are fewer slides than ranks.
    """
    slide_index = np.asarray(slide_index, dtype=np.int64)
    order = np.argsort(slide_index, kind='stable')
    ids, starts, counts = np.unique(slide_index[order], return_index=True,
                                    return_counts=True)
    if len(ids) < world_size:
        raise ValueError(f'{len(ids)} slide(s) cannot be sharded over {world_size} ranks; '
                         f"use mode='regions' or fewer ranks")
    m, b = slides_per_batch, regions_per_slide
    rng = np.random.default_rng([seed, epoch])
    regions = [order[s:s + n] for s, n in zip(starts, counts)]
    chunks = [_chunks_of(r, b, rng) for r in regions]
    owner = assign_slides(np.array([len(c) for c in chunks]), world_size, rng)
    steps = steps_per_epoch(slide_index, m, b, world_size)
    plan = np.empty((world_size, steps * m, b), dtype=np.int64)
    for rank in range(world_size):
        mine = np.flatnonzero(owner == rank)
        rows, keys = [], []
        for s in mine:
            c = len(chunks[s])
            rows += chunks[s]
            keys += list((np.arange(c) + rng.random(c)) / c)
        for _k in range(steps * m - len(rows)):  # top up to T * M chunks from own slides
            rows.append(_fresh_chunk(regions[mine[rng.integers(len(mine))]], b, rng))
            keys.append(rng.random())
        plan[rank] = np.stack(rows)[np.argsort(keys, kind='stable')]
    return plan.reshape(world_size, steps, m * b)


def slide_batches(slide_index: np.ndarray, slides_per_batch: int, regions_per_slide: int,
                  rank: int, world_size: int, seed: int, epoch: int) -> np.ndarray:
    """Rank ``rank``'s region indices of one epoch, ``(T * M * B,)``, batch after batch."""
    if not 0 <= rank < world_size:
        raise ValueError(f'rank must be in [0, {world_size}), got {rank}')
    return plan_epoch(slide_index, slides_per_batch, regions_per_slide, world_size, seed,
                      epoch)[rank].reshape(-1)


def shuffled_regions(num_regions: int, rank: int, world_size: int, seed: int,
                     epoch: int) -> np.ndarray:
    """``'regions'`` mode: this rank's ``(ceil(N / W),)`` indices of a shuffle of all regions.

    The shuffle is padded to a multiple of ``W`` and strided over the ranks.
    """
    perm = np.random.default_rng([seed, epoch]).permutation(num_regions)
    per_rank = math.ceil(num_regions / world_size)
    perm = np.resize(perm, per_rank * world_size)
    return perm[rank::world_size]
