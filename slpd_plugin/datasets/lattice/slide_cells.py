"""Every patch of a slide on one lattice: the cells a whole-slide encoder sees.

A slide's pieces each have their own index map (:mod:`.layout`); a whole-slide encoder
takes all the slide's patches at once, at their cells of one lattice. A piece's map
cell ``(r, c)`` sits ``phase / stride + origin + (c, r)`` strides from the coordinate
origin; :func:`slide_cells` counts them from the first piece's phase, rounded to whole
cells. Pieces on one lattice (TRIDENT, STAMP, and CLAM slides whose pieces share the
phase) keep their exact cells; pieces on shifted lattices (CLAM's per-piece tiling) are
placed on the nearest cells of the first one's.

Letters: ``N`` patches of a slide.
"""
from __future__ import annotations

import numpy as np

from ..stores import StoreError
from .source import LatticeSource


def slide_cells(source: LatticeSource, slide: int) -> np.ndarray:
    """The ``(row, col)`` lattice cell of every patch of a slide, ``(N, 2)`` int64.

    Rows follow the slide's feature rows (:meth:`LatticeSource.features`).

    Raises:
        StoreError: if the index maps do not place every patch exactly once.

    Example:
        >>> cells = slide_cells(LatticeStore('data/brca_lattice'), 0)  # doctest: +SKIP
        >>> cells.shape                                     # (N, 2): row, col
        (41822, 2)
    """
    rec = source.slides[slide]
    cells = np.zeros((rec.count, 2), dtype=np.int64)
    placed = np.zeros(rec.count, dtype=np.int64)
    first = rec.pieces[0].phase
    for k, piece in enumerate(rec.pieces):
        index = np.asarray(source.index_map(slide, k))
        r, c = np.nonzero(index >= 0)
        rows = index[r, c]
        # whole strides from the first piece's phase (0 for pieces on one lattice)
        shift_x = (piece.phase[0] - first[0]) / rec.stride
        shift_y = (piece.phase[1] - first[1]) / rec.stride
        cells[rows, 0] = np.rint(piece.origin[1] + r + shift_y).astype(np.int64)
        cells[rows, 1] = np.rint(piece.origin[0] + c + shift_x).astype(np.int64)
        np.add.at(placed, rows, 1)
    if (placed != 1).any():
        raise StoreError(f'{source.location}: slide {rec.slide_id}: its index maps place '
                         f'{int((placed == 0).sum())} patch(es) nowhere and '
                         f'{int((placed > 1).sum())} more than once; expected each of its '
                         f'{rec.count} patches once')
    return cells
