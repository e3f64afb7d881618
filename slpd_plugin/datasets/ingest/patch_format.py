"""Tell which tool wrote a folder of patch features: TRIDENT, CLAM or STAMP.

Looks at the folder's shape first (a TRIDENT job folder ``<mag>x_<px>px_<ov>px_overlap``
or ``features_<encoder>/``; CLAM's ``h5_files/``), then at the folder's first ``.h5`` file:
``feats`` is STAMP's; ``features`` ``(N, D)`` with ``coords`` carrying TRIDENT's
attributes (``patch_size_level0``, ``level0_magnification``) is TRIDENT's; with bare
``coords`` it is CLAM's. Region-grid files (``features`` of 3 or 4 dimensions) are none
of these.
"""
from __future__ import annotations

from pathlib import Path

import h5py

from ..stores import StoreError
from .patch_readers import JOB_FOLDER, PATCH_FORMATS
from .sources import H5_SUFFIXES

TRIDENT_ATTRS = ('patch_size_level0', 'level0_magnification', 'target_magnification')


def _first_h5(path: Path) -> Path | None:
    if path.is_file():
        return path if path.suffix.lower() in H5_SUFFIXES else None
    return next((p for p in sorted(path.iterdir())
                 if p.suffix.lower() in H5_SUFFIXES and not p.name.startswith('.')), None)


def _from_file(path: Path) -> str | None:
    try:
        with h5py.File(path, 'r') as f:
            if 'feats' in f and 'coords' in f:
                return 'stamp'
            if 'features' not in f or f['features'].ndim != 2 or 'coords' not in f:
                return None
            attrs = set(f['coords'].attrs)
            return 'trident' if attrs & set(TRIDENT_ATTRS) else 'clam'
    except OSError:
        return None


def detect_patch_format(src: str) -> str | None:
    """The patch-feature tool of ``src``: ``'trident'``, ``'clam'``, ``'stamp'``, or None.

    None when ``src`` holds no patch features of these tools (e.g. region grids).
    """
    path = Path(src)
    if path.is_dir():
        if (path / 'h5_files').is_dir() or path.name == 'h5_files':
            return 'clam'
        names = [path.name] + [p.name for p in path.iterdir() if p.is_dir()]
        if any(JOB_FOLDER.match(n) or n.startswith('features_') for n in names):
            return 'trident'
    first = _first_h5(path) if path.exists() else None
    return _from_file(first) if first is not None else None


def resolve_patch_format(src: str, fmt: str | None) -> str:
    """``fmt`` when given, else the detected format.

    Raises:
        StoreError: naming ``src`` when the layout cannot be told apart (pass --format).
    """
    if fmt is not None:
        return fmt
    if not Path(src).exists():
        raise StoreError(f'{src}: no such .h5 file or folder')
    found = detect_patch_format(src)
    if found is None:
        raise StoreError(f'{src}: cannot tell which tool wrote these patch features '
                         f'(expected h5 files with features (N, D) + coords, or feats + '
                         f'coords); pass --format {"|".join(PATCH_FORMATS)}')
    return found
