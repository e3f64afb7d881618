"""Open TRIDENT, CLAM and STAMP patch-feature files: features, coordinates, stride.

Each reader returns a :class:`PatchSlide`: the ``(N, D)`` features as an open h5py
dataset (read later, region by region), the ``(N, 2)`` patch corners, the stride found
and cross-checked against every attribute the file has, and the facts that every slide
of one store must share (encoder, patch size, magnification). Every disagreement is a
:class:`StoreError` naming the file and both values.

- ``trident``: ``features`` + ``coords`` (level-0 px) with ``coords.attrs``
  ``patch_size``, ``patch_size_level0``, ``level0_magnification``,
  ``target_magnification``, ``overlap``; the encoder from ``features.attrs['encoder']``
  or the ``features_<encoder>`` folder; the job folder ``<mag>x_<px>px_<ov>px_overlap``
  is cross-checked too.
- ``clam``: ``h5_files/<slide>.h5`` (``features`` + ``coords``, no attributes); the
  stride from ``patches/<slide>.h5`` (``patch_size`` x ``downsample``) when found, else
  from ``patch_size_level0`` given by the user, else inferred from the coordinates.
- ``stamp``: ``feats`` + ``coords`` in micrometres (file attrs ``unit='um'``,
  ``tile_size_um``, ``tile_size_px``, ``extractor``); strides and region corners stay in
  micrometres.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..stores import StoreError
from .lattice import check_coords, infer_stride

PATCH_FORMATS = ('trident', 'clam', 'stamp')
JOB_FOLDER = re.compile(r'^(\d+(?:\.\d+)?)x_(\d+)px_(\d+)px_overlap$')


@dataclass
class PatchSlide:
    """One slide's patch features, open for reading.

    Attributes:
        path: The feature file.
        features: ``(N, D)`` h5py dataset (valid while the file is open).
        coords: ``(N, 2)`` patch top-left corners (level-0 px; micrometres for STAMP).
        stride: Step between neighbouring patches, in the coords' unit.
        stride_source: How the stride was found (an attribute, a file, an option, or
            inferred from the coordinates).
        store_info: Facts every slide of a store must share: ``format``, ``encoder``,
            ``patch_size_px`` (at the target magnification), ``target_magnification``,
            ``mpp`` (micrometres per pixel at the target magnification), ``coords_unit``
            (None where unknown).
        slide_info: This slide's own facts (``level0_magnification``, ``stride``, ...).
    """

    path: str
    features: h5py.Dataset
    coords: np.ndarray
    stride: float
    stride_source: str
    store_info: dict
    slide_info: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """``C``, the feature dimension of the patches."""
        return int(self.features.shape[1])


#: ``PatchSlide.stride_source`` of a stride inferred from the coordinates.
INFERRED = 'inferred from the coordinates'

def _value(value: object) -> object:
    """An HDF5 attribute as a plain Python value (bytes -> str, numpy -> Python)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(obj) -> dict:
    return {k: _value(v) for k, v in obj.attrs.items()}


def _dataset(f: h5py.File, name: str, path: str, fmt: str) -> h5py.Dataset:
    if name not in f:
        raise StoreError(f'{path}: no {name!r} dataset (found {sorted(f.keys())}); '
                         f'is this a {fmt} patch-feature file?')
    return f[name]


def _features(f: h5py.File, name: str, path: str, fmt: str) -> h5py.Dataset:
    features = _dataset(f, name, path, fmt)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
        raise StoreError(f'{path}: {name!r} is {features.dtype} of shape {features.shape}; '
                         f'expected (N, D) floating-point patch features')
    return features


def _coords(f: h5py.File, path: str, fmt: str, n: int) -> np.ndarray:
    coords = _dataset(f, 'coords', path, fmt)[()]
    if coords.shape != (n, 2):
        raise StoreError(f'{path}: coords of shape {coords.shape}, but features hold {n} '
                         f'patches; expected ({n}, 2)')
    return check_coords(coords, path)


def _same(path: str, what: str, a: object, a_from: str, b: object, b_from: str) -> None:
    """Refuse two sources of one fact that disagree (None means unknown)."""
    if a is not None and b is not None and float(a) != float(b):
        raise StoreError(f'{path}: {what} is {a:g} ({a_from}) but {b:g} ({b_from})')


