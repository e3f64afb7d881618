"""Export a store back to per-slide files: ``{slide_id}.pt`` or ``{slide_id}.h5``.

- ``.pt``: a tensor ``(N, C, 16, 16)`` (``torch.save``; loads with ``weights_only=True``).
  Coordinates are not part of this layout. A slide with holes is written as a dict
  ``{'features': ..., 'masks': (N, 16, 16) bool}`` instead.
- ``.h5``: dataset ``features`` ``(N, C, 16, 16)`` and, when the store knows them,
  ``coords`` ``(N, 2)`` int64; ``masks`` ``(N, 16, 16)`` bool for a slide with holes.

``tools/ingest.py`` reads all of these back, masks included.

Each file is written under a temporary name and renamed, so a file with the final name
is always complete; existing files are replaced.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch

from slpd_plugin.utils.progress import progress_bar

from ..stores import open_store
from .sources import check_slide_id

FORMATS = ('pt', 'h5')
EXPORT_DTYPES = ('float32', 'float16')


def _write(path: Path, grids: np.ndarray, coords: np.ndarray | None,
           masks: np.ndarray | None, fmt: str) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    if fmt == 'pt':
        features = torch.from_numpy(grids)
        torch.save(features if masks is None
                   else dict(features=features, masks=torch.from_numpy(masks)), tmp)
    else:
        with h5py.File(tmp, 'w') as f:
            f.create_dataset('features', data=grids)
            if coords is not None:
                f.create_dataset('coords', data=coords)
            if masks is not None:
                f.create_dataset('masks', data=masks)
    os.replace(tmp, path)


def export_store(store: str, out: str | os.PathLike, fmt: str = 'pt',
                 dtype: str = 'float32', progress: bool = True) -> list[Path]:
    """Write every slide of ``store`` to ``out/{slide_id}.{fmt}``.

    Args:
        store: A folder path or ``redis://`` URI of a complete store.
        out: Output folder (created).
        fmt: ``'pt'`` or ``'h5'``. Defaults to 'pt'.
        dtype: dtype of the written grids, ``'float32'`` or ``'float16'``.
            Defaults to 'float32'.
        progress: Show a progress bar. Defaults to True.

    Returns:
        The files written, in store order.

    Raises:
        ValueError: for an unknown ``fmt`` or ``dtype``.
        StoreError: if the store cannot be read.
    """
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {FORMATS}, got {fmt!r}')
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f'dtype must be one of {EXPORT_DTYPES}, got {dtype!r}')
    opened = open_store(store)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        coords = opened.coords()
        for i, rec in enumerate(progress_bar(opened.slides, desc='export', unit='slide',
                                     disable=not progress)):
            path = out / f'{check_slide_id(rec.slide_id, opened.location)}.{fmt}'
            slide_coords = None
            if coords is not None:
                slide_coords = coords[rec.offset:rec.offset + rec.count]
                slide_coords = None if (slide_coords < 0).all() else slide_coords
            grids = np.array(opened.read_slide(i), dtype=dtype, order='C')
            masks = opened.read_masks(np.arange(rec.offset, rec.offset + rec.count))
            _write(path, grids, slide_coords, None if masks.all() else masks, fmt)
            written.append(path)
    finally:
        opened.close()
    return written
