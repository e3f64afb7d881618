"""The embedded store: one memory-mapped array of all region grids in a folder.

Layout of a store folder::

    grids.bin      raw little-endian grids, (N, C, G, G), float16 (default) or float32
    coords.bin     int64 (N, 2) region top-left corners, -1 where unknown
    masks.bin      uint8 (N, G, G) tissue masks, 1 where a cell holds a patch (absent in
                   stores written before masks existed: those read as all 1)
    journal.jsonl  one line per committed slide (id, offset, count, sha256); resumable
    manifest.json  written last: slides, counts, C, dtype, checksums, provenance,
                   ``complete: true``

No server, no pickle: the bytes are read through ``numpy.memmap``, opened lazily on the
first read so the store is fork-safe in DataLoader workers.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Iterable

import numpy as np

from . import journal
from .base import (
    GRID_SIZE,
    MANIFEST_VERSION,
    FeatureStore,
    RegionIndices,
    SlidePart,
    SlideRecord,
    StoreError,
    StoreWriter,
    flat_bytes,
    store_dtype,
)
from .folder import read_folder_manifest, truncate_to_journal

FORMAT = 'slpd-memmap'
GRIDS, COORDS, MANIFEST = 'grids.bin', 'coords.bin', 'manifest.json'
JOURNAL = journal.JOURNAL_FILE
MASKS = 'masks.bin'


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(path.suffix + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_manifest(path: str | os.PathLike) -> dict:
    """Load and check a memmap store's manifest.

    Raises:
        StoreError: if the folder is missing, the store was never finalised (an
            interrupted ingest), or the manifest is not a memmap store manifest.
    """
    root = Path(path)
    resume = ('an ingest into it was interrupted: re-run the same ingest command to '
              'complete it')
    return read_folder_manifest(root, kind='feature store',
                                made_by='tools/ingest.py or tools/make_synthetic.py',
                                formats=(FORMAT,),
                                interrupted=resume if (root / JOURNAL).exists() else None)


class MemmapStore(FeatureStore):
    """Read-only view of a memmap store folder.

    Args:
        path: The store folder.

    Examples:
        >>> store = MemmapStore('data/demo_store')        # doctest: +SKIP
        >>> store.read([0, 5]).shape                      # doctest: +SKIP
        (2, 384, 16, 16)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.root = Path(path)
        self.location = str(self.root)
        meta = read_manifest(self.root)
        self.channels = int(meta['channels'])
        self.grid_size = int(meta.get('grid_size', GRID_SIZE))
        self.dtype = store_dtype(meta['dtype'])
        self.slides = [SlideRecord(**s) for s in meta['slides']]
        self.has_coords = bool(meta.get('has_coords', False))
        self.has_masks = bool(meta.get('has_masks', False))
        self._provenance = meta.get('provenance')
        self._shape = (self.num_regions, self.channels, self.grid_size, self.grid_size)
        expected = int(np.prod(self._shape)) * self.dtype.itemsize
        actual = (self.root / GRIDS).stat().st_size if (self.root / GRIDS).exists() else -1
        if actual != expected:
            raise StoreError(f'{self.root / GRIDS}: expected {expected} bytes for '
                             f'{self._shape} {self.dtype}, found {actual} (truncated or '
                             f'not this manifest\'s data)')
        self._grids: np.memmap | None = None
        self._masks: np.memmap | None = None

    def _map(self) -> np.memmap:
        if self._grids is None:
            self._grids = np.memmap(self.root / GRIDS, dtype=self.dtype, mode='r',
                                    shape=self._shape)
        return self._grids

    def read(self, indices: RegionIndices) -> np.ndarray:
        """Regions by global index from the memory-mapped grids, ``(len(indices), C, G, G)``."""
        return self._map()[np.asarray(indices, dtype=np.int64)]

    def read_slide(self, slide: int) -> np.ndarray:
        """All regions of slide ``slide`` (by position), ``(n, C, G, G)``."""
        rec = self.slides[slide]
        return np.asarray(self._map()[rec.offset:rec.offset + rec.count])

    def coords(self) -> np.ndarray | None:
        """Region corners ``(N, 2)`` int64 from the coords file, or None if not stored."""
        if not self.has_coords:
            return None
        return np.fromfile(self.root / COORDS, dtype='<i8').reshape(-1, 2)

    def read_masks(self, indices: RegionIndices) -> np.ndarray:
        """Tissue masks ``(len(indices), G, G)`` bool from the masks file (all True if none)."""
        if not self.has_masks:
            return super().read_masks(indices)
        if self._masks is None:
            g = self.grid_size
            size = (self.root / MASKS).stat().st_size if (self.root / MASKS).exists() else -1
            if size != self.num_regions * g * g:
                raise StoreError(f'{self.root / MASKS}: expected {self.num_regions * g * g} '
                                 f'bytes of masks, found {size}')
            self._masks = np.memmap(self.root / MASKS, dtype=np.uint8, mode='r',
                                    shape=(self.num_regions, g, g))
        return self._masks[np.asarray(indices, dtype=np.int64)].astype(bool)

    @property
    def provenance(self) -> dict | None:
        """The manifest's patch-feature provenance, or None."""
        return self._provenance

    def close(self) -> None:
        """Drop the memory maps; the next read maps the files again."""
        self._grids = None
        self._masks = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_grids'] = None
        state['_masks'] = None
        return state


