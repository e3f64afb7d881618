"""HIPT's split files: ``splits_{k}.csv`` with ``train``, ``val`` and ``test`` columns.

Each file is one "fold". Its first column is a row index with an empty header; the three
id columns have different lengths, so the shorter ones are padded with blank cells::

    ,train,val,test
    0,TCGA-A7-A6VV-01Z-00-DX1.07AE...,TCGA-A2-A0YH-01Z-00-DX1.FBA5...,TCGA-BH-A202-...
    ...
    844,TCGA-AR-A2LM-01Z-00-DX1.CB64...,,

HIPT's "10-fold cross-validation" is ten such files drawn independently: the test sets
of different folds overlap, so the folds are repeated random splits, not a partition.
The split files list more slides than have a subtype label (HIPT keeps only the ids that
are also in the label CSV).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from slpd_plugin.datasets.labels import normalize_slide_id

__all__ = ['PARTS', 'Split', 'load_splits', 'read_split_csv']

PARTS = ('train', 'val', 'test')
_SPLIT_NAME = re.compile(r'^splits_(\d+)\.csv$')


@dataclass
class Split:
    """One train/val/test split.

    Attributes:
        fold: The ``k`` of ``splits_{k}.csv``.
        train: Normalised slide ids of the training part, in file order.
        val: Normalised slide ids of the validation part.
        test: Normalised slide ids of the test part.
    """

    fold: int
    train: list[str]
    val: list[str]
    test: list[str]

    def part(self, name: str) -> list[str]:
        """Ids of one part (``'train'``, ``'val'`` or ``'test'``)."""
        if name not in PARTS:
            raise ValueError(f'unknown split part {name!r}; choose one of {PARTS}')
        return getattr(self, name)

    def all_ids(self) -> set[str]:
        """Every id in the split."""
        return set(self.train) | set(self.val) | set(self.test)


def read_split_csv(path: str | Path, fold: int | None = None,
                   parts: tuple[str, ...] = PARTS) -> Split:
    """Read one ``splits_{k}.csv``.

    Blank cells (the padding of the shorter columns) are skipped and ``.svs`` suffixes
    are removed. An id that appears twice within one column is kept once.

    Args:
        path: The split file.
        fold: Fold number. ``None`` takes it from the file name (``splits_3.csv`` -> 3).
            Defaults to None.
        parts: The columns the file must have; the others are empty. HIPT's survival
            splits have ``('train', 'val')`` (case ids). Defaults to all three.

    Returns:
        The split.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If a ``train``/``val``/``test`` column is missing, the fold number
            cannot be read from the name, or a slide is in two parts of the split.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'split file not found: {path}')
    if fold is None:
        match = _SPLIT_NAME.match(path.name)
        if match is None:
            raise ValueError(f'cannot read the fold from {path.name!r}; '
                             'expected splits_<k>.csv')
        fold = int(match.group(1))
    with path.open(newline='') as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f'{path} is empty')
    header = [h.strip() for h in rows[0]]
    missing = [p for p in parts if p not in header]
    if missing:
        raise ValueError(f'{path.name}: missing column(s) {missing}; header is {header}')
    ids_of: dict[str, list[str]] = {p: [] for p in PARTS}
    for part in parts:
        col = header.index(part)
        ids = (normalize_slide_id(row[col]) for row in rows[1:] if col < len(row))
        ids_of[part] = list(dict.fromkeys(i for i in ids if i))
    for a, b in (('train', 'val'), ('train', 'test'), ('val', 'test')):
        both = set(ids_of[a]) & set(ids_of[b])
        if both:
            raise ValueError(f'{path.name}: {len(both)} slide(s) in both {a} and {b}, '
                             f'e.g. {sorted(both)[:3]}')
    return Split(fold, ids_of['train'], ids_of['val'], ids_of['test'])


def load_splits(split_dir: str | Path, parts: tuple[str, ...] = PARTS) -> list[Split]:
    """Read every ``splits_{k}.csv`` in a folder, ordered by ``k``.

    Args:
        split_dir: A folder such as ``shared/data/hipt/splits/10foldcv_subtype/tcga_brca``.
        parts: The columns each file must have (see :func:`read_split_csv`).

    Returns:
        One :class:`Split` per file.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no split file.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f'splits folder not found: {split_dir}')
    files = [p for p in split_dir.iterdir() if _SPLIT_NAME.match(p.name)]
    if not files:
        raise FileNotFoundError(f'no splits_<k>.csv files in {split_dir}')
    splits = [read_split_csv(p, parts=parts) for p in files]
    return sorted(splits, key=lambda s: s.fold)
