"""select_cohort: labels x splits x embeddings, cross-checked before any evaluation."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from slpd_plugin.datasets.labels import LabelTable
from slpd_plugin.evaluation import Split
from slpd_plugin.evaluation.data.cohort import select_cohort


def _embeddings(folder: Path, ids: list[str]) -> Path:
    folder.mkdir()
    for s in ids:
        torch.save(torch.ones(2, 4), folder / f'{s}.pt')
    return folder


def test_select_cohort__wanted_unlabelled_missing(tmp_path: Path) -> None:
    table = LabelTable({'a': 0, 'b': 1, 'c': 0, 'z': 1}, ['X', 'Y'], 'code')
    splits = [Split(0, ['a', 'b'], ['u'], ['c'])]  # 'u' has no label, 'z' is in no split
    emb = _embeddings(tmp_path / 'emb', ['a', 'b', 'other'])
    with pytest.warns(UserWarning, match='1 slide'):
        cohort = select_cohort(table, splits, emb, csv=tmp_path / 'l.csv',
                               splits_dir=tmp_path)
    assert cohort.wanted == {'a', 'b', 'c'} and cohort.unlabelled == {'u'}
    assert sorted(cohort.available) == ['a', 'b', 'other']
    assert cohort.missing.count == 1


@pytest.mark.parametrize('labels, split_ids, files, message', [
    ({}, ['a'], ['a'], "no row of l.csv has a value of the label map None in column 'code'"),
    ({'a': 0}, ['a'], ['a'], 'need at least two classes'),
    ({'a': 0, 'b': 1}, ['q'], ['a'], "no slide of the splits .* (e.g. split id 'q'"),
    ({'a': 0, 'b': 1}, ['a', 'b'], ['x'], "no overlap between the 1 embeddings"),
])
def test_select_cohort__refuses_inputs_that_do_not_meet(tmp_path, labels, split_ids, files,
                                                        message) -> None:
    table = LabelTable(labels, ['X', 'Y'] if len(set(labels.values())) != 1 else ['X'],
                       'code')
    emb = _embeddings(tmp_path / 'emb', files)
    with pytest.raises(ValueError, match=message.replace('(', r'\(')):
        select_cohort(table, [Split(0, split_ids, [], [])], emb, csv=tmp_path / 'l.csv',
                      splits_dir=tmp_path)
