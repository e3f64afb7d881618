"""What every slide-lattice source offers: slides, index maps, features, windows.

A source is a converted store or h5 files read in place; windows are gathered from
the features through the index maps.

Letters: ``b`` windows, ``G`` window side, ``D`` feature width.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .layout import LatticeRecord
from .windows import window_indices


class LatticeSource(ABC):
    """Slides as patch lattices; a window is one gather through an index map.

    Subclasses fill :attr:`slides`, :attr:`channels`, :attr:`dtype`, :attr:`location`,
    :attr:`provenance` and implement :meth:`features` and :meth:`index_map`. An instance
    must be cheap to pickle before its first read (DataLoader workers open their own
    handles).

    Example:
        >>> src = LatticeStore('data/lattice')                  # doctest: +SKIP
        >>> feats, masks = src.gather(0, 0, [0, 3], [0, 5], 16)
        >>> feats.shape, masks.shape
        ((2, 1536, 16, 16), (2, 16, 16))
    """

    location: str
    slides: list[LatticeRecord]
    channels: int
    dtype: np.dtype
    provenance: dict | None = None

    @abstractmethod
    def features(self, slide: int) -> np.ndarray:
        """The slide's ``(N, D)`` features (a memmap or an array; rows in file order)."""

    @abstractmethod
    def index_map(self, slide: int, piece: int) -> np.ndarray:
        """The ``(H, W)`` int32 index map of one piece of a slide (-1: no patch)."""

    def close(self) -> None:  # noqa: B027 (optional: sources without handles keep it)
        """Release handles; they reopen on the next read."""

    @property
    def slide_ids(self) -> list[str]:
        """The slide ids, in storage order."""
        return [r.slide_id for r in self.slides]

    @property
    def num_slides(self) -> int:
        """The number of slides."""
        return len(self.slides)

    def gather_cells_last(self, slide: int, piece: int, rows, cols, size: int,
                          out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Windows of ``size x size`` cells with top-left map cells ``(rows, cols)``, cells first.

        One ``np.take`` of the feature rows, into ``out`` when given.

        Cells outside the map or without a patch are zero and False in the mask.

        Returns:
            ``(features (b, G, G, D) in the store dtype, masks (b, G, G) bool)``.
        """
        index = window_indices(self.index_map(slide, piece), rows, cols, size)
        present = index >= 0
        if out is None:
            out = np.empty(index.shape + (self.channels,), dtype=self.dtype)
        np.take(self.features(slide), np.where(present, index, 0), axis=0, out=out,
                mode='clip')  # indices are in range; 'clip' writes out unbuffered
        out[~present] = 0
        return out, present

    def gather(self, slide: int, piece: int, rows, cols, size: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`gather_cells_last` as HIPT's grids: ``(b, D, G, G)`` (contiguous)."""
        out, present = self.gather_cells_last(slide, piece, rows, cols, size)
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2)), present

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.location!r}, slides={self.num_slides}, '
                f'D={getattr(self, "channels", None)})')
