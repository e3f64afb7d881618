"""Find the slides of a patch-feature source: a TRIDENT job, a CLAM folder, h5 files.

- ``trident``: a folder of ``<slide>.h5``, or a TRIDENT job folder: ``<job>/`` (with one
  ``<mag>x_<px>px_<ov>px_overlap/`` inside) or ``<job>/<mag>x_...overlap/`` (with one
  ``features_<encoder>/`` inside). Several candidates are refused, each named.
- ``clam``: ``h5_files/`` or the folder holding it. A ``pt_files/`` folder is refused:
  it has no coordinates.
- ``stamp``: a folder of ``<slide>.h5``.
- any format: one ``.h5`` file, or a ``.txt``/``.csv`` list as for region grids.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..stores import StoreError
from .patch_readers import JOB_FOLDER, PATCH_FORMATS
from .sources import H5_SUFFIXES, LIST_SUFFIXES, SlideSource, check_slide_id, find_sources

PT_FILES_HINT = ('a pt_files/ folder holds features only, without patch coordinates, so '
                 'the patches cannot be placed on a grid; ingest the h5_files/ folder '
                 'next to it (CLAM writes features and coords there; the patches/ folder '
                 'holds the coordinates alone)')


def _one(folder: Path, candidates: list[Path], what: str) -> Path:
    if len(candidates) != 1:
        names = ', '.join(p.name for p in candidates) or 'none'
        raise StoreError(f'{folder}: expected one {what} inside, found {names}; pass the '
                         f'one to ingest')
    return candidates[0]


def _trident_folder(folder: Path) -> Path:
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    jobs = [p for p in subdirs if JOB_FOLDER.match(p.name)]
    if jobs:
        folder = _one(folder, jobs, '<mag>x_<px>px_<overlap>px_overlap folder')
        subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if JOB_FOLDER.match(folder.name):
        feats = [p for p in subdirs if p.name.startswith('features_')]
        folder = _one(folder, feats, 'features_<encoder> folder')
    return folder


def _clam_folder(folder: Path) -> Path:
    if (folder / 'h5_files').is_dir():
        return folder / 'h5_files'
    if folder.name == 'pt_files' or (folder / 'pt_files').is_dir():
        raise StoreError(f'{folder}: {PT_FILES_HINT}')
    return folder


def find_patch_sources(src: str, fmt: str) -> list[SlideSource]:
    """All slides of ``src`` in format ``fmt``, sorted by id (sources of kind ``fmt``).

    Raises:
        StoreError: for an unknown format, a missing source, a pt_files/ folder, a
            folder with no .h5 file or with several job/encoder folders to choose from.
    """
    if fmt not in PATCH_FORMATS:
        raise StoreError(f'patch-feature format must be one of {PATCH_FORMATS}, got {fmt!r}')
    path = Path(src)
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return [replace(s, kind=fmt) for s in find_sources(src)]
    if path.is_file() and path.suffix.lower() in H5_SUFFIXES:
        return [SlideSource(check_slide_id(path.stem, src), str(path), fmt)]
    if path.is_file() and path.suffix.lower() in ('.pt', '.pth'):
        raise StoreError(f'{src}: {PT_FILES_HINT}')
    if not path.is_dir():
        raise StoreError(f'{src}: no such .h5 file or folder')
    folder = dict(trident=_trident_folder, clam=_clam_folder).get(fmt, lambda p: p)(path)
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in H5_SUFFIXES and not p.name.startswith('.'))
    if not files:
        pts = any(p.suffix.lower() in ('.pt', '.pth') for p in folder.iterdir())
        raise StoreError(f'{folder}: ' + (PT_FILES_HINT if pts else
                                          f'no .h5 patch-feature files ({fmt})'))
    return [SlideSource(check_slide_id(p.stem, str(folder)), str(p), fmt) for p in files]
