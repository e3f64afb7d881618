"""HIPT split files: blank padding, ``.svs`` suffixes, fold order, cohort coverage."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from slpd_plugin.datasets.labels import TASK_PRESETS, load_task_labels
from slpd_plugin.evaluation import load_splits, read_split_csv

TASKS = ('tcga_brca', 'tcga_lung', 'tcga_kidney')
COHORTS = {'tcga_brca': 875, 'tcga_lung': 958, 'tcga_kidney': 905}


def _raw_columns(path: Path) -> tuple[dict[str, list[str]], int]:
    """Non-blank cells per column, read plainly; and the number of blank cells."""
    with path.open(newline='') as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    cols: dict[str, list[str]] = {h: [] for h in header}
    blanks = 0
    for row in rows[1:]:
        for h, cell in zip(header, row):
            if cell.strip():
                cols[h].append(cell.strip())
            else:
                blanks += 1
    return cols, blanks


@pytest.mark.parametrize('task', TASKS)
def test_real_splits(hipt_dir: Path, task: str) -> None:
    split_dir = hipt_dir / TASK_PRESETS[task].split_dir
    splits = load_splits(split_dir)
    assert [s.fold for s in splits] == list(range(10))

    padded_files = 0
    for split in splits:
        cols, blanks = _raw_columns(split_dir / f'splits_{split.fold}.csv')
        padded_files += blanks > 0
        for part in ('train', 'val', 'test'):
            ids = split.part(part)
            assert len(ids) == len(cols[part]) > 0
            assert all(i and not i.endswith('.svs') for i in ids)
        assert not set(split.train) & set(split.test)
        assert not set(split.val) & set(split.test)
    assert padded_files == len(splits)  # the files do use blank padding

    # Every labelled slide of the cohort is in every split (HIPT drops the others).
    labels = load_task_labels(task, hipt_dir / TASK_PRESETS[task].csv_name).labels
    for split in splits:
        assert len(split.all_ids() & set(labels)) == COHORTS[task]

    # "10-fold CV" = repeated random splits: the test sets overlap.
    assert set(splits[0].test) & set().union(*(s.test for s in splits[1:]))


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open('w', newline='') as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_blank_padding_and_svs(tmp_path: Path) -> None:
    path = _write(tmp_path / 'splits_7.csv', [
        ['', 'train', 'val', 'test'],
        ['0', 'a.svs', 'b', 'c.svs'],
        ['1', 'd', '', 'e'],
        ['2', 'f.svs', '', ''],
        ['3', ' g ', ''],  # short row
    ])
    split = read_split_csv(path)
    assert split.fold == 7
    assert split.train == ['a', 'd', 'f', 'g']
    assert split.val == ['b']
    assert split.test == ['c', 'e']


def test_column_order_does_not_matter(tmp_path: Path) -> None:
    path = _write(tmp_path / 'splits_0.csv', [['test', 'val', 'train'], ['x', 'y', 'z']])
    split = read_split_csv(path)
    assert (split.train, split.val, split.test) == (['z'], ['y'], ['x'])


def test_split_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='missing column'):
        read_split_csv(_write(tmp_path / 'splits_0.csv', [['', 'train', 'test'], ['0', 'a', 'b']]))
    with pytest.raises(ValueError, match='both train and test'):
        read_split_csv(_write(tmp_path / 'splits_1.csv',
                              [['', 'train', 'val', 'test'], ['0', 'a.svs', '', 'a']]))
    with pytest.raises(ValueError, match='fold'):
        read_split_csv(_write(tmp_path / 'other.csv', [['', 'train', 'val', 'test']]))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no splits_'):
        load_splits(empty)
    with pytest.raises(FileNotFoundError):
        load_splits(tmp_path / 'absent')


def test_folds_sorted_numerically(tmp_path: Path) -> None:
    for k in (10, 2, 0):
        _write(tmp_path / f'splits_{k}.csv', [['', 'train', 'val', 'test'], ['0', 'a', 'b', 'c']])
    assert [s.fold for s in load_splits(tmp_path)] == [0, 2, 10]
