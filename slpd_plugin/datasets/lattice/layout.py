"""What a slide lattice is: its pieces, their dense index maps, and the record of a slide.

A slide's patches sit on one square lattice of step ``stride`` (level-0 px; micrometres
for STAMP) and phase ``(px, py)`` (:mod:`slpd_plugin.datasets.ingest.lattice`), or on a
few shifted lattices, one per tissue piece, where the extractor tiled every piece from
its own corner (CLAM). Each lattice is a **piece**. A piece's **index map** is a dense
``(H, W)`` int32 array over the bounding box of its patches: ``map[r, c]`` is the row,
in the slide's feature array, of the patch whose top-left corner is
``phase + (origin_col + c, origin_row + r) * stride``, or -1 where there is no patch.
``(origin_col, origin_row)`` is the box's top-left lattice cell counted from the phase,
so lattice cell ``(col, row)`` sits at ``map[row - origin_row, col - origin_col]``.

Features are kept as stored: ``(N, D)`` in the source file's row order, no zero cells.

Letters: ``N`` patches of a slide, ``D`` feature width, ``H x W`` a piece's map.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..ingest.lattice import Lattice

FORMAT = 'slpd-lattice'
SHARDS_FORMAT = 'slpd-lattice-shards'
VERSION = 1
FEATURES, CELLS, INDEX = 'features.bin', 'cells.bin', 'index.bin'
MANIFEST = 'manifest.json'


@dataclass(frozen=True)
class Piece:
    """One lattice of a slide and where its index map lives.

    Attributes:
        phase: ``(px, py)`` of the lattice (coordinate units).
        origin: ``(origin_col, origin_row)``: lattice cell of ``map[0, 0]``.
        shape: ``(H, W)`` of the index map.
        index_offset: First int32 of the map in the store's ``index.bin``.
        patches: Patches of the piece.
    """

    phase: tuple[float, float]
    origin: tuple[int, int]
    shape: tuple[int, int]
    index_offset: int
    patches: int

    def corner(self, row: int, col: int, stride: float) -> tuple[float, float]:
        """Top-left ``(x, y)`` of map cell ``(row, col)``, coordinate units."""
        return (self.phase[0] + (self.origin[0] + col) * stride,
                self.phase[1] + (self.origin[1] + row) * stride)


@dataclass(frozen=True)
class LatticeRecord:
    """One slide in a lattice store's manifest.

    Attributes:
        slide_id: The slide's name.
        offset: Row of the slide's first patch in ``features.bin`` / ``cells.bin``.
        count: ``N``, the slide's patches.
        stride: Level-0 step between neighbouring patches (micrometres for STAMP).
        pieces: The slide's lattices (one unless tissue pieces sit on shifted lattices).
        sha256: Hex digest of the slide's feature bytes as stored.
        layout_sha256: Hex digest of its cells then its index maps, as stored.
        source: Provenance: source file, its size, how the stride was found, ...
    """

    slide_id: str
    offset: int
    count: int
    stride: float
    pieces: tuple[Piece, ...]
    sha256: str
    layout_sha256: str
    source: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The record as a manifest JSON object, pieces as dicts."""
        out = asdict(self)
        out['pieces'] = [asdict(p) for p in self.pieces]
        return out

    @classmethod
    def from_json(cls, entry: dict) -> 'LatticeRecord':
        """The record of a manifest JSON object (inverse of :meth:`to_json`)."""
        pieces = tuple(Piece(tuple(p['phase']), tuple(p['origin']), tuple(p['shape']),
                             p['index_offset'], p['patches']) for p in entry['pieces'])
        return cls(**{**entry, 'pieces': pieces})

    @property
    def index_size(self) -> int:
        """Cells of all the slide's index maps together."""
        return sum(p.shape[0] * p.shape[1] for p in self.pieces)


def build_maps(pieces: list[tuple[np.ndarray, Lattice]]
               ) -> tuple[list[tuple[tuple[int, int], np.ndarray]], np.ndarray]:
    """Index maps and patch cells of a slide's pieces.

    Args:
        pieces: ``(rows, lattice)`` per piece: file rows of its patches and their lattice
            (as from :func:`~slpd_plugin.datasets.ingest.patch_ingest.place_pieces`).

    Returns:
        ``[(origin, map (H, W) int32)]`` per piece, and ``cells`` ``(N, 3)`` int32:
        ``(piece, row, col)`` of every patch in its piece's map, in file-row order.
    """
    total = sum(len(rows) for rows, _ in pieces)
    cells = np.empty((total, 3), dtype=np.int32)
    maps = []
    for k, (rows, lattice) in enumerate(pieces):
        col, row = lattice.cells[:, 0], lattice.cells[:, 1]
        c0, r0 = int(col.min()), int(row.min())
        index = np.full((int(row.max()) - r0 + 1, int(col.max()) - c0 + 1), -1, np.int32)
        index[row - r0, col - c0] = rows
        cells[rows] = np.stack([np.full(len(rows), k), row - r0, col - c0], axis=1)
        maps.append(((c0, r0), index))
    return maps, cells
