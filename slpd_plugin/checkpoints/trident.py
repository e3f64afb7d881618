"""Write region and slide embeddings in TRIDENT's folder layout.

Patho-Bench, MIL-Lab and STAMP read feature folders as TRIDENT writes them (see
``shared/docs/feature-layouts.md``). For an encoder called ``name`` and a store made
from patch features at magnification ``M`` with ``G x G`` patches of ``P`` px per
region (provenance ``target_magnification``, ``grid_size``, ``patch_size_px``) this
writes, under ``<M>x_<G*P>px_0px_overlap/`` (TRIDENT's folder level; e.g.
``20x_4096px_0px_overlap/``)::

    features_<name>/<slide>.h5        dataset features (N, D) float32: one row per region;
                                      dataset coords (N, 2) int64: level-0 (x, y) of each
                                      region's top-left corner (when known)
    slide_features_<name>/<slide>.h5  dataset features (1, D) float32: the mean of the
                                      slide's region embeddings, one row as TRIDENT's
                                      slide encoders write it (Patho-Bench squeezes
                                      axis 0)

A store without that provenance (HIPT region features) gets the two folders directly
under the output folder. Whole-slide embeddings (``regions=False``,
``tools/extract_embeddings.py --level slide``) are one ``slide_features_<name>/`` folder,
under the patches' ``<M>x_<P>px_0px_overlap/``, where TRIDENT's slide encoders (TITAN,
PRISM) write theirs.

Attributes written: ``features.attrs`` ``name``, ``savetodir``, ``encoder``;
``coords.attrs`` ``name``, ``savetodir``, ``patch_size`` (``G * P``, the region's side
at its working magnification; 4096 without provenance), ``patch_size_level0`` (the
region's side in level-0 pixels from the store's geometry: ``G`` times the slide's
level-0 patch stride, so 8192 for a 40x slide extracted at 20x; without it, the
smallest positive step of the coordinates, or 4096 for a one-region slide),
``overlap`` (0) and, when the store records them, ``level0_magnification`` (per slide)
and ``target_magnification``.

Letters: N regions of one slide, D embedding size.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

__all__ = ['REGION_PX', 'TridentWriter', 'job_folder', 'level0_stride']

REGION_PX = 4096


def level0_stride(coords: np.ndarray) -> int:
    """The smallest positive step between region coordinates (N, 2); REGION_PX if none."""
    steps = [np.diff(np.unique(coords[:, a])) for a in (0, 1)]
    steps = np.concatenate(steps)
    steps = steps[steps > 0]
    return int(steps.min()) if steps.size else REGION_PX


def job_folder(provenance: dict | None) -> str | None:
    """TRIDENT's ``<mag>x_<px>px_0px_overlap`` folder name of a store's regions, or None.

    None for a store that does not record its magnification and patch size.
    """
    prov = provenance or {}
    mag, px = prov.get('target_magnification'), prov.get('patch_size_px')
    if mag is None or px is None:
        return None
    return f'{float(mag):g}x_{int(px) * int(prov.get("grid_size", 16))}px_0px_overlap'


class TridentWriter:
    """Writes one slide at a time into ``features_<name>/`` and ``slide_features_<name>/``.

    Both go under ``<mag>x_<px>px_0px_overlap/`` when ``provenance`` gives the geometry.

    Args:
        out_dir: The job folder (created).
        name: Encoder name in the folder names, e.g. ``'slpd_teacher'``.
        provenance: The store's provenance (``target_magnification``, ``patch_size_px``,
            ``grid_size``), or None. Defaults to None.
        regions: False for whole-slide embeddings only (:meth:`write_slide`): no
            ``features_<name>/`` folder, and the job folder is the patches'
            (``<M>x_<P>px_0px_overlap/``). Defaults to True.

    Example:
        >>> writer = TridentWriter('emb', 'slpd_teacher', store.provenance)
        >>> writer.write('TCGA-XX', np.zeros((3, 192), np.float32), coords, rec.source)
    """

    def __init__(self, out_dir: str | os.PathLike, name: str,
                 provenance: dict | None = None, regions: bool = True) -> None:
        if not name or os.sep in name:
            raise ValueError(f'encoder name {name!r} cannot be part of a folder name')
        self.name = name
        self.provenance = provenance or {}
        # whole-slide embeddings sit in the patch job folder, as TRIDENT's slide encoders'
        folder = job_folder(provenance if regions else {**self.provenance, 'grid_size': 1})
        self.root = Path(out_dir) / folder if folder else Path(out_dir)
        self.grid_size = int(self.provenance.get('grid_size', 16))
        self.region_px = (int(self.provenance['patch_size_px']) * self.grid_size
                          if folder else REGION_PX)
        self.patch_dir = self.root / f'features_{name}'
        self.slide_dir = self.root / f'slide_features_{name}'
        if regions:
            self.patch_dir.mkdir(parents=True, exist_ok=True)
        self.slide_dir.mkdir(parents=True, exist_ok=True)

    def _coords_attrs(self, slide_id: str, coords: np.ndarray, source: dict | None) -> dict:
        source = source or {}
        stride = source.get('stride')
        attrs = dict(name=slide_id, savetodir=str(self.patch_dir), patch_size=self.region_px,
                     patch_size_level0=(int(round(float(stride) * self.grid_size))
                                        if stride is not None else level0_stride(coords)),
                     overlap=0)
        for key, value in (('level0_magnification', source.get('level0_magnification')),
                           ('target_magnification',
                            self.provenance.get('target_magnification'))):
            if value is not None:
                attrs[key] = value
        return attrs

    def write(self, slide_id: str, feats: np.ndarray, coords: np.ndarray | None,
              source: dict | None = None) -> None:
        """Write one slide's region features (N, D), coords (N, 2) or None, and their mean.

        The mean is (1, D); ``source`` is the slide's store record (``stride``,
        ``level0_magnification``), or None.
        """
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
                cs.attrs.update(self._coords_attrs(slide_id, coords, source))
        self.write_slide(slide_id, feats.mean(axis=0))

    def write_slide(self, slide_id: str, embedding: np.ndarray) -> None:
        """Write one slide embedding ``(D,)`` as ``slide_features_<name>/<slide>.h5`` (1, D)."""
        embedding = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        with h5py.File(self.slide_dir / f'{slide_id}.h5', 'w') as fh:
            ds = fh.create_dataset('features', data=embedding)
            ds.attrs.update(name=slide_id, savetodir=str(self.slide_dir), encoder=self.name)