def resolve_stride(coords: np.ndarray, expected: float | None, expected_from: str,
                   path: str) -> tuple[float, str]:
    """The stride: ``expected`` checked against the coordinates, or inferred from them.

    ``expected`` comes from attributes/options; an inferred stride is said in one
    warning line.

    Raises:
        StoreError: for a coordinate step smaller than ``expected`` (overlapping
            patches), or one that is not a whole multiple of it, or no way to find it.
    """
    inferred = infer_stride(coords)
    slack = 0.0 if np.issubdtype(coords.dtype, np.integer) else 0.01  # float: 1 %
    if expected is None:
        if inferred is None:
            raise StoreError(f'{path}: cannot find the patch stride: no attribute gives it '
                             f'and no two patches are neighbours; pass --patch-size-level0')
        warnings.warn(f'{path}: no attribute gives the level-0 patch stride; using '
                      f'{inferred:g}, the most common step between neighbouring patches',
                      stacklevel=2)
        return inferred, INFERRED
    if inferred is not None and inferred < expected * (1 - slack):
        raise StoreError(f'{path}: neighbouring patches are {inferred:g} apart but '
                         f'{expected_from} is {expected:g}: the patches overlap; re-extract '
                         f'them without overlap (a grid holds one patch per cell)')
    if inferred is not None and abs(inferred / expected - round(inferred / expected)) > slack:
        raise StoreError(f'{path}: the stride disagrees: neighbouring patches are '
                         f'{inferred:g} apart, but {expected_from} is {expected:g}')
    return expected, expected_from


def _job_folder(path: Path) -> dict:
    """Magnification, patch size and overlap from a TRIDENT job folder name, else {}.

    The folder (``20x_256px_0px_overlap``) is looked for above the file; the keys are
    ``target_magnification``, ``patch_size``, ``overlap``.
    """
    for parent in path.parents[:3]:
        m = JOB_FOLDER.match(parent.name)
        if m:
            return dict(target_magnification=float(m[1]), patch_size=int(m[2]),
                        overlap=int(m[3]), folder=str(parent))
    return {}


def _encoder_from_folder(path: Path) -> str | None:
    name = path.parent.name
    return name[len('features_'):] if name.startswith('features_') else None


def read_trident(f: h5py.File, path: str, patch_size_level0: int | None = None,
                 **_) -> PatchSlide:
    """A TRIDENT patch-feature file (see the module docstring)."""
    features = _features(f, 'features', path, 'TRIDENT')
    coords = _coords(f, path, 'TRIDENT', len(features))
    attrs = _attrs(f['coords'])
    job = _job_folder(Path(path))
    for key in ('target_magnification', 'patch_size', 'overlap'):
        _same(path, key, attrs.get(key), f'coords.attrs[{key!r}]', job.get(key),
              f'folder {job.get("folder")}')
    overlap = attrs.get('overlap', job.get('overlap'))
    if overlap:
        raise StoreError(f'{path}: patches overlap by {overlap} px (coords.attrs '
                         f'overlap); a grid holds one patch per cell: re-run TRIDENT '
                         f'with --overlap 0')
    patch_size = attrs.get('patch_size', job.get('patch_size'))
    target = attrs.get('target_magnification', job.get('target_magnification'))
    level0 = attrs.get('level0_magnification')
    level0_size = attrs.get('patch_size_level0')
    derived = (patch_size * level0 // target
               if None not in (patch_size, level0, target) else None)
    _same(path, 'the level-0 patch size', level0_size, "coords.attrs['patch_size_level0']",
          derived, f'patch_size {patch_size} x level0_magnification {level0} // '
                   f'target_magnification {target}')
    _same(path, 'the level-0 patch size', level0_size, "coords.attrs['patch_size_level0']",
          patch_size_level0, '--patch-size-level0')
    expected, source = next(((v, s) for v, s in (
        (level0_size, "coords.attrs['patch_size_level0']"),
        (derived, 'patch_size x level0_magnification / target_magnification'),
        (patch_size_level0, '--patch-size-level0')) if v is not None), (None, ''))
    stride, source = resolve_stride(coords, expected, source, path)
    encoder = _encoder(path, _value(features.attrs.get('encoder')),
                       _encoder_from_folder(Path(path)))
    return PatchSlide(
        path=path, features=features, coords=coords, stride=stride, stride_source=source,
        store_info=dict(format='trident', encoder=encoder, patch_size_px=patch_size,
                        target_magnification=target, mpp=None, coords_unit='level0_px'),
        slide_info=dict(level0_magnification=level0, patch_size_level0=level0_size,
                        level0_width=attrs.get('level0_width'),
                        level0_height=attrs.get('level0_height')))


