"""Baselines that need no pretrained encoder: the raw region features of a feature store.

A store holds, per region, a ``(C, 16, 16)`` grid of patch features (HIPT's ViT-256
output, C = 384). Averaging a region's grid over its cells gives one raw feature per
region; a slide is the bag ``(N, C)`` of those:

- mean-pooled, the bag is the "mean raw features" baseline of knn/linear/few-shot/
  retrieval/Cox (:func:`bags_to_slide_embeddings`);
- as a bag, it feeds a small *supervised* gated-attention MIL (ABMIL) trained on each
  train part: :data:`FEATHER_LIKE` sizes the MIL model of :mod:`.mil` like FEATHER
  (Shao et al. 2025: an ABMIL of about 0.9M parameters on 1024-d patch features);
  on C = 384 raw features it has 0.59M parameters (:func:`num_parameters`).

Letters: N regions of a slide, C channels, G grid side.

Example:
    >>> bags = raw_region_bags('data/tcga_brca_store')         # {slide: (N, C)}
    >>> slides = bags_to_slide_embeddings(bags)
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch

from slpd_plugin.datasets.labels import normalize_slide_id
from slpd_plugin.datasets.stores import open_store

from ..data.embeddings import SlideEmbeddings
from .mil import MILConfig, build_mil_model

__all__ = ['FEATHER_LIKE', 'bags_to_slide_embeddings', 'num_parameters', 'raw_region_bags']

#: ABMIL sized like FEATHER: hidden 512, gated attention 384.
FEATHER_LIKE = MILConfig(hidden_dim=512, attn_dim=384)


def raw_region_bags(store: str | Path,
                    slide_ids: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Slide id -> float32 ``(N, C)``: each region's grid averaged over its cells.

    Args:
        store: A feature store path or URI (see :func:`~slpd_plugin.datasets.open_store`).
        slide_ids: Only these slides (normalised ids); None reads all. Defaults to None.

    Raises:
        ValueError: If the store holds none of the requested slides.
    """
    handle = open_store(store)
    wanted = None if slide_ids is None else set(slide_ids)
    bags = {}
    for i, rec in enumerate(handle.slides):
        sid = normalize_slide_id(rec.slide_id)
        if wanted is not None and sid not in wanted:
            continue
        grids = handle.read_slide(i)  # (N, C, G, G)
        bags[sid] = torch.from_numpy(grids.astype(np.float32).mean(axis=(2, 3)))
    if not bags:
        raise ValueError(f'{store}: none of the {len(wanted or ())} requested slides is in '
                         'the store')
    return bags


def bags_to_slide_embeddings(bags: Mapping[str, torch.Tensor]) -> SlideEmbeddings:
    """Mean-pool every bag: the slide embeddings of the knn/linear/... protocols."""
    ids = sorted(bags)
    feats = np.stack([bags[s].double().mean(0).numpy() for s in ids])
    return SlideEmbeddings(ids, feats, [int(len(bags[s])) for s in ids])


def num_parameters(cfg: MILConfig, in_dim: int, num_outputs: int) -> int:
    """Trainable parameters of the MIL model ``cfg`` builds for ``in_dim`` inputs."""
    model = build_mil_model(MILConfig(**{**cfg.__dict__, 'device': 'cpu'}), in_dim,
                            num_outputs)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
