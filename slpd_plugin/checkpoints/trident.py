"""Write region and slide embeddings in TRIDENT's folder layout.

Patho-Bench, MIL-Lab and STAMP read feature folders as TRIDENT writes them (see
``shared/docs/feature-layouts.md``). For an encoder called ``name`` this writes::

    features_<name>/<slide>.h5        dataset features (N, D) float32: one row per region;
                                      dataset coords (N, 2) int64: level-0 (x, y) of each
                                      region's top-left corner (when known)
    slide_features_<name>/<slide>.h5  dataset features (D,) float32: the mean of the
                                      slide's region embeddings

Attributes written: ``features.attrs`` ``name``, ``savetodir``, ``encoder``;
``coords.attrs`` ``name``, ``savetodir``, ``patch_size`` (4096, a HIPT region at its
working magnification), ``patch_size_level0`` (the level-0 region stride, inferred from
the coordinates as their smallest positive step; 4096 when a slide has one region) and
``overlap`` (0). The magnification attributes of TRIDENT (``level0_magnification``,
``target_magnification``) are not written: a feature store does not record them.

Letters: N regions of one slide, D embedding size.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

__all__ = ['REGION_PX', 'TridentWriter', 'level0_stride']

REGION_PX = 4096


def level0_stride(coords: np.ndarray) -> int:
    """The smallest positive step between region coordinates (N, 2); REGION_PX if none."""
    steps = [np.diff(np.unique(coords[:, a])) for a in (0, 1)]
    steps = np.concatenate(steps)
    steps = steps[steps > 0]
    return int(steps.min()) if steps.size else REGION_PX


class TridentWriter:
    """Writes one slide at a time into ``features_<name>/`` and ``slide_features_<name>/``.

    Args:
        out_dir: The job folder (created).
        name: Encoder name in the folder names, e.g. ``'slpd_teacher'``.

    Example:
        >>> writer = TridentWriter('emb', 'slpd_teacher')
        >>> writer.write('TCGA-XX', np.zeros((3, 192), np.float32), coords)
    """

    def __init__(self, out_dir: str | os.PathLike, name: str) -> None:
        if not name or os.sep in name:
            raise ValueError(f'encoder name {name!r} cannot be part of a folder name')
        self.name = name
        self.patch_dir = Path(out_dir) / f'features_{name}'
        self.slide_dir = Path(out_dir) / f'slide_features_{name}'
        self.patch_dir.mkdir(parents=True, exist_ok=True)
        self.slide_dir.mkdir(parents=True, exist_ok=True)

    def write(self, slide_id: str, feats: np.ndarray, coords: np.ndarray | None) -> None:
        """Write one slide's region features (N, D), coords (N, 2) or None, and mean."""
        feats = np.asarray(feats, dtype=np.float32)
        with h5py.File(self.patch_dir / f'{slide_id}.h5', 'w') as fh:
            ds = fh.create_dataset('features', data=feats)
            ds.attrs.update(name=slide_id, savetodir=str(self.patch_dir), encoder=self.name)
            if coords is not None:
                coords = np.asarray(coords, dtype=np.int64)
                if coords.shape != (len(feats), 2):
                    raise ValueError(f'{slide_id}: coords of shape {coords.shape} for '
                                     f'{len(feats)} regions; expected ({len(feats)}, 2)')
                cs = fh.create_dataset('coords', data=coords)
                cs.attrs.update(name=slide_id, savetodir=str(self.patch_dir),
                                patch_size=REGION_PX, patch_size_level0=level0_stride(coords),
                                overlap=0)
        with h5py.File(self.slide_dir / f'{slide_id}.h5', 'w') as fh:
            ds = fh.create_dataset('features', data=feats.mean(axis=0))
            ds.attrs.update(name=slide_id, savetodir=str(self.slide_dir), encoder=self.name)
