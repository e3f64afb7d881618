"""Find the slides of an ingest source: a folder, a list/CSV of paths, or a store.

Accepted sources (one slide each):

- ``{slide_id}.pt`` / ``.pth``: a tensor ``(N, 256, C)`` (HIPT, token-major) or
  ``(N, C, 16, 16)`` (SLPD), or a dict with ``features`` (+ ``coords``).
- ``{slide_id}.h5`` / ``.hdf5``: datasets ``features`` (either layout) and optionally
  ``coords`` ``(N, 2)`` (CLAM style).
- ``{slide_id}/`` a folder of per-region ``.pt`` files, each ``(256, C)`` or
  ``(C, 16, 16)``; regions in natural name order (``r2`` before ``r10``); names ending in
  ``_<x>_<y>`` give the region coordinates.
- A store (a memmap store folder or a ``redis://`` URI): all its slides, e.g. to copy a
  store to Redis.

A source folder may mix the three file kinds; hidden entries (``.name``) and other files
are ignored. A list file (``.txt``: one path per line, ``#`` comments) or a ``.csv``
(column ``path``, optional ``slide_id``) names files/folders, relative to its folder.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..stores import StoreError, is_redis_uri, open_store

PT_SUFFIXES = ('.pt', '.pth')
H5_SUFFIXES = ('.h5', '.hdf5')
LIST_SUFFIXES = ('.txt', '.lst', '.csv')
_BAD_ID = re.compile(r'[/\\\x00-\x1f]')


@dataclass(frozen=True)
class SlideSource:
    """Where one slide's features come from.

    Attributes:
        slide_id: The slide's name in the store.
        path: The file, per-region folder, or store path/URI (may hold a password).
        kind: ``'pt'``, ``'h5'``, ``'regions'`` (per-region folder) or ``'store'``.
        position: The slide's position in a source store (kind ``'store'`` only).
        label: How messages name the source (a store's location, without password).
    """

    slide_id: str
    path: str
    kind: str
    position: int = -1
    label: str = ''

    def describe(self) -> str:
        """Names the file and slide in error messages."""
        if self.kind == 'store':
            return f'slide {self.slide_id!r} of {self.label}'
        return f'{self.path} (slide {self.slide_id!r})'


def check_slide_id(slide_id: str, where: str) -> str:
    """Reject ids that are empty or unsafe as file names (``/``, ``..``, control chars)."""
    if not slide_id or slide_id in ('.', '..') or _BAD_ID.search(slide_id):
        raise StoreError(f'{where}: invalid slide id {slide_id!r} (empty, "..", or contains '
                         f'a path separator or control character)')
    return slide_id


def _source_of(path: Path, slide_id: str | None, where: str) -> SlideSource:
    suffix = path.suffix.lower()
    if path.is_dir():
        kind = 'regions'
    elif suffix in PT_SUFFIXES:
        kind = 'pt'
    elif suffix in H5_SUFFIXES:
        kind = 'h5'
    elif not path.exists():
        raise StoreError(f'{where}: {path} does not exist')
    else:
        raise StoreError(f'{where}: {path} is not a .pt/.pth/.h5/.hdf5 file or a folder '
                         f'of per-region .pt files')
    sid = slide_id if slide_id else (path.name if kind == 'regions' else path.stem)
    return SlideSource(check_slide_id(sid, where), str(path), kind)


def _from_list(path: Path) -> list[SlideSource]:
    base = path.parent
    if path.suffix.lower() == '.csv':
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or 'path' not in reader.fieldnames:
                raise StoreError(f'{path}: expected a CSV with a "path" column (and '
                                 f'optionally "slide_id"), got columns {reader.fieldnames}')
            rows = [(row['path'], row.get('slide_id'), f'{path}:{i + 2}')
                    for i, row in enumerate(reader)]
    else:
        rows = [(line.strip(), None, f'{path}:{i + 1}')
                for i, line in enumerate(path.read_text().splitlines())
                if line.strip() and not line.lstrip().startswith('#')]
    return [_source_of(base / p if not Path(p).is_absolute() else Path(p), sid or None, w)
            for p, sid, w in rows]


def _from_store(uri: str) -> list[SlideSource]:
    store = open_store(uri)
    try:
        return [SlideSource(rec.slide_id, uri, 'store', i, store.location)
                for i, rec in enumerate(store.slides)]
    finally:
        store.close()


def find_sources(src: str) -> list[SlideSource]:
    """All slides of ``src`` (see the module docstring), in a stable order.

    Raises:
        StoreError: if ``src`` does not exist, holds no slides, names a file of an
            unknown kind, or two sources give the same slide id (both are named).
    """
    path = Path(src)
    if is_redis_uri(src) or (path / 'grids.bin').is_file():
        sources = _from_store(src)
    elif path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith('.'))
        sources = [_source_of(p, None, str(path)) for p in entries
                   if p.is_dir() or p.suffix.lower() in PT_SUFFIXES + H5_SUFFIXES]
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        sources = _from_list(path)
    elif path.is_file():
        raise StoreError(f'{src}: expected a folder, a list of paths ({LIST_SUFFIXES}) or '
                         f'a store; for a single slide file, list it in a .txt file')
    else:
        raise StoreError(f'{src}: no such file or folder')
    if not sources:
        raise StoreError(f'{src}: no slides found (expected .pt/.pth/.h5/.hdf5 files or '
                         f'per-region folders)')
    seen: dict[str, str] = {}
    for s in sources:
        if s.slide_id in seen:
            raise StoreError(f'duplicate slide id {s.slide_id!r}: {seen[s.slide_id]} and '
                             f'{s.path}')
        seen[s.slide_id] = s.path
    return sources
