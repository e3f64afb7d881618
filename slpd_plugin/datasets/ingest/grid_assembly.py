"""Cut a slide's patch lattice into ``G x G`` regions and assemble them, streamed.

Regions tile the slide's patch lattice from the **slide origin** (the lattice point
nearest ``(0, 0)``): region ``(R, Q)`` holds lattice rows ``[R*G, (R+1)*G)`` and
columns ``[Q*G, (Q+1)*G)``. Anchoring at the origin, not at the tissue's bounding box,
makes a region's place depend only on the slide and the lattice: the same slide
extracted with another encoder, or with a different tissue mask, gives regions at the
same coordinates (so stores of two encoders line up region by region), and region
corners are multiples of the region size as in HIPT's 4096-px regions.

A slide whose tissue pieces sit on shifted lattices (CLAM) is cut piece by piece, each
from its own lattice's origin (:func:`plan_pieces`). Regions of two pieces never share a
corner but can overlap where the pieces' bounding boxes do; a region holds the patches
of its own piece only.

A region is kept when its tissue fraction (patches present / G²) is at least
``min_tissue``. Cells without a patch are zero-filled and False in the region's mask.
Grid orientation is HIPT's: ``grid[:, i, j]`` is the patch at
``(x0 + j*s, y0 + i*s)`` (row ``i`` down, column ``j`` right).

Letters: ``N`` patches, ``K`` kept regions, ``D`` feature width, ``G`` grid side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..stores import StoreError
from .lattice import Lattice

DEFAULT_MIN_TISSUE = 0.25
PART_BYTES = 32 * 2 ** 20  # features held per streamed part (and per file read)


@dataclass(frozen=True)
class RegionPlan:
    """Which regions of a slide are kept and which patches fill them.

    Attributes:
        grid_size: ``G``.
        corners: ``(K, 2)`` top-left corner of each kept region (coordinate units),
            regions in row-major order (top to bottom, then left to right).
        tissue: ``(K,)`` fraction of each kept region's cells that hold a patch.
        rows: ``(P,)`` file row of every patch of a kept region, grouped by region.
        region: ``(P,)`` kept-region number of each of those patches, ascending.
        cell: ``(P, 2)`` ``(i, j)`` of each of those patches within its region.
        occupied: Regions with at least one patch, before the tissue filter.
    """

    grid_size: int
    corners: np.ndarray
    tissue: np.ndarray
    rows: np.ndarray
    region: np.ndarray
    cell: np.ndarray
    occupied: int

    @property
    def num_regions(self) -> int:
        """The number of regions kept."""
        return len(self.corners)


def plan_regions(lattice: Lattice, grid_size: int, min_tissue: float) -> RegionPlan:
    """Group the lattice's patches into ``grid_size``-square regions and filter them.

    Args:
        lattice: The slide's patches on their lattice.
        grid_size: ``G``, patches per region side.
        min_tissue: Keep regions with at least this fraction of ``G²`` cells present.
    """
    g = grid_size
    cells = lattice.cells  # (N, 2) (col, row)
    region_xy = cells // g  # (N, 2) region (col, row)
    width = int(region_xy[:, 0].max()) + 1
    key = region_xy[:, 1] * width + region_xy[:, 0]  # row-major region order
    keys, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    need = math.ceil(min_tissue * g * g - 1e-9)
    kept = np.flatnonzero(counts >= need)
    number = np.full(len(keys), -1, dtype=np.int64)
    number[kept] = np.arange(len(kept))
    patch_region = number[inverse]
    order = np.argsort(patch_region, kind='stable')
    order = order[patch_region[order] >= 0]
    rq = np.stack([keys[kept] % width, keys[kept] // width], axis=1)  # (K, 2) (col, row)
    corners = lattice.corner(rq[:, 0] * g, rq[:, 1] * g)
    within = cells[order] - region_xy[order] * g  # (P, 2) (col, row) in region
    return RegionPlan(grid_size=g, corners=corners, tissue=counts[kept] / (g * g),
                      rows=order.astype(np.int64), region=patch_region[order],
                      cell=np.stack([within[:, 1], within[:, 0]], axis=1),
                      occupied=len(keys))


def plan_pieces(pieces: list[tuple[np.ndarray, Lattice]], grid_size: int,
                min_tissue: float) -> RegionPlan:
    """:func:`plan_regions` of each piece, as one plan over the file's rows.

    Args:
        pieces: ``(rows, lattice)`` per piece: the file rows of its patches and their
            lattice (from ``place(coords[rows], ...)``).
        grid_size: ``G``.
        min_tissue: As in :func:`plan_regions`.

    Returns:
        The pieces' regions in the given piece order, each piece's in row-major order.
    """
    plans = [(rows, plan_regions(lattice, grid_size, min_tissue)) for rows, lattice in pieces]
    offsets = np.cumsum([0] + [plan.num_regions for _, plan in plans])
    return RegionPlan(
        grid_size=grid_size,
        corners=np.concatenate([plan.corners for _, plan in plans]),
        tissue=np.concatenate([plan.tissue for _, plan in plans]),
        rows=np.concatenate([rows[plan.rows] for rows, plan in plans]),
        region=np.concatenate([plan.region + o for (_, plan), o in zip(plans, offsets)]),
        cell=np.concatenate([plan.cell for _, plan in plans]),
        occupied=sum(plan.occupied for _, plan in plans))


def read_rows(features, rows: np.ndarray, block_rows: int) -> np.ndarray:
    """Rows ``rows`` (sorted, unique) of an ``(N, D)`` h5py dataset, ``(len(rows), D)``.

    Reads contiguous blocks of at most ``block_rows`` rows, or the rows one by one
    (h5py point selection) where they are sparse in a block.
    """
    out = np.empty((len(rows), features.shape[1]), dtype=features.dtype)
    k = 0
    while k < len(rows):
        start = int(rows[k])
        end = int(np.searchsorted(rows, start + block_rows, side='left'))
        span = int(rows[end - 1]) - start + 1
        if span > 8 * (end - k):
            out[k:end] = features[rows[k:end]]
        else:
            out[k:end] = features[start:start + span][rows[k:end] - start]
        k = end
    return out


def iter_region_parts(features, coords: np.ndarray, plan: RegionPlan, where: str,
                      part_bytes: int = PART_BYTES
                      ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Assemble the kept regions, a few at a time, in region order.

    Args:
        features: The ``(N, D)`` h5py dataset (read lazily).
        coords: ``(N, 2)`` patch corners (for error messages).
        plan: From :func:`plan_regions`.
        where: Names the file in error messages.
        part_bytes: Features held per part. Defaults to 32 MiB.

    Yields:
        ``(grids (b, D, G, G), corners (b, 2) int64, masks (b, G, G) bool)``.

    Raises:
        StoreError: for a patch with NaN/Inf features, naming it.
    """
    g, dim = plan.grid_size, features.shape[1]
    region_bytes = g * g * dim * features.dtype.itemsize
    per_part = max(1, part_bytes // region_bytes)
    block_rows = max(1, part_bytes // (dim * features.dtype.itemsize))
    for r0 in range(0, plan.num_regions, per_part):
        count = min(per_part, plan.num_regions - r0)
        a, b = np.searchsorted(plan.region, [r0, r0 + count])
        rows = plan.rows[a:b]
        order = np.argsort(rows)
        values = np.empty((len(rows), dim), dtype=features.dtype)
        values[order] = read_rows(features, rows[order], block_rows)
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            k = rows[np.argmax(~finite)]
            raise StoreError(f'{where}: patch {k} at {coords[k].tolist()} has NaN/Inf '
                             f'features ({int((~finite).sum())} such patches in regions '
                             f'{r0}-{r0 + count - 1}); re-extract the slide')
        grid = np.zeros((count, g, g, dim), dtype=features.dtype)  # (b, G, G, D)
        mask = np.zeros((count, g, g), dtype=bool)
        local = plan.region[a:b] - r0
        i, j = plan.cell[a:b, 0], plan.cell[a:b, 1]
        grid[local, i, j] = values
        mask[local, i, j] = True
        corners = np.round(plan.corners[r0:r0 + count]).astype(np.int64)
        yield grid.transpose(0, 3, 1, 2), corners, mask
