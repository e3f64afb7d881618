"""Embed every slide of a lattice whole: one embedding per slide from one encoder pass.

The slide-level counterpart of :mod:`.extract` (``tools/extract_embeddings.py --level
slide``) for slide encoders trained on patch-feature grids (TITAN/MOOZY style): each
slide's patches, all pieces together at their cells of one lattice
(:func:`~slpd_plugin.datasets.lattice.slide_cells`), go through the encoder's backbone
at once (:func:`~slpd_plugin.models.backbones.slide_encoding.encode_slide`: the dense
forward on the slide's bounding grid with its tissue mask, in memory linear in the
patches). Output folder::

    {slide_id}.pt                     float32 (1, D): the slide embedding (fmt 'hipt')
    slide_features_<name>/{slide}.h5  dataset features (1, D) float32 (fmt 'trident'),
                                      under the patches' <M>x_<P>px_0px_overlap/ when the
                                      lattice records them (:mod:`.trident`)
    slide_embeddings.npz              slide_id (S,) str, features (S, D) float32,
                                      num_patches (S,) int64
    extraction.json                   config, checkpoint, encoder, level, store, counts

Either folder of per-slide files is an embedding set of ``tools/eval_slides.py`` as it is
(a one-row file is a slide embedding).

Letters: S slides, N patches of one slide, D embedding size.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from slpd_plugin.datasets.lattice import LatticeSource, slide_cells
from slpd_plugin.models.backbones import encode_slide, supports_whole_slide
from slpd_plugin.utils.progress import progress_bar

from .extract import (
                      FORMATS,
                      META_FILE,
                      TABLE_FILE,
                      check_slide_ids,
                      check_width,
                      encoder_backbone,
)
from .trident import TridentWriter

__all__ = ['extract_slide_embeddings']


def extract_slide_embeddings(model: nn.Module, source: LatticeSource,
                             out_dir: str | os.PathLike, encoder: str = 'teacher',
                             chunk_size: int = 1024, device: str = 'cpu',
                             progress: bool = True, provenance: dict | None = None,
                             fmt: str = 'hipt', name: str | None = None) -> dict:
    """Write one whole-slide embedding per slide, the table and ``extraction.json``.

    Args:
        model: An :class:`~slpd_plugin.models.SLPD` (from
            :func:`~slpd_plugin.checkpoints.reading.load_encoder`) whose ``encoder``
            backbone supports whole-slide encoding (ALiBiViT, ViT4K).
        source: The slide lattices (a lattice store or a patch-feature folder read in
            place, :func:`~slpd_plugin.datasets.lattice.open_lattice`).
        out_dir: Output folder (created).
        encoder: ``'teacher'`` or ``'student'``. Defaults to 'teacher'.
        chunk_size: Queries per attention chunk (memory ``O(chunk_size * N)``).
            Defaults to 1024.
        device: Torch device. Defaults to 'cpu'.
        progress: Show a progress bar over slides. Defaults to True.
        provenance: Extra entries for ``extraction.json``. Defaults to None.
        fmt: ``'hipt'`` (``{slide_id}.pt``) or ``'trident'``. Defaults to 'hipt'.
        name: Encoder name of the TRIDENT folder. Defaults to None (``slpd_{encoder}``).

    Returns:
        The content of ``extraction.json``.

    Raises:
        ValueError: for a backbone without whole-slide support (naming the first slide),
            features of another width, or slide ids that cannot be file names.
    """
    check_slide_ids(source.slide_ids, source.location)
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {FORMATS}, got {fmt!r}')
    backbone = encoder_backbone(model, encoder)
    if not supports_whole_slide(backbone):
        first = source.slide_ids[0] if source.slide_ids else '(none)'
        raise ValueError(f'{source.location}: slide {first}: the {encoder} backbone '
                         f'{type(backbone).__name__} has no whole-slide encoding (supported: '
                         f'ALiBiViT, ViT4K); use --level region (mean of region embeddings)')
    check_width(backbone, source.channels, source.location)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trident = (TridentWriter(out, name or f'slpd_{encoder}', source.provenance, regions=False)
               if fmt == 'trident' else None)
    backbone = backbone.to(device)
    start = time.time()
    rows, counts = [], []
    for s in progress_bar(range(source.num_slides), unit='slide', desc='embedding slides',
                          disable=not progress):
        slide_id = source.slide_ids[s]
        feats = torch.from_numpy(np.asarray(source.features(s), dtype=np.float32))
        cells = torch.from_numpy(slide_cells(source, s))
        try:
            emb = encode_slide(backbone, feats.to(device), cells, chunk_size).float().cpu()
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f'{source.location}: slide {slide_id}: {err}') from err
        if trident is not None:
            trident.write_slide(slide_id, emb.numpy())
        else:
            torch.save(emb[None].clone(), out / f'{slide_id}.pt')
        rows.append(emb.numpy())
        counts.append(len(feats))
    source.close()
    dim = int(rows[0].shape[0]) if rows else 0
    np.savez(out / TABLE_FILE, slide_id=np.array(source.slide_ids),
             features=np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0)),
             num_patches=np.array(counts, dtype=np.int64))
    meta = dict(provenance or {}, store=source.location, encoder=encoder, level='slide',
                num_slides=source.num_slides, num_patches=int(sum(counts)),
                embedding_dim=dim, device=device, format=fmt, chunk_size=chunk_size,
                seconds=round(time.time() - start, 2))
    (out / META_FILE).write_text(json.dumps(meta, indent=1))
    return meta