class MemmapStoreWriter(StoreWriter):
    """Append slides to a memmap store folder (created if missing), resumably.

    Re-opening a folder whose ingest was interrupted keeps every slide committed to the
    journal and drops the bytes of a slide that was half-written. Adding a slide to a
    finalised store removes its manifest until :meth:`finalize` runs again.

    Args:
        path: The store folder.
        channels: Expected ``C``; None takes it from the first slide (or the journal).
        dtype: ``'float16'`` (default, half the bytes) or ``'float32'`` (exact).
        grid_size: ``G``; must match the store's. Defaults to 16.
    """

    def __init__(self, path: str | os.PathLike, channels: int | None = None,
                 dtype: str = 'float16', grid_size: int = GRID_SIZE) -> None:
        self.root = Path(path)
        self.location = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.dtype = store_dtype(dtype)
        self.channels = channels
        self.grid_size = grid_size
        self.records: list[SlideRecord] = []
        self.has_coords = False
        self.provenance = None
        self._recover()

    def _recover(self) -> None:
        path = self.root / JOURNAL
        entries = journal.resume_writer(self, path.read_text().splitlines()
                                        if path.exists() else [])
        # regions of slides journaled before masks existed (all tissue)
        unmasked = sum(e['record']['count'] for e in entries if not e.get('has_masks'))
        n = sum(r.count for r in self.records)
        cells = self.grid_size * self.grid_size
        region_bytes = (self.channels or 0) * cells * self.dtype.itemsize
        with open(self.root / MASKS, 'ab') as f:
            if f.tell() < unmasked * cells:  # a store from before masks: all tissue
                f.write(np.ones((unmasked - f.tell() // cells) * cells, np.uint8).tobytes())
        for name, size in ((GRIDS, n * region_bytes), (COORDS, n * 16), (MASKS, n * cells)):
            truncate_to_journal(self.root / name, size, f'{n} regions ({size} bytes)',
                                'ingest')

    def add_slide_parts(self, slide_id: str, parts: Iterable[SlidePart],
                        source: dict | None = None) -> SlideRecord:
        """Append a slide to the three files, then its journal line (see the base class)."""
        self.check_new_slide(slide_id)
        (self.root / MANIFEST).unlink(missing_ok=True)
        channels, has_coords = self.channels, self.has_coords
        names = (GRIDS, COORDS, MASKS)
        sizes = {name: (self.root / name).stat().st_size for name in names}
        digest, mask_digest, count = hashlib.sha256(), hashlib.sha256(), 0
        try:
            with ExitStack() as stack:
                files = [stack.enter_context(open(self.root / name, 'ab')) for name in names]
                for grids, coords, masks in parts:
                    arrays = self.prepare_part(slide_id, grids, coords, masks)
                    digest.update(flat_bytes(arrays[0]))
                    mask_digest.update(flat_bytes(arrays[2]))
                    count += len(arrays[0])
                    for f, arr in zip(files, arrays):
                        f.write(flat_bytes(arr))
                if count == 0:
                    raise StoreError(f'slide {slide_id!r}: slide has no regions')
                for f in files:
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            for name in names:  # nothing of this slide stays
                os.truncate(self.root / name, sizes[name])
            self.channels, self.has_coords = channels, has_coords
            raise
        assert self.channels is not None  # set by prepare_part
        record = SlideRecord(slide_id, sum(r.count for r in self.records), count,
                             digest.hexdigest(), source, mask_digest.hexdigest())
        with open(self.root / JOURNAL, 'a') as lines:
            lines.write(journal.encode_entry(
                record, channels=self.channels, dtype=self.dtype, has_coords=self.has_coords,
                grid_size=self.grid_size, provenance=self.provenance) + '\n')
            lines.flush()
            os.fsync(lines.fileno())
        self.records.append(record)
        return record

    def finalize(self) -> None:
        """Write the manifest atomically; refuses an empty store."""
        if not self.records:
            raise StoreError(f'{self.root}: refusing to finalise an empty store '
                             f'(no slides were written)')
        _write_json_atomic(self.root / MANIFEST, dict(
            format=FORMAT, version=MANIFEST_VERSION, complete=True, **self.manifest()))
