"""A synthetic whole-slide benchmark: slide labels that depend on tissue composition.

Like a cancer subtype, the class of a synthetic slide shows in *how much* of each tissue
phenotype it holds, not in any single region:

- **Composition.** Each class ``y`` has a Dirichlet prior over ``P`` phenotypes,
  ``alpha_y[p] = concentration * (1 + enrichment * [p enriched in y])``; phenotypes
  ``y, y + 2, ...`` (``enriched_per_class`` of them) are enriched in class ``y``, the
  rest are shared. A slide draws its composition ``h ~ Dir(alpha_y)`` and its regions'
  phenotypes from ``Multinomial(n, h)``.
- **Texture twins.** The first ``texture_twins`` pairs ``(0, 1), (2, 3), ...`` share
  one mean feature, so a twin pair (enriched in different classes) differs only in
  spatial texture: mean-pooling the raw grids cannot tell them apart, an encoder that
  looks at the 16x16 layout can.
- **Spatial layout.** Regions sit on a compact random tissue blob of 4096-px tiles;
  phenotypes occupy contiguous zones (level sets of a smooth random field). Coordinates
  (level-0 ``(x, y)`` of each region's top-left corner) are stored.
- **Site effects.** Slides come from ``num_sites`` sites; every region of a site gets
  the site's feature shift (a TCGA tissue-source-site / stain batch effect) plus a small
  per-slide jitter; region grids also carry i.i.d. cell noise.
- **Slide sizes** are drawn from the region counts of 180 real TCGA-BRCA slides
  (:mod:`.tcga_region_counts`), times ``region_scale``.

Layout of a benchmark folder::

    store/                  memmap store of the region grids (with coords)
    labels.csv              HIPT-style CSV: ,case_id,slide_id,site,num_regions,oncotree_code
    splits/splits_{k}.csv   HIPT-style train/val/test splits
    ground_truth.npz        region phenotypes, slide compositions, labels, sites
    survival.csv, splits_survival/, survival_truth.npz
                            survival outcomes from the composition, HIPT's survival
                            layout (:mod:`.synthetic_survival`)
    benchmark.json          generator arguments and counts (written last)

Letters: ``S`` slides, ``N`` regions, ``P`` phenotypes, ``C`` channels.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from slpd_plugin.datasets.stores.base import GRID_SIZE, STORE_DTYPES
from slpd_plugin.datasets.stores.memmap_store import MemmapStoreWriter
from slpd_plugin.utils.progress import progress_bar

from .synthetic import PhenotypeBank, ensure_generated
from .synthetic_splits import stratified_splits, write_labels_csv, write_split_csv
from .synthetic_survival import SURVIVAL_FILE, write_survival
from .tcga_region_counts import BRCA_REGION_COUNTS

CLASS_CODES = ('SYN_A', 'SYN_B')
REGION_PX = 4096
STORE_DIR, LABELS_FILE, SPLITS_DIR = 'store', 'labels.csv', 'splits'
TRUTH_FILE, PARAMS_FILE = 'ground_truth.npz', 'benchmark.json'


def class_priors(num_phenotypes: int, enriched_per_class: int, concentration: float,
                 enrichment: float) -> np.ndarray:
    """Dirichlet parameters of the two classes, shape (2, P)."""
    alpha = np.full((2, num_phenotypes), concentration)
    for y in range(2):
        alpha[y, [y + 2 * j for j in range(enriched_per_class)]] *= 1 + enrichment
    return alpha


def _smooth_field(rng: np.random.Generator, points: np.ndarray, scale: float) -> np.ndarray:
    """A smooth random function of 2-d points: four random cosines, shape (len(points),)."""
    waves = rng.standard_normal((2, 4)) / scale
    return np.cos(points @ waves + rng.uniform(0, 2 * np.pi, 4)).sum(axis=1)


def slide_layout(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place a slide's regions on a tissue blob and give phenotypes contiguous zones.

    Args:
        rng: Random generator.
        counts: Regions of each phenotype, shape (P,); ``n = counts.sum()``.

    Returns:
        ``(cells, phenotype)``: lattice ``(row, col)`` of each region in row-major order,
        shape (n, 2), int; and each region's phenotype, shape (n,), int.
    """
    n = int(counts.sum())
    side = int(np.ceil(np.sqrt(1.6 * n))) + 2
    lattice = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing='ij'),
                       axis=-1).reshape(-1, 2).astype(np.float64)
    radius = np.linalg.norm(lattice - (side - 1) / 2, axis=1) / (side / 2)
    score = 0.5 * _smooth_field(rng, lattice, side / 3) - 4 * radius ** 2
    cells = lattice[np.sort(np.argsort(-score, kind='stable')[:n])].astype(np.int64)
    zones = np.argsort(_smooth_field(rng, cells.astype(np.float64), max(side / 4, 1.0)),
                       kind='stable')
    phenotype = np.empty(n, dtype=np.int64)
    order = rng.permutation(len(counts))
    phenotype[zones] = np.repeat(order, counts[order])
    return cells, phenotype


