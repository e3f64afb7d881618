"""Write a store's slides as TRIDENT patch-feature files (the demo's modern path).

Each region ``[C, G, G]`` at level-0 corner ``(x0, y0)`` becomes ``G²`` patches of 256 px
at 20x: the patch at ``grid[:, i, j]`` gets the corner ``(x0 + j*s, y0 + i*s)`` (HIPT's
orientation; ``s = 256`` on a 20x slide, 512 on a 40x one). A fraction of each region's
cells is dropped (holes, as where a tissue mask ends), and the first ``slides_40x``
slides are written as 40x scans extracted at 20x (level-0 coordinates doubled,
``patch_size_level0 = 512``), so ingesting the files back exercises masks and the
magnification checks. Regions without coordinates are laid out in one row.

Layout written (as TRIDENT does)::

    OUT/20x_256px_0px_overlap/features_<encoder>/<slide_id>.h5
        features (N, C) float32, attrs encoder
        coords   (N, 2) int64 level-0 (x, y), attrs patch_size, patch_size_level0,
                 level0_magnification, target_magnification, overlap, name
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from slpd_plugin.datasets.stores import open_store

PATCH_PX = 256
JOB = '20x_256px_0px_overlap'


def write_trident_slide(path: Path, grids: np.ndarray, corners: np.ndarray, keep: np.ndarray,
                        level0_magnification: int, encoder: str) -> int:
    """Write one slide's regions ``(n, C, G, G)`` as patches; return the number written.

    ``keep`` ``(n, G, G)`` bool says which cells are written.
    """
    n, c, g = grids.shape[:3]
    scale = level0_magnification // 20
    stride = PATCH_PX * scale
    r, i, j = np.nonzero(keep)
    coords = np.stack([corners[r, 0] * scale + j * stride,
                       corners[r, 1] * scale + i * stride], axis=1).astype(np.int64)
    feats = grids[r, :, i, j].astype(np.float32)  # (N, C)
    with h5py.File(path, 'w') as f:
        f.create_dataset('features', data=feats)
        f['features'].attrs.update(encoder=encoder, name=path.stem)
        ds = f.create_dataset('coords', data=coords)
        ds.attrs.update(patch_size=PATCH_PX, patch_size_level0=stride,
                        level0_magnification=level0_magnification, target_magnification=20,
                        overlap=0, name=path.stem)
    return len(coords)


def store_to_trident(store: str | os.PathLike, out: str | os.PathLike,
                     encoder: str = 'synthetic', hole_fraction: float = 0.1,
                     slides_40x: int = 1, seed: int = 0) -> Path:
    """Write every slide of ``store`` as a TRIDENT patch-feature file under ``out``.

    Args:
        store: A complete store (region coordinates, if any, are 20x level-0 px).
        out: The TRIDENT job folder to write (created).
        encoder: Name recorded in ``features_<encoder>`` and the file attrs.
            Defaults to 'synthetic'.
        hole_fraction: Share of cells dropped at random in each region. Defaults to 0.1.
        slides_40x: The first this many slides are written as 40x scans. Defaults to 1.
        seed: Seed of the holes. Defaults to 0.

    Returns:
        The ``features_<encoder>`` folder.
    """
    opened = open_store(store)
    folder = Path(out) / JOB / f'features_{encoder}'
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    coords = opened.coords()
    region_px = PATCH_PX * opened.grid_size
    try:
        for s, rec in enumerate(opened.slides):
            grids = np.asarray(opened.read_slide(s), dtype=np.float32)
            idx = np.arange(rec.offset, rec.offset + rec.count)
            corners = coords[idx] if coords is not None else None
            if corners is None or (corners < 0).any():
                corners = np.stack([np.arange(rec.count) * region_px,
                                    np.zeros(rec.count, np.int64)], axis=1)
            keep = (rng.random((rec.count, opened.grid_size, opened.grid_size))
                    >= hole_fraction) & opened.read_masks(idx)
            write_trident_slide(folder / f'{rec.slide_id}.h5', grids, corners, keep,
                                40 if s < slides_40x else 20, encoder)
    finally:
        opened.close()
    return folder
