"""Reference "embeddings" of a synthetic WSI benchmark, to put encoder results in context.

Each writes a folder of ``{slide_id}.pt`` region embeddings ``(N, D)`` that
``tools/eval_slides.py`` reads like an encoder's:

- ``raw_mean``: each region's input grid averaged over its 16x16 cells, ``D = C``. The
  mean-pooled slide embedding is then the slide's mean input feature: what no encoder at
  all gives.
- ``composition``: each region's ground-truth phenotype, one-hot, ``D = P``. Mean pooling
  turns it into the slide's phenotype histogram: an oracle that sees the true tissue
  composition the labels were drawn from.
- ``noise``: i.i.d. standard normal values, ``D = 16``: chance level.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from slpd_plugin.datasets.stores import open_store

from .synthetic_wsi import STORE_DIR, TRUTH_FILE

__all__ = ['REFERENCES', 'write_reference_embeddings']

REFERENCES = ('raw_mean', 'composition', 'noise')
NOISE_DIM = 16


def write_reference_embeddings(benchmark: str | os.PathLike, kind: str,
                               out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write one reference embedding folder for a benchmark.

    Args:
        benchmark: A folder made by :func:`~slpd_plugin.demo.synthetic_wsi.make_wsi_benchmark`.
        kind: One of :data:`REFERENCES`.
        out_dir: Output folder (created).
        seed: Seed of the ``noise`` reference. Defaults to 0.

    Returns:
        The output folder.

    Raises:
        ValueError: for an unknown ``kind``.
    """
    if kind not in REFERENCES:
        raise ValueError(f'reference must be one of {REFERENCES}, got {kind!r}')
    benchmark, out = Path(benchmark), Path(out_dir)
    store = open_store(benchmark / STORE_DIR)
    truth = np.load(benchmark / TRUTH_FILE)
    phenotypes = truth['region_phenotype']
    num_phenotypes = truth['slide_composition'].shape[1]
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for i, rec in enumerate(store.slides):
        if kind == 'raw_mean':
            feats = store.read_slide(i).astype(np.float32).mean(axis=(2, 3))
        elif kind == 'composition':
            pheno = phenotypes[rec.offset:rec.offset + rec.count]
            feats = np.eye(num_phenotypes, dtype=np.float32)[pheno]
        else:
            feats = rng.standard_normal((rec.count, NOISE_DIM)).astype(np.float32)
        torch.save(torch.from_numpy(feats), out / f'{rec.slide_id}.pt')
    return out
