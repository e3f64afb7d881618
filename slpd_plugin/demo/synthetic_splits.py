"""Labels CSV and split files in HIPT's layout, for synthetic benchmarks.

The files are read by :mod:`slpd_plugin.evaluation` (and ``tools/eval_slides.py``)
exactly like HIPT's own ``tcga_*_subset.csv`` and ``splits/10foldcv_subtype/*/splits_k.csv``:

- labels CSV: a leading unnamed index column, then ``case_id``, ``slide_id`` (with
  ``.svs``, as HIPT writes it), any extra columns, and the class in ``oncotree_code``;
- ``splits_{k}.csv``: ``,train,val,test`` with a row index and the shorter columns
  padded with blank cells. Like HIPT's, the ``k`` splits are independent stratified
  random draws (their test parts overlap), not a partition.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ['stratified_splits', 'write_labels_csv', 'write_split_csv']


def write_labels_csv(path: str | Path, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """Write a HIPT-style dataset CSV.

    Args:
        path: Output file.
        rows: One dict per slide with a value for every column.
        columns: Column order, e.g. ``['case_id', 'slide_id', 'site', 'oncotree_code']``.

    Returns:
        The path written.
    """
    path = Path(path)
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['', *columns])
        for i, row in enumerate(rows):
            writer.writerow([i, *(row[c] for c in columns)])
    return path


def write_split_csv(path: str | Path, train: Sequence[str], val: Sequence[str],
                    test: Sequence[str]) -> Path:
    """Write one ``splits_{k}.csv`` with blank-padded columns, as HIPT's.

    Args:
        path: Output file.
        train: Slide ids of the training part.
        val: Slide ids of the validation part.
        test: Slide ids of the test part.

    Returns:
        The path written.
    """
    path = Path(path)
    parts = (list(train), list(val), list(test))
    length = max(len(p) for p in parts)
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['', 'train', 'val', 'test'])
        for i in range(length):
            writer.writerow([i, *(p[i] if i < len(p) else '' for p in parts)])
    return path


def stratified_splits(labels: np.ndarray, num_folds: int, val_frac: float,
                      test_frac: float, rng: np.random.Generator
                      ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Independent stratified train/val/test draws (HIPT's "10-fold" splits).

    Each class contributes ``max(1, round(frac * n_c))`` slides to val and to test, so
    every part holds every class.

    Args:
        labels: Class of each slide, shape (S,), int.
        num_folds: Number of splits.
        val_frac: Share of each class in val.
        test_frac: Share of each class in test.
        rng: Random generator.

    Returns:
        ``num_folds`` tuples of sorted slide positions ``(train, val, test)``.

    Raises:
        ValueError: if a class is too small to leave a training slide.
    """
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(f'need 0 < val_frac, test_frac and val_frac + test_frac < 1, got '
                         f'{val_frac}, {test_frac}')
    classes = np.unique(labels)
    sizes = {}
    for c in classes:
        n_c = int((labels == c).sum())
        n_val, n_test = max(1, round(val_frac * n_c)), max(1, round(test_frac * n_c))
        if n_val + n_test >= n_c:
            raise ValueError(f'class {c} has {n_c} slides: too few for val_frac={val_frac} '
                             f'and test_frac={test_frac}; generate more slides')
        sizes[c] = (n_val, n_test)
    folds = []
    for _ in range(num_folds):
        train, val, test = [], [], []
        for c in classes:
            members = rng.permutation(np.flatnonzero(labels == c))
            n_val, n_test = sizes[c]
            test.append(members[:n_test])
            val.append(members[n_test:n_test + n_val])
            train.append(members[n_test + n_val:])
        folds.append(tuple(np.sort(np.concatenate(p)) for p in (train, val, test)))
    return folds