def _encoder(path: str, attr: str | None, folder: str | None) -> str | None:
    """The encoder named by ``features.attrs`` and/or the folder; both must agree."""
    if attr and folder and attr != folder:
        raise StoreError(f"{path}: features.attrs['encoder'] is {attr!r} but the folder "
                         f"says features_{folder}")
    return attr or folder


def clam_patches_file(path: str, patches_dir: str | None) -> Path | None:
    """The CLAM ``patches/<slide>.h5`` matching ``h5_files/<slide>.h5``.

    In ``patches_dir`` when given (it must exist there), else beside ``h5_files/``.
    """
    name = Path(path).name
    if patches_dir is not None:
        found = Path(patches_dir) / name
        if not found.is_file():
            raise StoreError(f'{path}: no matching patches file {found} (--patches)')
        return found
    sibling = Path(path).parent.parent / 'patches' / name
    return sibling if sibling.is_file() else None


def read_clam(f: h5py.File, path: str, patch_size_level0: int | None = None,
              patches_dir: str | None = None, **_) -> PatchSlide:
    """A CLAM ``h5_files/`` file (see the module docstring)."""
    features = _features(f, 'features', path, 'CLAM')
    coords = _coords(f, path, 'CLAM', len(features))
    patches = clam_patches_file(path, patches_dir)
    expected, source, info, patch_size = patch_size_level0, '--patch-size-level0', {}, None
    if patches is not None:
        with h5py.File(patches, 'r') as p:
            attrs = _attrs(_dataset(p, 'coords', str(patches), 'CLAM patches'))
            patch_coords = p['coords'][()]
        if patch_coords.shape != coords.shape or not np.array_equal(
                np.sort(patch_coords, axis=0), np.sort(coords, axis=0)):
            raise StoreError(f'{path}: its coords ({len(coords)} patches) differ from '
                             f'those of {patches} ({len(patch_coords)} patches)')
        missing = [k for k in ('patch_size', 'downsample') if k not in attrs]
        if missing:
            raise StoreError(f'{patches}: coords.attrs lack {missing}; expected CLAM\'s '
                             f'patch_size, patch_level, downsample')
        downsample = np.atleast_1d(attrs['downsample']).astype(float)
        patch_size = attrs['patch_size']
        derived = round(patch_size * downsample[0])
        _same(path, 'the level-0 patch size', patch_size_level0, '--patch-size-level0',
              derived, f'{patches}: patch_size {patch_size} x downsample {downsample[0]:g}')
        expected = derived
        source = f'{patches}: patch_size x downsample'
        info = dict(patches_file=str(patches), patch_level=attrs.get('patch_level'))
    stride, source = resolve_stride(coords, expected, source, path)
    return PatchSlide(
        path=path, features=features, coords=coords, stride=stride, stride_source=source,
        store_info=dict(format='clam', encoder=None, patch_size_px=patch_size,
                        target_magnification=None, mpp=None, coords_unit='level0_px'),
        slide_info=info)


def read_stamp(f: h5py.File, path: str, **_) -> PatchSlide:
    """A STAMP/COBRA feature file (see the module docstring)."""
    features = _features(f, 'feats', path, 'STAMP')
    attrs = _attrs(f)
    if attrs.get('unit') not in ('um', 'µm', 'micron'):
        raise StoreError(f"{path}: file attrs unit={attrs.get('unit')!r}; expected "
                         f"unit='um' (STAMP coordinates in micrometres)")
    if 'tile_size_um' not in attrs:
        raise StoreError(f'{path}: file attrs lack tile_size_um (the tile side in '
                         f'micrometres, i.e. the stride)')
    coords = _coords(f, path, 'STAMP', len(features)).astype(np.float64)
    tile_um, tile_px = float(attrs['tile_size_um']), attrs.get('tile_size_px')
    stride, source = resolve_stride(coords, tile_um, "attrs['tile_size_um']", path)
    return PatchSlide(
        path=path, features=features, coords=coords, stride=stride, stride_source=source,
        store_info=dict(format='stamp', encoder=attrs.get('extractor'),
                        patch_size_px=tile_px, target_magnification=None,
                        mpp=tile_um / tile_px if tile_px else None, coords_unit='um',
                        tile_size_um=tile_um),
        slide_info=dict(code_hash=attrs.get('code_hash')))


READERS = dict(trident=read_trident, clam=read_clam, stamp=read_stamp)
