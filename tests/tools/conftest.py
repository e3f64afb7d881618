"""Fixtures of the tool tests: a real tiny SLPD run, labels, small stores, the tools."""
from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from slpd_plugin.datasets import open_writer
from slpd_plugin.demo import make_synthetic_store
from slpd_plugin.prototypes import build_bank
from tests.utils import ROOT, load_tool, shared_run

TINY_SLPD = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'


@pytest.fixture(scope='session')
def tools() -> dict[str, ModuleType]:
    """The three tools of this folder's tests, by name."""
    return {name: load_tool(name) for name in ('visualize', 'inspect_bank', 'inspect_store')}


@pytest.fixture(scope='session')
def trained(tmp_path_factory) -> dict:
    """A real 3-epoch tiny SLPD run (prototypes from epoch 1): its work dir and store."""
    root = shared_run(tmp_path_factory, 'train_cfg.max_epochs=3', config=TINY_SLPD)
    store, work_dir = root / 'store', root / 'work'
    return dict(store=store, work_dir=work_dir, ckpt=work_dir / 'epoch_3.pth',
                warmup_ckpt=work_dir / 'epoch_1.pth')


def write_labels(store: Path, path: Path) -> Path:
    """A labels CSV for a synthetic store: each slide's first phenotype (``.svs`` ids)."""
    phenotypes = np.load(store / 'ground_truth.npz')['slide_phenotypes'][:, 0]
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['slide_id', 'phenotype'])
        for s, p in enumerate(phenotypes):
            writer.writerow([f'synthetic-{s:05d}.svs', f'P{p}'])
    return path


@pytest.fixture(scope='session')
def labels_csv(trained, tmp_path_factory) -> Path:
    return write_labels(trained['store'], tmp_path_factory.mktemp('labels') / 'labels.csv')


@pytest.fixture(scope='session')
def small_store(tmp_path_factory) -> Path:
    """A complete synthetic store without coords (6 slides, C=8)."""
    path = tmp_path_factory.mktemp('small') / 'store'
    return make_synthetic_store(path, num_slides=6, min_regions=3, max_regions=9,
                                channels=8, num_phenotypes=3, phenotypes_per_slide=(1, 2),
                                progress=False)


@pytest.fixture(scope='session')
def coords_store(tmp_path_factory) -> Path:
    """A complete store whose slides have region coordinates (a 4096-px lattice)."""
    path = tmp_path_factory.mktemp('coords') / 'store'
    rng = np.random.default_rng(0)
    with open_writer(path, channels=8, dtype='float32') as writer:
        for s, count in enumerate((9, 7, 12, 5)):
            cells = rng.choice(36, size=count, replace=False)
            coords = np.stack([cells % 6, cells // 6], axis=1) * 4096
            writer.add_slide(f'slide-{s}', rng.standard_normal((count, 8, 16, 16)), coords)
    return path


def fake_checkpoint(store: Path, path: Path, num_clusters: int = 2, min_regions: int = 4,
                    num_neighbors: int = 1, seed: int = 0) -> Path:
    """A checkpoint with a bank built on random embeddings of ``store``'s regions.

    Enough for everything that does not need the model (map, graph, inspect_bank).
    """
    from slpd_plugin.datasets import open_store
    handle = open_store(store)
    slide_index = torch.as_tensor(handle.region_slide_index())
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(len(slide_index), 16, generator=generator)
    bank = build_bank(embeddings, slide_index, num_clusters, min_regions,
                      num_neighbors=num_neighbors, num_slides=handle.num_slides)
    cfg = f'default_hooks = dict(prototype=dict(min_regions={min_regions}))\n'
    torch.save(dict(state_dict={}, meta=dict(cfg=cfg, dataset_meta=dict(store=str(store))),
                    prototype_bank=dict(bank.state_dict(), epoch=torch.tensor(1))), path)
    return path


def read_png(path: Path, min_size: tuple[int, int] = (300, 300)) -> np.ndarray:
    """Read a PNG the tools wrote and check it is a real picture: RGB(A), at least
    ``min_size`` (height, width) pixels, more than a handful of colours.

    Returns:
        np.ndarray: The image, (H, W, 3 or 4), floats in [0, 1].
    """
    import matplotlib.image as mpimg
    assert path.is_file() and path.stat().st_size > 5000, f'{path} missing or tiny'
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4), image.shape
    assert image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1], image.shape
    colours = np.unique(image[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 10, f'{path} is nearly blank ({len(colours)} colours)'
    return image


def has_colour(image: np.ndarray, rgba: np.ndarray, min_pixels: int = 50) -> bool:
    """Whether at least ``min_pixels`` pixels have exactly this colour (8-bit rounding)."""
    target = np.round(np.asarray(rgba)[:3] * 255)
    pixels = np.round(image[..., :3] * 255).reshape(-1, 3)
    return int((np.abs(pixels - target).max(axis=1) <= 1).sum()) >= min_pixels