def make_wsi_benchmark(path: str | os.PathLike, num_slides: int = 200, channels: int = 384,
                       num_phenotypes: int = 8, enriched_per_class: int = 2,
                       texture_twins: int = 1, concentration: float = 0.5,
                       enrichment: float = 3.0, region_scale: float = 1.0,
                       min_regions: int = 4, num_sites: int = 6, site_shift: float = 0.3,
                       slide_shift: float = 0.1, noise: float = 0.5, texture: float = 0.75,
                       num_folds: int = 10, val_frac: float = 0.1, test_frac: float = 0.1,
                       dtype: str = 'float16', seed: int = 0, progress: bool = True) -> Path:
    """Write a synthetic WSI benchmark folder (see the module docstring).

    Args:
        path: Folder to create (must not exist).
        num_slides: ``S``. Defaults to 200.
        channels: ``C`` of the region grids. Defaults to 384 (HIPT's ViT-256 features).
        num_phenotypes: ``P``. Defaults to 8.
        enriched_per_class: Phenotypes enriched in each class. Defaults to 2.
        texture_twins: Pairs ``(2j, 2j+1)`` sharing a mean feature. Defaults to 1.
        concentration: Dirichlet concentration of a non-enriched phenotype; small values
            give slides dominated by few phenotypes. Defaults to 0.5.
        enrichment: Relative boost of a class's enriched phenotypes. Defaults to 3.0.
        region_scale: Factor on the real BRCA region counts (e.g. 0.2 for a CPU demo).
            Defaults to 1.0.
        min_regions: Fewest regions of a slide after scaling. Defaults to 4.
        num_sites: Tissue source sites. Defaults to 6.
        site_shift: Std of each channel of a site's feature shift. Defaults to 0.3.
        slide_shift: Std of the extra per-slide shift. Defaults to 0.1.
        noise: Std of the i.i.d. cell noise. Defaults to 0.5.
        texture: Amplitude of the phenotype textures. Defaults to 0.75.
        num_folds: Number of ``splits_k.csv``. Defaults to 10.
        val_frac: Share of each class in val. Defaults to 0.1.
        test_frac: Share of each class in test. Defaults to 0.1.
        dtype: Store dtype. Defaults to 'float16'.
        seed: RNG seed; the same arguments give the same files. Defaults to 0.
        progress: Show a progress bar. Defaults to True.

    Returns:
        The benchmark folder.

    Raises:
        ValueError: for inconsistent arguments.
    """
    if not 0 <= texture_twins <= enriched_per_class or 2 * enriched_per_class > num_phenotypes:
        raise ValueError(f'need 0 <= texture_twins <= enriched_per_class and '
                         f'2 * enriched_per_class <= num_phenotypes, got {texture_twins}, '
                         f'{enriched_per_class}, {num_phenotypes}')
    if min(num_slides, channels, num_sites, num_folds, min_regions) < 1 or region_scale <= 0:
        raise ValueError('num_slides, channels, num_sites, num_folds, min_regions and '
                         'region_scale must be positive')
    if dtype not in STORE_DTYPES:
        raise ValueError(f'dtype must be one of {STORE_DTYPES}, got {dtype!r}')
    params = {k: v for k, v in locals().items() if k not in ('path', 'progress')}
    rng = np.random.default_rng(seed)
    bank = PhenotypeBank.draw(rng, num_phenotypes, channels, texture)
    means = bank.means.copy()
    means[1:2 * texture_twins:2] = means[0:2 * texture_twins:2]
    bank = dataclasses.replace(bank, means=means)
    alpha = class_priors(num_phenotypes, enriched_per_class, concentration, enrichment)
    site_shifts = site_shift * rng.standard_normal((num_sites, channels))
    labels = rng.permutation(np.arange(num_slides) % 2)
    splits = stratified_splits(labels, num_folds, val_frac, test_frac, rng)
    sites = rng.integers(0, num_sites, num_slides)
    sizes = np.maximum(min_regions, np.rint(
        rng.choice(BRCA_REGION_COUNTS, num_slides) * region_scale)).astype(np.int64)

    root = Path(path)
    root.mkdir(parents=True)
    writer = MemmapStoreWriter(root / STORE_DIR, channels=channels, dtype=dtype)
    composition = np.zeros((num_slides, num_phenotypes))
    region_pheno, rows = [], []
    for s in progress_bar(range(num_slides), desc='synthetic WSIs', disable=not progress):
        counts = rng.multinomial(sizes[s], rng.dirichlet(alpha[labels[s]]))
        cells, pheno = slide_layout(rng, counts)
        shift = site_shifts[sites[s]] + slide_shift * rng.standard_normal(channels)
        cell_noise = noise * rng.standard_normal((sizes[s], channels, GRID_SIZE ** 2),
                                                 dtype=np.float32)
        grids = bank.render(pheno, bank.draw_phase(rng, sizes[s]), shift, cell_noise)
        case_id = f'SYN-{sites[s]:02d}-{s:04d}'
        writer.add_slide(f'{case_id}-01Z-00-DX1', grids, coords=cells[:, ::-1] * REGION_PX)
        composition[s] = counts / sizes[s]
        region_pheno.append(pheno)
        rows.append(dict(case_id=case_id, slide_id=f'{case_id}-01Z-00-DX1.svs',
                         site=f'{sites[s]:02d}', num_regions=int(sizes[s]),
                         oncotree_code=CLASS_CODES[labels[s]]))
    writer.finalize()

    write_labels_csv(root / LABELS_FILE, rows,
                     ['case_id', 'slide_id', 'site', 'num_regions', 'oncotree_code'])
    (root / SPLITS_DIR).mkdir()
    ids = np.array([r['slide_id'][:-len('.svs')] for r in rows])
    for k, parts in enumerate(splits):
        write_split_csv(root / SPLITS_DIR / f'splits_{k}.csv', *(ids[p] for p in parts))
    np.savez(root / TRUTH_FILE, region_phenotype=np.concatenate(region_pheno),
             slide_composition=composition, slide_label=labels, slide_site=sites,
             class_alpha=alpha, phenotype_means=bank.means)
    write_survival(root, seed)
    summary = dict(num_regions=int(sizes.sum()), class_codes=list(CLASS_CODES),
                   class_counts=np.bincount(labels, minlength=2).tolist())
    (root / PARAMS_FILE).write_text(json.dumps(dict(params, **summary), indent=1))
    return root


def ensure_wsi_benchmark(path: str | os.PathLike, **kwargs) -> Path:
    """Generate the benchmark at ``path`` unless it is there.

    DDP-safe (see :func:`~slpd_plugin.demo.synthetic.ensure_generated`); ``kwargs`` are
    those of :func:`make_wsi_benchmark`.

    Raises:
        StoreError: if ``path`` holds something else or a benchmark made differently.
    """
    root = ensure_generated(path, make_wsi_benchmark, PARAMS_FILE, PARAMS_FILE, **kwargs)
    if not (root / SURVIVAL_FILE).is_file():  # made before survival outcomes existed
        write_survival(root)
    return root
