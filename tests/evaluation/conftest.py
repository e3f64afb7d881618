"""Fixtures for the slide-level evaluation tests.

The real HIPT CSVs and split files live in ``shared/data/hipt`` beside the repository
(``<repo>/../shared/data/hipt``; CI puts a copy of ``shared/`` there). Tests that need
them skip when the folder is absent. ``SLPD_HIPT_DATA`` overrides the location.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
HIPT_DATA = Path(os.environ.get('SLPD_HIPT_DATA', REPO_ROOT.parent / 'shared/data/hipt'))


@pytest.fixture(scope='session')
def hipt_dir() -> Path:
    if not (HIPT_DATA / 'splits/10foldcv_subtype').is_dir():
        pytest.skip(f'HIPT data not found at {HIPT_DATA} (expected shared/ beside the '
                    'repository, or set SLPD_HIPT_DATA)')
    return HIPT_DATA


def write_split_csv(path: Path, train: Sequence[str], val: Sequence[str],
                    test: Sequence[str]) -> None:
    """Write one split in HIPT's layout: unnamed index column, blank-padded columns."""
    n = max(len(train), len(val), len(test))
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['', 'train', 'val', 'test'])
        for i in range(n):
            writer.writerow([i] + [col[i] if i < len(col) else ''
                                   for col in (train, val, test)])


def write_label_csv(path: Path, labels: Mapping[str, str], label_col: str = 'label') -> None:
    """Write a minimal dataset CSV; slide ids get a ``.svs`` suffix like HIPT's."""
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['', 'case_id', 'slide_id', label_col])
        for i, (slide_id, value) in enumerate(labels.items()):
            writer.writerow([i, slide_id[:8], f'{slide_id}.svs', value])


def write_embeddings(folder: Path, regions: Mapping[str, np.ndarray]) -> None:
    """Write one ``.pt`` per slide, alternating plain tensors, ``{'features': ...}`` dicts
    and ``.svs.pt`` file names."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (slide_id, x) in enumerate(regions.items()):
        tensor = torch.as_tensor(x, dtype=torch.float32)
        name = f'{slide_id}.svs.pt' if i % 3 == 2 else f'{slide_id}.pt'
        torch.save({'features': tensor} if i % 2 else tensor, folder / name)


@pytest.fixture
def make_dataset(tmp_path: Path):
    """Factory writing a synthetic evaluation set under ``tmp_path``.

    Call with ``regions`` (slide id -> (N, D) array), ``labels`` (slide id -> class name)
    and ``splits`` (list of (train, val, test) id lists). Split ids of odd folds get a
    ``.svs`` suffix. Returns a dict of paths: ``embeddings``, ``csv``, ``splits``.
    """
    def make(regions: Mapping[str, np.ndarray], labels: Mapping[str, str],
             splits: Sequence[tuple[Sequence[str], Sequence[str], Sequence[str]]],
             name: str = 'data') -> dict[str, Path]:
        root = tmp_path / name
        split_dir = root / 'splits'
        split_dir.mkdir(parents=True)
        for k, parts in enumerate(splits):
            if k % 2:
                parts = tuple([f'{s}.svs' for s in part] for part in parts)
            write_split_csv(split_dir / f'splits_{k}.csv', *parts)
        write_label_csv(root / 'labels.csv', labels)
        write_embeddings(root / 'emb', regions)
        return {'embeddings': root / 'emb', 'csv': root / 'labels.csv', 'splits': split_dir}
    return make


def random_splits(ids: Sequence[str], num_splits: int, seed: int = 0,
                  sizes: tuple[float, float] = (0.6, 0.2)
                  ) -> list[tuple[list[str], list[str], list[str]]]:
    """Independent random train/val/test splits (test sets overlap across splits, as in
    HIPT)."""
    rng = np.random.default_rng(seed)
    out = []
    n = len(ids)
    n_tr, n_val = int(sizes[0] * n), int(sizes[1] * n)
    for _ in range(num_splits):
        perm = [ids[i] for i in rng.permutation(n)]
        out.append((perm[:n_tr], perm[n_tr:n_tr + n_val], perm[n_tr + n_val:]))
    return out


@pytest.fixture
def splitter():
    """The :func:`random_splits` helper, as a fixture."""
    return random_splits
