"""Write slide lattices into a store folder, journalled so a crash loses nothing committed.

Layout of a lattice store folder::

    features.bin   (P, D) every slide's patch features as stored, slides one after another
    cells.bin      (P, 3) int32 (piece, row, col) of every patch in its piece's index map
    index.bin      int32 every piece's dense index map, row-major, one after another
    journal.jsonl  one line per committed slide (its record); resumable
    manifest.json  written last: slides, D, dtype, geometry, checksums, ``complete: true``

A slide is appended to the three files, they are fsynced, then its journal line is
written: a slide is committed once its line is. Re-opening the folder truncates the
files to what the journal lists, dropping a half-written slide.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Iterable

import numpy as np

from ..stores import StoreError, store_dtype
from ..stores.folder import truncate_to_journal
from ..stores.journal import JOURNAL_FILE, parse_lines
from .layout import CELLS, FEATURES, FORMAT, INDEX, MANIFEST, VERSION, LatticeRecord, Piece


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON to ``path`` through a fsynced temporary file."""
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def as_bytes(array: np.ndarray) -> memoryview:
    """A C-contiguous array's bytes as one flat uint8 view (for hashing and writing)."""
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


class LatticeWriter:
    """Append slide lattices to a store folder (created if missing), resumably.

    Args:
        path: The store folder.
        dtype: Storage dtype of the features: ``'float16'`` (default) or ``'float32'``.
        channels: Expected ``D``; None takes it from the first slide (or the journal).

    Example:
        >>> w = LatticeWriter('data/lattice')                   # doctest: +SKIP
        >>> w.add_slide('s1', [feats], cells, maps, stride=512.0, phases=[(0, 0)])
        >>> w.finalize()
    """

    def __init__(self, path: str | os.PathLike, dtype: str = 'float16',
                 channels: int | None = None) -> None:
        self.root = Path(path)
        self.location = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.dtype = store_dtype(dtype)
        self.channels = channels
        self.records: list[LatticeRecord] = []
        self.provenance: dict | None = None
        self._recover()

    def _recover(self) -> None:
        path = self.root / JOURNAL_FILE
        for entry in parse_lines(path.read_text().splitlines() if path.exists() else [],
                                 self.location):
            if entry['dtype'] != self.dtype.name:
                raise StoreError(f'{self.location}: store holds {entry["dtype"]} features, '
                                 f'writer asked for {self.dtype.name}')
            if self.channels not in (None, entry['channels']):
                raise StoreError(f'{self.location}: store holds D={entry["channels"]}, '
                                 f'writer asked for D={self.channels}')
            self.channels = entry['channels']
            self.provenance = entry.get('provenance', self.provenance)
            self.records.append(LatticeRecord.from_json(entry['record']))
        patches = sum(r.count for r in self.records)
        cells = sum(r.index_size for r in self.records)
        sizes = {FEATURES: patches * (self.channels or 0) * self.dtype.itemsize,
                 CELLS: patches * 12, INDEX: cells * 4}
        for name, size in sizes.items():
            truncate_to_journal(self.root / name, size, f'{size}', 'convert')

    def written_slides(self) -> list[str]:
        """Ids of the slides committed so far, in order."""
        return [r.slide_id for r in self.records]

    def add_slide(self, slide_id: str, chunks: Iterable[np.ndarray], cells: np.ndarray,
                  maps: list[tuple[tuple[int, int], np.ndarray]], stride: float,
                  phases: list[tuple[float, float]], source: dict | None = None
                  ) -> LatticeRecord:
        """Append one slide: features streamed in chunks, then its cells and maps.

        Args:
            slide_id: Unique slide name.
            chunks: ``(n, D)`` feature arrays in file-row order (cast to the store dtype).
            cells: ``(N, 3)`` int32 from :func:`~.layout.build_maps`.
            maps: ``[(origin, index map)]`` per piece, from :func:`~.layout.build_maps`.
            stride: The slide's level-0 stride.
            phases: Each piece's lattice phase.
            source: Per-slide provenance.

        Raises:
            StoreError: for a duplicate id, a D that differs from the store's, or a
                number of feature rows that differs from ``len(cells)``. If ``chunks``
                raises, nothing of the slide stays and the error propagates.
        """
        if slide_id in set(self.written_slides()):
            raise StoreError(f'slide {slide_id!r}: duplicate slide id, already in '
                             f'{self.location}')
        (self.root / MANIFEST).unlink(missing_ok=True)
        names = (FEATURES, CELLS, INDEX)
        sizes = {name: (self.root / name).stat().st_size for name in names}
        channels = self.channels
        digest, layout, count = hashlib.sha256(), hashlib.sha256(), 0
        try:
            with ExitStack() as stack:
                feats, cell_file, index_file = (
                    stack.enter_context(open(self.root / name, 'ab')) for name in names)
                for chunk in chunks:
                    if self.channels not in (None, chunk.shape[1]):
                        raise StoreError(f'slide {slide_id!r}: D={chunk.shape[1]} features, '
                                         f'but the store {self.location} has '
                                         f'D={self.channels}')
                    self.channels = int(chunk.shape[1])
                    data = as_bytes(chunk.astype(self.dtype, copy=False))
                    digest.update(data)
                    feats.write(data)
                    count += len(chunk)
                if count != len(cells):
                    raise StoreError(f'slide {slide_id!r}: {count} feature rows for '
                                     f'{len(cells)} patch positions')
                pieces, offset = [], sum(r.index_size for r in self.records)
                cell_bytes = as_bytes(cells.astype('<i4'))
                layout.update(cell_bytes)
                cell_file.write(cell_bytes)
                for (origin, index), phase in zip(maps, phases):
                    index_bytes = as_bytes(index.astype('<i4'))
                    layout.update(index_bytes)
                    index_file.write(index_bytes)
                    pieces.append(Piece(tuple(float(v) for v in phase),
                                        tuple(int(v) for v in origin), tuple(index.shape),
                                        offset, int((index >= 0).sum())))
                    offset += index.size
                for f in (feats, cell_file, index_file):
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            for name in names:  # nothing of this slide stays
                os.truncate(self.root / name, sizes[name])
            self.channels = channels
            raise
        record = LatticeRecord(slide_id, sum(r.count for r in self.records), count,
                               float(stride), tuple(pieces), digest.hexdigest(),
                               layout.hexdigest(), dict(source or {}))
        entry = dict(record=record.to_json(), channels=self.channels, dtype=self.dtype.name)
        if self.provenance is not None:
            entry['provenance'] = self.provenance
        with open(self.root / JOURNAL_FILE, 'a') as f:
            f.write(json.dumps(entry) + '\n')
            f.flush()
            os.fsync(f.fileno())
        self.records.append(record)
        return record

    def manifest(self) -> dict:
        """The manifest: format, ``D``, dtype, patch count, provenance and slide records."""
        return dict(format=FORMAT, version=VERSION, complete=True, channels=self.channels,
                    dtype=self.dtype.name, num_patches=sum(r.count for r in self.records),
                    provenance=self.provenance,
                    slides=[r.to_json() for r in self.records])

    def finalize(self, allow_empty: bool = False) -> None:
        """Write the manifest last, making the store readable.

        An empty store is written only with ``allow_empty`` (a shard given no slide).
        """
        if not self.records and not allow_empty:
            raise StoreError(f'{self.root}: refusing to finalise an empty lattice store '
                             f'(no slides were written)')
        write_json_atomic(self.root / MANIFEST, self.manifest())
