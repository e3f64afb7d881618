"""Regions and windows on a piece's index map: where they are, which patches they hold.

Positions are ``(row, col)`` of a window's top-left cell in the piece's index map
(:mod:`.layout`); a window may stick out of the map (those cells hold no patch).

- :func:`tile_regions`: ``G x G`` regions tiling the lattice from the **slide origin**
  (lattice cell ``(0, 0)``, as TRIDENT-made stores and HIPT's slide-wide 4096-px regions)
  or from the **piece's corner** (the top-left of its patches' bounding box, as CLAM and
  HIPT tile each tissue piece), kept when their tissue fraction is at least
  ``min_tissue``, in row-major order.
- :func:`random_windows`: windows anywhere in the map whose tissue fraction is at least
  ``min_tissue``, drawing at most ``max_tries`` positions per window.

Letters: ``b`` windows, ``G`` side, ``H x W`` the map.
"""
from __future__ import annotations

import math

import numpy as np

ANCHORS = ('origin', 'piece')


def window_indices(index: np.ndarray, rows, cols, size: int) -> np.ndarray:
    """Patch rows of windows: ``(b, G, G)`` int32, -1 where no patch or off the map."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 1, 1)
    cols = np.asarray(cols, dtype=np.int64).reshape(-1, 1, 1)
    r = rows + np.arange(size).reshape(1, -1, 1)  # (b, G, 1)
    c = cols + np.arange(size).reshape(1, 1, -1)  # (b, 1, G)
    inside = (r >= 0) & (r < index.shape[0]) & (c >= 0) & (c < index.shape[1])
    found = index[np.clip(r, 0, index.shape[0] - 1), np.clip(c, 0, index.shape[1] - 1)]
    return np.where(inside, found, -1).astype(np.int32)


def tissue_counts(index: np.ndarray, size: int) -> np.ndarray:
    """Patches in every ``size x size`` window whose top-left is a map cell, ``(H, W)`` int64.

    Windows may stick out at the bottom and right.
    """
    h, w = index.shape
    padded = np.zeros((h + size + 1, w + size + 1), dtype=np.int64)
    padded[1:h + 1, 1:w + 1] = index >= 0
    cum = padded.cumsum(0).cumsum(1)
    return (cum[size:size + h, size:size + w] - cum[:h, size:size + w]
            - cum[size:size + h, :w] + cum[:h, :w])


def tile_regions(index: np.ndarray, origin: tuple[int, int], size: int,
                 min_tissue: float, anchor: str = 'origin') -> tuple[np.ndarray, np.ndarray]:
    """Top-left map cells ``(K, 2)`` of the kept ``size``-square regions, and their patches.

    Cells are ``(row, col)``; the patch counts are ``(K,)``.

    Args:
        index: The piece's ``(H, W)`` index map.
        origin: ``(origin_col, origin_row)``: the lattice cell of ``index[0, 0]``.
        size: ``G``.
        min_tissue: Keep regions with at least this fraction of ``G²`` cells present.
        anchor: ``'origin'`` (regions at lattice multiples of ``G``) or ``'piece'``
            (regions from the map's top-left cell).
    """
    if anchor not in ANCHORS:
        raise ValueError(f'anchor must be one of {ANCHORS}, got {anchor!r}')
    h, w = index.shape
    r0 = -(origin[1] % size) if anchor == 'origin' else 0
    c0 = -(origin[0] % size) if anchor == 'origin' else 0
    rows = np.arange(r0, h, size)
    cols = np.arange(c0, w, size)
    rr, cc = np.meshgrid(rows, cols, indexing='ij')
    rr, cc = rr.reshape(-1), cc.reshape(-1)
    present = np.zeros((len(rows) * size, len(cols) * size), dtype=np.int64)
    present[-r0:-r0 + h, -c0:-c0 + w] = index >= 0
    counts = present.reshape(len(rows), size, len(cols), size).sum(axis=(1, 3)).reshape(-1)
    need = max(1, math.ceil(min_tissue * size * size - 1e-9))
    keep = counts >= need
    return np.stack([rr[keep], cc[keep]], axis=1), counts[keep]


def random_windows(rng: np.random.Generator, index: np.ndarray, size: int, count: int,
                   min_tissue: float, max_tries: int = 16,
                   counts: np.ndarray | None = None) -> np.ndarray:
    """``count`` random window positions ``(count, 2)`` ``(row, col)``.

    Each window is drawn uniformly among positions whose top-left is within
    ``(-size + 1, -size + 1)``..``(H - 1, W - 1)`` (so every cell can be covered) until
    its tissue fraction is at least ``min_tissue``, at most ``max_tries`` times; after
    that the densest window seen is used.

    Args:
        rng: The random generator.
        index: The ``(H, W)`` index map.
        size: ``G``.
        count: Windows to draw.
        min_tissue: Wanted fraction of ``G²`` cells present.
        max_tries: Draws per window before settling for the best one seen.
        counts: :func:`tissue_counts` of ``index`` padded by ``size - 1`` at the top and
            left (computed when None; pass it to draw often from one map).
    """
    h, w = index.shape
    if counts is None:
        padded = np.full((h + size - 1, w + size - 1), -1, dtype=np.int32)
        padded[size - 1:, size - 1:] = index
        counts = tissue_counts(padded, size)
    need = min_tissue * size * size
    rows = rng.integers(0, counts.shape[0], size=(count, max_tries))
    cols = rng.integers(0, counts.shape[1], size=(count, max_tries))
    got = counts[rows, cols]  # (count, tries)
    ok = got >= need
    pick = np.where(ok.any(axis=1), ok.argmax(axis=1), got.argmax(axis=1))
    take = np.arange(count)
    return np.stack([rows[take, pick], cols[take, pick]], axis=1) - (size - 1)
