"""Place a slide's patches on one square lattice: find the stride, check it, index cells.

Patch-feature files give each patch's top-left corner (level-0 pixels, or micrometres for
STAMP). A grid needs every patch on one lattice of step ``s`` (the stride): corner
``(x, y) = (px + col * s, py + row * s)`` for whole ``col, row >= 0`` and one phase
``(px, py)`` in ``[0, s)``. The stride is the most common step between neighbouring
patches of a row or a column; every step must then be a whole multiple of it (holes
are fine), or the slide holds **mixed strides**. The phase is the first patch's
position modulo ``s``; every patch must share it, or the patches sit on several shifted
lattices. CLAM tiles each tissue piece from its own corner, so its multi-piece slides do:
:func:`split_by_phase` separates the pieces, and each is placed on its own lattice.

Letters: ``N`` patches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stores import StoreError

MAX_PIECES = 64  # shifted lattices accepted in one slide (CLAM: one per tissue piece)


@dataclass(frozen=True)
class Lattice:
    """Where a slide's patches sit.

    Attributes:
        stride: Step between neighbouring patches, in coordinate units.
        phase: ``(px, py)``, the lattice point nearest the slide origin (``0 <= p < s``).
        cells: ``(N, 2)`` int64 ``(col, row)`` of each patch, counted from the phase.
    """

    stride: float
    phase: tuple[float, float]
    cells: np.ndarray

    def corner(self, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Top-left coordinates ``(n, 2)`` of lattice cells ``(col, row)``."""
        return np.stack([self.phase[0] + col * self.stride,
                         self.phase[1] + row * self.stride], axis=1)


def _tolerance(coords: np.ndarray, stride: float) -> float:
    """The tolerance of coordinate matches: exact for integer pixels.

    For float (micrometre) coords, 1 % of the stride (at least 1 unit).
    """
    return 0.0 if np.issubdtype(coords.dtype, np.integer) else max(0.01 * stride, 1.0)


def _whole(coords: np.ndarray) -> np.ndarray:
    """Coordinates rounded to whole units.

    Rows and steps of float (micrometre) coords carrying rounding noise then compare equal.
    """
    return coords if np.issubdtype(coords.dtype, np.integer) else np.round(coords)


