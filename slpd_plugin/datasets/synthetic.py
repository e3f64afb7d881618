"""Synthetic region-feature stores with known tissue phenotypes.

Each slide mixes ``K_s`` latent tissue phenotypes drawn from a global pool; each region
belongs to one phenotype and its ``(C, 16, 16)`` grid is the phenotype's mean feature,
a phenotype-specific spatial texture, a per-slide shift (stain-like) and noise. The truth
(phenotype of every region, phenotypes of every slide) is saved beside the store in
``ground_truth.npz`` so clustering and matching can be checked against it.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .stores import StoreError
from .stores.base import GRID_SIZE
from .stores.memmap_store import MANIFEST, MemmapStoreWriter

PARAMS_FILE = 'synthetic.json'
TRUTH_FILE = 'ground_truth.npz'


def _region_counts(rng: np.random.Generator, num_slides: int, lo: int, hi: int) -> np.ndarray:
    """Log-uniform region counts in ``[lo, hi]`` (TCGA-like: many small slides, a long tail)."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi + 1), num_slides)).astype(np.int64).clip(lo, hi)


def make_synthetic_store(path: str | os.PathLike, num_slides: int = 300,
                         min_regions: int = 6, max_regions: int = 120,
                         channels: int = 384, num_phenotypes: int = 8,
                         phenotypes_per_slide: tuple[int, int] = (1, 4),
                         noise: float = 0.5, texture: float = 0.5, slide_shift: float = 0.2,
                         dtype: str = 'float16', seed: int = 0,
                         progress: bool = True) -> Path:
    """Write a synthetic memmap store (and its ground truth) to ``path``.

    Args:
        path: Store folder to create (must not hold a store already).
        num_slides: Number of slides ``S``. Defaults to 300.
        min_regions: Fewest regions per slide. Defaults to 6.
        max_regions: Most regions per slide. Defaults to 120.
        channels: Feature dim ``C``. Defaults to 384.
        num_phenotypes: Size of the global phenotype pool. Defaults to 8.
        phenotypes_per_slide: Inclusive range of ``K_s``. Defaults to (1, 4).
        noise: Std of i.i.d. cell noise. Defaults to 0.5.
        texture: Amplitude of the phenotype textures. Defaults to 0.5.
        slide_shift: Std of the per-slide feature shift. Defaults to 0.2.
        dtype: Store dtype. Defaults to 'float16'.
        seed: RNG seed; the same arguments give the same bytes. Defaults to 0.
        progress: Show a progress bar. Defaults to True.

    Returns:
        The store folder.
    """
    lo_k, hi_k = phenotypes_per_slide
    if not 1 <= lo_k <= hi_k <= num_phenotypes:
        raise ValueError(f'need 1 <= phenotypes_per_slide[0] <= [1] <= num_phenotypes, '
                         f'got {phenotypes_per_slide} with num_phenotypes={num_phenotypes}')
    if not 1 <= min_regions <= max_regions:
        raise ValueError(f'need 1 <= min_regions <= max_regions, got {min_regions}, {max_regions}')
    params = dict(num_slides=num_slides, min_regions=min_regions, max_regions=max_regions,
                  channels=channels, num_phenotypes=num_phenotypes,
                  phenotypes_per_slide=list(phenotypes_per_slide), noise=noise,
                  texture=texture, slide_shift=slide_shift, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((num_phenotypes, channels)).astype(np.float32)
    num_waves = 3
    freqs = rng.uniform(-0.3, 0.3, (num_phenotypes, num_waves, 2)).astype(np.float32)
    loadings = (texture * rng.standard_normal((num_phenotypes, num_waves, channels))
                ).astype(np.float32)
    cells = np.stack(np.meshgrid(np.arange(GRID_SIZE), np.arange(GRID_SIZE),
                                 indexing='ij')).reshape(2, -1).astype(np.float32)

    counts = _region_counts(rng, num_slides, min_regions, max_regions)
    slide_pheno = np.full((num_slides, hi_k), -1, dtype=np.int64)
    region_pheno = []
    root = Path(path)
    writer = MemmapStoreWriter(root, channels=channels, dtype=dtype)
    for s in tqdm(range(num_slides), desc='synthetic slides', disable=not progress):
        k = int(rng.integers(lo_k, hi_k + 1))
        phenos = rng.choice(num_phenotypes, size=k, replace=False)
        slide_pheno[s, :k] = phenos
        labels = phenos[rng.choice(k, size=counts[s], p=rng.dirichlet(np.ones(k)))]
        phase = rng.uniform(0, 2 * np.pi, (counts[s], num_waves, 1)).astype(np.float32)
        waves = np.cos(2 * np.pi * freqs[labels] @ cells + phase)  # (n, waves, G*G)
        grids = (np.einsum('nwc,nwg->ncg', loadings[labels], waves)
                 + means[labels][:, :, None]
                 + slide_shift * rng.standard_normal((1, channels, 1)).astype(np.float32)
                 + noise * rng.standard_normal((counts[s], channels, GRID_SIZE ** 2),
                                               dtype=np.float32))
        writer.add_slide(f'synthetic-{s:05d}',
                         grids.reshape(counts[s], channels, GRID_SIZE, GRID_SIZE))
        region_pheno.append(labels)
    np.savez(root / TRUTH_FILE, region_phenotype=np.concatenate(region_pheno),
             slide_phenotypes=slide_pheno, phenotype_means=means)
    (root / PARAMS_FILE).write_text(json.dumps(params, indent=1))
    writer.finalize()
    return root


def ensure_synthetic_store(path: str | os.PathLike, **kwargs) -> Path:
    """Generate the synthetic store at ``path`` unless it is already there.

    Safe when several processes (DDP ranks) call it at once: one generates into a
    temporary folder under a file lock and renames it into place; the others wait and
    then find it complete.

    Raises:
        StoreError: if ``path`` holds something else, or a synthetic store made with
            different settings.
    """
    root = Path(path)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f'.{root.name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root.exists():
            _check_existing(root, kwargs)
            return root
        tmp = root.parent / f'.{root.name}.tmp-{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        make_synthetic_store(tmp, **kwargs)
        os.replace(tmp, root)
    return root


def _check_existing(root: Path, requested: dict) -> None:
    params_file = root / PARAMS_FILE
    if not (root / MANIFEST).is_file() or not params_file.is_file():
        raise StoreError(f'{root} exists but is not a complete synthetic store; move it '
                         f'away or point the config at another path')
    saved = json.loads(params_file.read_text())
    requested = {k: list(v) if isinstance(v, tuple) else v for k, v in requested.items()
                 if k != 'progress'}
    differ = {k: (saved.get(k), v) for k, v in requested.items() if saved.get(k) != v}
    if differ:
        raise StoreError(f'synthetic store {root} was made with other settings '
                         f'(saved, requested): {differ}; delete it to regenerate')
