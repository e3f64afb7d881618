"""What the folder stores (memmap region store, lattice store) share on disk.

- :func:`read_folder_manifest`: a store folder's ``manifest.json``, checked, with the error a
  user needs for a missing folder, an interrupted write or another format.
- :func:`truncate_to_journal`: bring a data file back to the size its journal lists
  before a resumed write appends to it.
"""
from __future__ import annotations

import json
from pathlib import Path

from .base import StoreError

MANIFEST = 'manifest.json'


def read_folder_manifest(root: Path, *, kind: str, made_by: str, formats: tuple[str, ...],
                         interrupted: str | None) -> dict:
    """The complete manifest of the ``kind`` store at ``root``.

    Args:
        root: The store folder.
        kind: How errors name the store (``'feature store'``, ``'lattice store'``).
        made_by: The tools that make such a folder, for the not-found error.
        formats: Accepted values of the manifest's ``format``.
        interrupted: What to tell when a write into ``root`` was started but not
            finished (a journal is there); None when none was started.

    Raises:
        StoreError: for a missing folder, an unfinished write or another format.
    """
    if not root.is_dir():
        raise StoreError(f'{kind} not found: {root} (expected a folder made by {made_by})')
    manifest = root / MANIFEST
    if not manifest.is_file():
        hint = interrupted or f'no {MANIFEST}'
        raise StoreError(f'{kind} {root} is incomplete: {hint}')
    try:
        meta = json.loads(manifest.read_text())
    except json.JSONDecodeError as e:
        raise StoreError(f'{manifest}: not valid JSON ({e})') from None
    if meta.get('format') not in formats or not meta.get('complete'):
        raise StoreError(f'{manifest}: not a complete {formats[0]} store manifest '
                         f'(format {meta.get("format")!r})')
    return meta


def truncate_to_journal(path: Path, size: int, listed: str, redo: str) -> None:
    """Cut ``path`` to the ``size`` bytes its journal lists (a half-written slide's tail).

    Raises:
        StoreError: when the file is shorter than that (it lost data); ``listed`` says
            what the journal lists, ``redo`` what to do again after moving the store away.
    """
    with open(path, 'ab') as f:
        if f.tell() < size:
            raise StoreError(f'{path}: {f.tell()} bytes, but the journal lists {listed}: '
                             f'the file lost data; move the store away and {redo} again')
        f.truncate(size)
