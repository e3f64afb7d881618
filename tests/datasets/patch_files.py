"""Write patch-feature files as TRIDENT, CLAM and STAMP do, and assemble regions the
simple way (a dict of cells), independently of the package."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def lattice_slide(rng, cols: int, rows: int, stride: int, dim: int, keep: float = 0.7,
                  phase=(0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Patches on a ``cols x rows`` lattice with random holes: (coords (N, 2), feats)."""
    cells = [(c, r) for r in range(rows) for c in range(cols) if rng.random() < keep]
    order = rng.permutation(len(cells))  # files need not be in lattice order
    coords = np.array(cells, dtype=np.int64)[order] * stride + np.array(phase)
    feats = rng.standard_normal((len(coords), dim)).astype(np.float32)
    return coords, feats


def write_trident(path: Path, coords, feats, patch_size=256, level0_mag=20, target_mag=20,
                  overlap=0, encoder='uni_v1', patch_size_level0=None, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, 'w') as f:
        f.create_dataset('features', data=feats)
        f['features'].attrs['encoder'] = encoder
        c = f.create_dataset('coords', data=np.asarray(coords, dtype=np.int64))
        c.attrs.update(dict(
            patch_size=patch_size, level0_magnification=level0_mag,
            target_magnification=target_mag, overlap=overlap, name=path.stem,
            patch_size_level0=(patch_size * level0_mag // target_mag
                               if patch_size_level0 is None else patch_size_level0)),
            **extra)
    return path


def write_clam(root: Path, slide: str, coords, feats, patches: dict | None = None) -> Path:
    """``root/h5_files/slide.h5`` (no attributes) and, given ``patches`` attrs,
    ``root/patches/slide.h5``."""
    path = root / 'h5_files' / f'{slide}.h5'
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, 'w') as f:
        f.create_dataset('features', data=feats)
        f.create_dataset('coords', data=np.asarray(coords, dtype=np.int32))
    if patches is not None:
        (root / 'patches').mkdir(exist_ok=True)
        with h5py.File(root / 'patches' / f'{slide}.h5', 'w') as f:
            f.create_dataset('coords', data=np.asarray(coords, dtype=np.int64))
            f['coords'].attrs.update(patches)
    return path


def write_stamp(path: Path, coords_um, feats, tile_size_um=256.0, tile_size_px=224) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, 'w') as f:
        f.create_dataset('feats', data=feats)
        f.create_dataset('coords', data=np.asarray(coords_um, dtype=np.float64))
        f.attrs.update(unit='um', tile_size_um=tile_size_um, tile_size_px=tile_size_px,
                       extractor='ctranspath', feat_type='tile', code_hash='abc')
    return path


def simple_regions(coords, feats, stride, g=16, min_tissue=0.25):
    """Regions from a dict of cells, anchored at the slide origin.

    Returns (grids (K, D, G, G), masks (K, G, G), corners (K, 2)) in row-major order.
    """
    phase = (coords[0][0] % stride, coords[0][1] % stride)
    regions: dict[tuple[int, int], dict] = {}
    for (x, y), f in zip(coords, feats):
        col, row = round((x - phase[0]) / stride), round((y - phase[1]) / stride)
        regions.setdefault((row // g, col // g), {})[(row % g, col % g)] = f
    grids, masks, corners = [], [], []
    for (rr, rc) in sorted(regions):
        cells = regions[(rr, rc)]
        if len(cells) / (g * g) < min_tissue:
            continue
        grid = np.zeros((feats.shape[1], g, g), np.float32)
        mask = np.zeros((g, g), bool)
        for (i, j), f in cells.items():
            grid[:, i, j] = f
            mask[i, j] = True
        grids.append(grid)
        masks.append(mask)
        corners.append((phase[0] + rc * g * stride, phase[1] + rr * g * stride))
    return np.array(grids), np.array(masks), np.array(corners)
