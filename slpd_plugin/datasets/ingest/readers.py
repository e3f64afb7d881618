"""Read one slide's features from any supported layout into ``(N, C, 16, 16)`` grids.

Layouts (``N`` regions, ``C`` channels, 16x16 patches per region):

- ``hipt``: ``(N, 256, C)``, token-major, row-major 16x16: ``grid[c, i, j] =
  seq[i * 16 + j, c]``.
- ``slpd``: ``(N, C, 16, 16)``, stored as is.
- ``regions``: one ``(256, C)`` or ``(C, 16, 16)`` file per region.

``.pt`` files are loaded with ``torch.load(..., weights_only=True)``: tensors and plain
containers only, never arbitrary pickled objects.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from ..stores import StoreError, check_grids, open_store
from ..stores.base import GRID_SIZE
from .sources import SlideSource

TOKENS = GRID_SIZE * GRID_SIZE
_XY = re.compile(r'_(-?\d+)_(-?\d+)$')
_DIGITS = re.compile(r'(\d+)')


@dataclass
class SlideData:
    """One slide read from its source.

    Attributes:
        grids: ``(N, C, 16, 16)`` floating-point grids.
        coords: ``(N, 2)`` int64 region top-left corners, or None.
        layout: ``'hipt'``, ``'slpd'``, ``'regions'`` or ``'store'``.
        masks: ``(N, 16, 16)`` bool tissue masks (True = a patch), or None for all
            present (files written by ``tools/export.py`` from a store with holes hold
            them).
    """

    grids: np.ndarray
    coords: np.ndarray | None
    layout: str
    masks: np.ndarray | None = None


def _to_numpy(value: object, what: str, where: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    if isinstance(value, np.ndarray):
        return value
    raise StoreError(f'{where}: {what} is a {type(value).__name__}, expected a tensor')


def to_grids(features: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """Convert ``(N, 256, C)`` or ``(N, C, 16, 16)`` features to ``(N, C, 16, 16)``.

    Returns:
        The grids (a view where possible) and the layout name.
    """
    shape = tuple(features.shape)
    if features.ndim == 4 and shape[2:] == (GRID_SIZE, GRID_SIZE):
        return features, 'slpd'
    if features.ndim == 3 and shape[1] == TOKENS:
        grids = features.reshape(shape[0], GRID_SIZE, GRID_SIZE, shape[2])
        return grids.transpose(0, 3, 1, 2), 'hipt'
    raise StoreError(f'{where}: features of shape {shape}; expected (N, {TOKENS}, C) '
                     f'token-major (HIPT) or (N, C, {GRID_SIZE}, {GRID_SIZE}) grids (SLPD)')


def _check_coords(coords: np.ndarray | None, n: int, where: str) -> np.ndarray | None:
    if coords is None:
        return None
    if coords.shape != (n, 2):
        raise StoreError(f'{where}: coords of shape {tuple(coords.shape)}, expected ({n}, 2) '
                         f'for {n} regions')
    if not np.issubdtype(coords.dtype, np.integer):
        if not (np.isfinite(coords).all() and (coords == np.round(coords)).all()):
            raise StoreError(f'{where}: coords must be whole numbers (level-0 pixels)')
    return coords.astype(np.int64)


def _check_masks(masks: np.ndarray | None, n: int, where: str) -> np.ndarray | None:
    if masks is None:
        return None
    if masks.shape != (n, GRID_SIZE, GRID_SIZE) or masks.dtype not in (np.bool_, np.uint8):
        raise StoreError(f'{where}: masks of shape {tuple(masks.shape)} and dtype '
                         f'{masks.dtype}, expected ({n}, {GRID_SIZE}, {GRID_SIZE}) bool')
    return masks.astype(bool)


def _load_pt(path: str) -> object:
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise StoreError(f'{path}: cannot load as a weights-only torch file (truncated, '
                         f'corrupt, or holds pickled objects?): {type(e).__name__}: '
                         f'{str(e).splitlines()[0] if str(e) else ""}') from None


def _read_pt(path: str) -> SlideData:
    obj = _load_pt(path)
    coords = masks = None
    if isinstance(obj, dict):
        if 'features' not in obj:
            raise StoreError(f'{path}: a dict without a "features" entry (keys: '
                             f'{sorted(map(str, obj))[:10]})')
        coords, masks = obj.get('coords'), obj.get('masks')
        obj = obj['features']
    grids, layout = to_grids(_to_numpy(obj, 'the content', path), path)
    if coords is not None:
        coords = _check_coords(_to_numpy(coords, 'coords', path), len(grids), path)
    if masks is not None:
        masks = _check_masks(_to_numpy(masks, 'masks', path), len(grids), path)
    return SlideData(grids, coords, layout, masks)


def _read_h5(path: str) -> SlideData:
    try:
        with h5py.File(path, 'r') as f:
            if 'features' not in f:
                raise StoreError(f'{path}: no "features" dataset (found {sorted(f.keys())})')
            features = f['features'][()]
            coords = f['coords'][()] if 'coords' in f else None
            masks = f['masks'][()] if 'masks' in f else None
    except OSError as e:
        raise StoreError(f'{path}: cannot read as HDF5 (truncated or corrupt?): {e}') from None
    grids, layout = to_grids(np.asarray(features), path)
    return SlideData(grids, _check_coords(coords, len(grids), path), layout,
                     _check_masks(masks, len(grids), path))


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in _DIGITS.split(name)]


def _read_regions(folder: str) -> SlideData:
    files = sorted((p for p in Path(folder).iterdir()
                    if p.suffix.lower() in ('.pt', '.pth') and not p.name.startswith('.')),
                   key=lambda p: _natural_key(p.name))
    if not files:
        raise StoreError(f'{folder}: slide folder holds no per-region .pt files (empty slide)')
    grids = []
    for p in files:
        region = _to_numpy(_load_pt(str(p)), 'the content', str(p))
        if region.shape[:1] == (TOKENS,) and region.ndim == 2:
            region = region.T.reshape(-1, GRID_SIZE, GRID_SIZE)
        elif region.ndim != 3 or region.shape[1:] != (GRID_SIZE, GRID_SIZE):
            raise StoreError(f'{p}: region of shape {tuple(region.shape)}; expected '
                             f'({TOKENS}, C) or (C, {GRID_SIZE}, {GRID_SIZE})')
        if grids and region.shape != grids[0].shape:
            raise StoreError(f'{p}: region of shape {tuple(region.shape)}, but {files[0]} '
                             f'has {tuple(grids[0].shape)}')
        grids.append(region)
    xy = [_XY.search(p.stem) for p in files]
    coords = (np.array([[int(m[1]), int(m[2])] for m in xy], dtype=np.int64)
              if all(xy) else None)
    return SlideData(np.stack(grids), coords, 'regions')


class StoreReader:
    """Reads the slides of a source store, opening it and its coords once.

    Args:
        uri: The source store's path or URI.
    """

    def __init__(self, uri: str) -> None:
        self.store = open_store(uri)
        self._coords = self.store.coords()

    def read(self, position: int) -> SlideData:
        """Slide ``position`` of the source store: grids, coords if known, masks if holes."""
        rec = self.store.slides[position]
        coords = None
        if self._coords is not None:
            coords = self._coords[rec.offset:rec.offset + rec.count]
            coords = None if (coords < 0).all() else coords
        masks = self.store.read_masks(np.arange(rec.offset, rec.offset + rec.count))
        return SlideData(self.store.read_slide(position), coords, 'store',
                         None if masks.all() else masks)

    def close(self) -> None:
        """Close the source store."""
        self.store.close()


def read_slide(source: SlideSource, channels: int | None = None,
               store: StoreReader | None = None) -> SlideData:
    """Read and check one slide.

    Args:
        source: Where the slide is.
        channels: ``C`` of the slides already in the store, or None.
        store: The open source store, for a source of kind ``'store'``.

    Returns:
        The slide's grids ``(N, C, 16, 16)`` (float, finite), coords and layout.

    Raises:
        StoreError: naming the file (or slide) for an unreadable/truncated file, a
            wrong shape, a ``C`` that differs from ``channels``, no regions, a
            non-floating dtype or NaN/Inf values.
    """
    if source.kind == 'store':
        if store is None:
            raise ValueError(f'{source.describe()}: pass the open StoreReader of its store')
        data = store.read(source.position)
    else:
        readers = dict(pt=_read_pt, h5=_read_h5, regions=_read_regions)
        data = readers[source.kind](source.path)
    where = source.describe()
    if channels is not None and data.grids.shape[1] != channels:
        raise StoreError(f'{where}: C={data.grids.shape[1]} channels, but the store (or the '
                         f'slides before it) has C={channels}: all slides of a store must '
                         f'come from the same patch encoder')
    check_grids(data.grids, channels, where)
    return data
