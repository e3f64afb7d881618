"""Read a lattice store: one folder, or shard folders joined by one manifest.

The folder layout is :mod:`.writer`'s. A sharded store (``--shard i/N``) is a folder
holding ``shard-<i>-of-<N>/`` lattice stores and a manifest of format
``slpd-lattice-shards`` naming them; its slides are the shards' slides sorted by id,
which is the order one writer gives them. Files are read through ``numpy.memmap``,
opened lazily, so a store is fork-safe in DataLoader workers and reads well from a
shared filesystem.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..stores import StoreError, store_dtype
from ..stores.folder import read_folder_manifest
from ..stores.journal import JOURNAL_FILE
from .layout import (
    CELLS,
    FEATURES,
    FORMAT,
    INDEX,
    MANIFEST,
    SHARDS_FORMAT,
    LatticeRecord,
)
from .source import LatticeSource

VERIFY_ROWS = 65536  # feature rows hashed per read by verify()


def read_lattice_manifest(path: str | os.PathLike) -> dict:
    """A lattice store's (or a sharded store's) manifest, checked.

    Raises:
        StoreError: for a missing folder, an unfinished conversion or another format.
    """
    root = Path(path)
    started = (root / JOURNAL_FILE).exists() or any(root.glob('shard-*'))
    resume = 'a conversion into it was interrupted: re-run the same command to complete it'
    return read_folder_manifest(root, kind='lattice store', made_by='tools/convert_lattice.py',
                                formats=(FORMAT, SHARDS_FORMAT),
                                interrupted=resume if started else None)


def is_lattice_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a lattice store's manifest."""
    try:
        meta = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return meta.get('format') in (FORMAT, SHARDS_FORMAT)


class _Folder:
    """One lattice store folder's files, mapped lazily."""

    def __init__(self, root: Path, meta: dict) -> None:
        self.root = root
        self.dtype = store_dtype(meta['dtype'])
        self.channels = int(meta['channels'])
        self.slides = [LatticeRecord.from_json(s) for s in meta['slides']]
        patches = sum(r.count for r in self.slides)
        self.shapes = {FEATURES: (patches, self.channels), CELLS: (patches, 3),
                       INDEX: (sum(r.index_size for r in self.slides),)}
        for name, shape in self.shapes.items():
            itemsize = self.dtype.itemsize if name == FEATURES else 4
            expected = int(np.prod(shape)) * itemsize
            actual = (root / name).stat().st_size if (root / name).exists() else -1
            if actual != expected:
                raise StoreError(f'{root / name}: expected {expected} bytes, found {actual} '
                                 f'(truncated or not this manifest\'s data)')
        self.maps: dict[str, np.memmap] = {}

    def map(self, name: str) -> np.memmap:
        if name not in self.maps:
            dtype = self.dtype if name == FEATURES else np.dtype('<i4')
            self.maps[name] = np.memmap(self.root / name, dtype=dtype, mode='r',
                                        shape=self.shapes[name])
        return self.maps[name]


class LatticeStore(LatticeSource):
    """A converted lattice store (one folder or joined shards), read through memmap.

    Args:
        path: The store folder.

    Example:
        >>> store = LatticeStore('data/brca_lattice')           # doctest: +SKIP
        >>> store.features(0).shape, store.index_map(0, 0).shape
        ((41822, 1536), (203, 311))
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.root = Path(path)
        self.location = str(self.root)
        meta = read_lattice_manifest(self.root)
        if meta['format'] == SHARDS_FORMAT:
            metas = [(self.root / name, read_lattice_manifest(self.root / name))
                     for name in meta['shards']]
            folders = [_Folder(root, m) for root, m in metas if m['slides']]
        else:
            folders = [_Folder(self.root, meta)]
        self._folders = folders
        where = sorted(((rec.slide_id, k, rec) for k, folder in enumerate(folders)
                        for rec in folder.slides), key=lambda t: t[0]) \
            if len(folders) > 1 else [(r.slide_id, 0, r) for r in folders[0].slides]
        self.slides = [rec for _, _, rec in where]
        self._folder_of = [k for _, k, _ in where]
        self.channels = folders[0].channels
        self.dtype = folders[0].dtype
        self.provenance = meta.get('provenance')
        for folder in folders:
            if (folder.channels, folder.dtype) != (self.channels, self.dtype):
                raise StoreError(f'{folder.root}: D={folder.channels} {folder.dtype.name}, '
                                 f'but the other shards hold D={self.channels} '
                                 f'{self.dtype.name}')

    def _folder(self, slide: int) -> _Folder:
        return self._folders[self._folder_of[slide]]

    def features(self, slide: int) -> np.ndarray:
        """The slide's patch features ``(N, D)``, memory-mapped."""
        rec = self.slides[slide]
        return self._folder(slide).map(FEATURES)[rec.offset:rec.offset + rec.count]

    def cells(self, slide: int) -> np.ndarray:
        """``(N, 3)`` int32 ``(piece, row, col)`` of every patch of the slide."""
        rec = self.slides[slide]
        return self._folder(slide).map(CELLS)[rec.offset:rec.offset + rec.count]

    def index_map(self, slide: int, piece: int) -> np.ndarray:
        """The ``(H, W)`` index map of one piece, memory-mapped."""
        p = self.slides[slide].pieces[piece]
        flat = self._folder(slide).map(INDEX)
        return flat[p.index_offset:p.index_offset + p.shape[0] * p.shape[1]].reshape(p.shape)

    @property
    def num_patches(self) -> int:
        """Patches of all slides."""
        return sum(r.count for r in self.slides)

    def nbytes(self) -> int:
        """Bytes on disk of the store's data files (features, cells, index maps)."""
        return sum((f.root / name).stat().st_size for f in self._folders
                   for name in (FEATURES, CELLS, INDEX))

    def mismatches(self, slide: int) -> list[str]:
        """Re-hash one slide; return ``'features'`` and/or ``'layout'`` where they differ.

        Both are compared with the manifest's checksums.
        """
        rec, feats = self.slides[slide], self.features(slide)
        digest = hashlib.sha256()
        for lo in range(0, len(feats), VERIFY_ROWS):
            digest.update(np.ascontiguousarray(feats[lo:lo + VERIFY_ROWS]).view(np.uint8))
        layout = hashlib.sha256(np.ascontiguousarray(self.cells(slide)).view(np.uint8))
        for k in range(len(rec.pieces)):
            layout.update(np.ascontiguousarray(self.index_map(slide, k)).view(np.uint8))
        return [name for name, got, want in (('features', digest, rec.sha256),
                                             ('layout', layout, rec.layout_sha256))
                if got.hexdigest() != want]

    def verify(self) -> list[str]:
        """Ids of the slides whose bytes no longer match their checksums."""
        return [rec.slide_id for i, rec in enumerate(self.slides) if self.mismatches(i)]

    def close(self) -> None:
        """Drop the memory maps; the next read maps the files again."""
        for folder in self._folders:
            folder.maps.clear()

    def __getstate__(self) -> dict:
        self.close()
        return self.__dict__.copy()