def _neighbour_steps(coords: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps along ``axis`` between neighbours of a row/column, and where each starts.

    The second array is the index of the first patch of each step.
    """
    other = 1 - axis
    order = np.lexsort((coords[:, axis], coords[:, other]))
    ordered = coords[order]
    same = ordered[1:, other] == ordered[:-1, other]
    steps = (ordered[1:, axis] - ordered[:-1, axis])[same]
    return steps, order[:-1][same]


def infer_stride(coords: np.ndarray) -> float | None:
    """The most common positive step between neighbours of a row or column, or None.

    None when no two patches share a row or column.
    """
    steps = np.concatenate([_neighbour_steps(_whole(coords), a)[0] for a in (0, 1)])
    steps = steps[steps > 0]
    if steps.size == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    return values[np.argmax(counts)].item()


def check_coords(coords: np.ndarray, where: str) -> np.ndarray:
    """Refuse coordinates of the wrong shape, non-finite, negative or duplicated."""
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) == 0:
        raise StoreError(f'{where}: coords of shape {tuple(coords.shape)}; expected (N, 2) '
                         f'patch top-left corners with N >= 1')
    if not np.issubdtype(coords.dtype, np.integer) and not np.isfinite(coords).all():
        raise StoreError(f'{where}: coords hold NaN/Inf values')
    if (_whole(coords) < 0).any():  # float coords: rounding noise below 0 is fine
        bad = coords[(_whole(coords) < 0).any(axis=1)][0].tolist()
        raise StoreError(f'{where}: negative coordinate {bad}; expected level-0 corners >= 0')
    unique, first, counts = np.unique(coords, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        k = int(np.argmax(counts > 1))
        raise StoreError(f'{where}: duplicate coordinates: {unique[k].tolist()} appears '
                         f'{counts[k]} times (first at patch {first[k]}); each patch '
                         f'position must appear once')
    return coords


def place(coords: np.ndarray, stride: float, where: str) -> Lattice:
    """Index every patch on the lattice of step ``stride``.

    Raises:
        StoreError: naming ``where`` and both values, for steps that are not multiples
            of ``stride`` (mixed strides) or patches off the first patch's lattice.
    """
    tol = _tolerance(coords, stride)
    for axis in (0, 1):
        steps, first = _neighbour_steps(_whole(coords), axis)
        off = np.abs(steps / stride - np.round(steps / stride)) * stride
        bad = np.flatnonzero(off > tol)
        if bad.size:
            k = first[bad[0]]
            raise StoreError(
                f'{where}: mixed strides: patches are {stride:g} apart, but the patch at '
                f'{coords[k].tolist()} has a neighbour {steps[bad[0]]:g} away along '
                f'{"xy"[axis]}: the coordinates do not sit on one lattice (were two '
                f'extractions merged into one file?)')
    phase = np.mod(coords[0], stride)
    phase = np.where(phase > stride - tol, phase - stride, phase) if tol else phase
    index = (coords - phase) / stride
    off = np.abs(index - np.round(index)).max(axis=1) * stride
    if (off > tol).any():
        k = int(np.argmax(off > tol))
        raise StoreError(
            f'{where}: patches sit on shifted lattices: stride {stride:g}, the patch at '
            f'{coords[0].tolist()} has phase {phase.tolist()} but the one at '
            f'{coords[k].tolist()} has phase {np.mod(coords[k], stride).tolist()} (CLAM '
            f'tiles each tissue piece from its own corner): pass --shifted-lattices split '
            f'to cut each piece on its own lattice, or re-extract the patches on one '
            f'slide-wide grid (e.g. with TRIDENT)')
    cells = np.round(index).astype(np.int64)
    if tol and len(np.unique(cells, axis=0)) < len(cells):
        raise StoreError(f'{where}: duplicate coordinates: two patches fall within '
                         f'{tol:g} of the same lattice point (stride {stride:g})')
    return Lattice(stride=stride, phase=(phase[0].item(), phase[1].item()), cells=cells)


def split_by_phase(coords: np.ndarray, stride: float, where: str,
                   max_pieces: int = MAX_PIECES) -> list[np.ndarray]:
    """The row indices of each shifted lattice's patches, largest lattice first.

    For files that tile every tissue piece from its own corner (CLAM). One array holding
    every row when all patches share one phase.

    Float (micrometre) coordinates whose phases differ by at most the tolerance of
    :func:`place` share a lattice.

    Raises:
        StoreError: when the phases make more than ``max_pieces`` lattices: that is no
            longer a few tissue pieces but coordinates on no lattice at all.
    """
    tol = _tolerance(coords, stride)
    phase = np.mod(coords, stride)
    if tol:  # noise just below the stride is phase 0; buckets of one tolerance
        phase = np.where(phase > stride - tol, phase - stride, phase)
        phase = np.round(phase / tol)
    keys, inverse, counts = np.unique(phase, axis=0, return_inverse=True, return_counts=True)
    piece_of = np.empty(len(keys), dtype=np.int64)  # phase key -> piece
    centres: list[np.ndarray] = []
    for k in np.argsort(-counts, kind='stable'):  # greedy: the biggest phases first
        # integer coords: every phase is its own lattice; float: neighbouring buckets merge
        piece_of[k] = next((c for c, centre in enumerate(centres)
                            if tol and np.abs(keys[k] - centre).max() <= 1.5), len(centres))
        if piece_of[k] == len(centres):
            centres.append(keys[k])
        if len(centres) > max_pieces:
            raise StoreError(
                f'{where}: the patches sit on more than {max_pieces} shifted lattices of '
                f'stride {stride:g}: these are not a few tissue pieces tiled from their own '
                f'corners; check the coordinates and the stride')
    piece = piece_of[inverse.reshape(-1)]
    rows = [np.flatnonzero(piece == p) for p in range(len(centres))]
    return sorted(rows, key=len, reverse=True)
