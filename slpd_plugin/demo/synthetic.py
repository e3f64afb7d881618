"""Synthetic region-feature stores with known tissue phenotypes.

Each slide mixes ``K_s`` latent tissue phenotypes drawn from a global pool; each region
belongs to one phenotype and its ``(C, 16, 16)`` grid is the phenotype's mean feature,
a phenotype-specific spatial texture, a per-slide shift (stain-like) and noise. The truth
(phenotype of every region, phenotypes of every slide) is saved beside the store in
``ground_truth.npz`` so clustering and matching can be checked against it.

:class:`PhenotypeBank` (how a phenotype's regions look) and :func:`ensure_generated`
(generate once, safely under DDP) are shared with the slide-level benchmark of
:mod:`.synthetic_wsi`.

Letters: ``P`` phenotypes, ``C`` channels, ``W`` texture waves, ``n`` regions of a slide,
``G`` grid side.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from slpd_plugin.datasets.stores import StoreError
from slpd_plugin.datasets.stores.base import GRID_SIZE
from slpd_plugin.datasets.stores.memmap_store import MANIFEST, MemmapStoreWriter
from slpd_plugin.utils.progress import progress_bar

PARAMS_FILE = 'synthetic.json'
TRUTH_FILE = 'ground_truth.npz'
NUM_WAVES = 3


@dataclass(frozen=True)
class PhenotypeBank:
    """What the regions of each tissue phenotype look like.

    A region of phenotype ``p`` is ``means[p]`` in every cell plus a texture: ``W``
    plane waves over the 16x16 cells (random phase per region), each loading the
    channels with ``loadings[p, w]``.

    Attributes:
        means: Mean feature of each phenotype, shape (P, C), float32.
        freqs: Wave vectors (cycles per cell), shape (P, W, 2), float32.
        loadings: Channel loadings of the waves, shape (P, W, C), float32.
    """

    means: np.ndarray
    freqs: np.ndarray
    loadings: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, num_phenotypes: int, channels: int,
             texture: float) -> PhenotypeBank:
        """Draw means ~ N(0, 1), frequencies ~ U(-0.3, 0.3) and loadings ~ N(0, texture²)."""
        means = rng.standard_normal((num_phenotypes, channels)).astype(np.float32)
        freqs = rng.uniform(-0.3, 0.3, (num_phenotypes, NUM_WAVES, 2)).astype(np.float32)
        loadings = (texture * rng.standard_normal((num_phenotypes, NUM_WAVES, channels))
                    ).astype(np.float32)
        return cls(means, freqs, loadings)

    @property
    def channels(self) -> int:
        """``C``, the feature dimension of the generated grids."""
        return int(self.means.shape[1])

    def draw_phase(self, rng: np.random.Generator, num_regions: int) -> np.ndarray:
        """Random wave phases of ``n`` regions, shape (n, W, 1), float32."""
        return rng.uniform(0, 2 * np.pi, (num_regions, NUM_WAVES, 1)).astype(np.float32)

    def render(self, labels: np.ndarray, phase: np.ndarray, shift: np.ndarray,
               cell_noise: np.ndarray) -> np.ndarray:
        """Region grids of the given phenotypes.

        Args:
            labels: Phenotype of each region, shape (n,), int.
            phase: Output of :meth:`draw_phase`, shape (n, W, 1).
            shift: Feature shift added to every cell (slide/site effect), shape (C,).
            cell_noise: I.i.d. noise of every cell, shape (n, C, G*G), float32.

        Returns:
            Grids of shape (n, C, G, G), float32.
        """
        cells = np.stack(np.meshgrid(np.arange(GRID_SIZE), np.arange(GRID_SIZE),
                                     indexing='ij')).reshape(2, -1).astype(np.float32)
        waves = np.cos(2 * np.pi * self.freqs[labels] @ cells + phase)  # (n, W, G*G)
        grids = (np.einsum('nwc,nwg->ncg', self.loadings[labels], waves)
                 + self.means[labels][:, :, None]
                 + shift.astype(np.float32)[None, :, None]
                 + cell_noise)
        return grids.reshape(len(labels), self.channels, GRID_SIZE, GRID_SIZE)


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
    bank = PhenotypeBank.draw(rng, num_phenotypes, channels, texture)

    counts = _region_counts(rng, num_slides, min_regions, max_regions)
    slide_pheno = np.full((num_slides, hi_k), -1, dtype=np.int64)
    region_pheno = []
    root = Path(path)
    writer = MemmapStoreWriter(root, channels=channels, dtype=dtype)
    for s in progress_bar(range(num_slides), desc='synthetic slides', disable=not progress):
        k = int(rng.integers(lo_k, hi_k + 1))
        phenos = rng.choice(num_phenotypes, size=k, replace=False)
        slide_pheno[s, :k] = phenos
        labels = phenos[rng.choice(k, size=counts[s], p=rng.dirichlet(np.ones(k)))]
        phase = bank.draw_phase(rng, counts[s])
        shift = slide_shift * rng.standard_normal(channels).astype(np.float32)
        cell_noise = noise * rng.standard_normal((counts[s], channels, GRID_SIZE ** 2),
                                                 dtype=np.float32)
        writer.add_slide(f'synthetic-{s:05d}', bank.render(labels, phase, shift, cell_noise))
        region_pheno.append(labels)
    np.savez(root / TRUTH_FILE, region_phenotype=np.concatenate(region_pheno),
             slide_phenotypes=slide_pheno, phenotype_means=bank.means)
    (root / PARAMS_FILE).write_text(json.dumps(params, indent=1))
    writer.finalize()
    return root


def ensure_generated(path: str | os.PathLike, make: Callable[..., Path], params_file: str,
                     complete_marker: str, **kwargs) -> Path:
    """Run ``make(tmp_path, **kwargs)`` unless ``path`` already holds its output.

    Safe when several processes (DDP ranks) call it at once: one generates into a
    temporary folder under a file lock and renames it into place; the others wait and
    then find it complete.

    Args:
        path: Output folder.
        make: Generator that writes a complete folder, including ``params_file`` (a JSON
            of its arguments) and ``complete_marker``.
        params_file: Name of the JSON file of generator arguments inside the folder.
        complete_marker: A file (relative to the folder) written only when complete.
        **kwargs: Arguments of ``make``.

    Raises:
        StoreError: if ``path`` holds something else, or an output made with different
            settings.
    """
    root = Path(path)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f'.{root.name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root.exists():
            _check_existing(root, kwargs, params_file, complete_marker)
            return root
        tmp = root.parent / f'.{root.name}.tmp-{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        make(tmp, **kwargs)
        os.replace(tmp, root)
    return root


def ensure_synthetic_store(path: str | os.PathLike, **kwargs) -> Path:
    """Generate the synthetic store at ``path`` unless it is already there.

    Safe when several processes (DDP ranks) call it at once (see
    :func:`ensure_generated`); ``kwargs`` are those of :func:`make_synthetic_store`.

    Raises:
        StoreError: if ``path`` holds something else, or a synthetic store made with
            different settings.
    """
    return ensure_generated(path, make_synthetic_store, PARAMS_FILE, MANIFEST, **kwargs)


def _check_existing(root: Path, requested: dict, params_file: str,
                    complete_marker: str) -> None:
    saved_file = root / params_file
    if not (root / complete_marker).is_file() or not saved_file.is_file():
        raise StoreError(f'{root} exists but is not a complete synthetic output; move it '
                         f'away or point the config at another path')
    saved = json.loads(saved_file.read_text())
    requested = {k: list(v) if isinstance(v, tuple) else v for k, v in requested.items()
                 if k != 'progress'}
    differ = {k: (saved.get(k), v) for k, v in requested.items() if saved.get(k) != v}
    if differ:
        raise StoreError(f'synthetic output {root} was made with other settings '
                         f'(saved, requested): {differ}; delete it to regenerate')
