"""tools/make_splits.py: case-level, stratified, seeded splits in HIPT's layout, read
back by the package's own readers; a cohort too small for the folds is refused."""
from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from slpd_plugin.evaluation.data.splits import load_splits
from slpd_plugin.evaluation.data.survival_data import load_survival_labels, load_survival_splits
from tests.utils import load_tool


def write_cohort(path, num_cases=30, seed=0):
    """A labels CSV in HIPT's layout: cases with 1-3 slides each, two unequal classes,
    and survival columns; returns {case: (class, [slides])}."""
    rng = np.random.default_rng(seed)
    cases = {}
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['', 'case_id', 'slide_id', 'oncotree_code', 'survival_months',
                         'censorship'])
        row = 0
        for c in range(num_cases):
            case = f'TCGA-{c:04d}'
            label = 'A' if c % 3 else 'B'  # 2:1
            censor = int(rng.random() < 0.4)
            months = f'{rng.uniform(1, 100):.1f}'
            slides = [f'{case}-01Z-00-DX{s + 1}' for s in range(1 + c % 3)]
            for slide in slides:
                writer.writerow([row, case, f'{slide}.svs', label, months, censor])
                row += 1
            cases[case] = (label, slides, censor)
    return cases


def run(args, capsys):
    code = load_tool('make_splits').main([str(a) for a in args])
    return code, capsys.readouterr()


def case_of(slide):
    return slide[:9]


def test_kfold_classification_by_case_stratified_and_seeded(tmp_path, capsys):
    cases = write_cohort(tmp_path / 'labels.csv')
    code, _ = run(['classification', tmp_path / 'labels.csv', '--out', tmp_path / 's',
                   '--folds', '5', '--val-frac', '0.2', '--seed', '3'], capsys)
    assert code == 0
    splits = load_splits(tmp_path / 's')
    assert [s.fold for s in splits] == [0, 1, 2, 3, 4]
    all_slides = {s for _, slides, _ in cases.values() for s in slides}
    tests = []
    for split in splits:
        assert split.all_ids() == all_slides  # every slide placed, in one part
        parts = [{case_of(s) for s in split.part(p)} for p in ('train', 'val', 'test')]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        for part in parts:  # a case's slides all travel together
            assert {s for c in part for s in cases[c][1]} <= split.all_ids()
        test_labels = Counter(cases[c][0] for c in parts[2])
        assert abs(test_labels['A'] - 2 * test_labels['B']) <= 2  # stratified, 2:1
        assert len(parts[1]) == pytest.approx(0.2 * len(cases), abs=1)
        tests.append(parts[2])
    assert set().union(*tests) == set(cases)  # the test folds partition the cases
    assert sum(map(len, tests)) == len(cases)
    first = (tmp_path / 's' / 'splits_0.csv').read_text()
    run(['classification', tmp_path / 'labels.csv', '--out', tmp_path / 'again',
         '--folds', '5', '--val-frac', '0.2', '--seed', '3'], capsys)
    assert (tmp_path / 'again' / 'splits_0.csv').read_text() == first  # seeded
    run(['classification', tmp_path / 'labels.csv', '--out', tmp_path / 'other',
         '--folds', '5', '--val-frac', '0.2', '--seed', '4'], capsys)
    assert (tmp_path / 'other' / 'splits_0.csv').read_text() != first
    header = first.splitlines()[0]
    assert header == ',train,val,test'  # HIPT's header, blank index column


def test_monte_carlo_fractions(tmp_path, capsys):
    cases = write_cohort(tmp_path / 'labels.csv', num_cases=40)
    code, out = run(['classification', tmp_path / 'labels.csv', '--out', tmp_path / 's',
                     '--design', 'mc', '--folds', '4', '--val-frac', '0.2',
                     '--test-frac', '0.25'], capsys)
    assert code == 0 and 'splits_3.csv' in out.out
    splits = load_splits(tmp_path / 's')
    assert len(splits) == 4
    for split in splits:
        test_cases = {case_of(s) for s in split.test}
        val_cases = {case_of(s) for s in split.val}
        assert len(test_cases) == pytest.approx(0.25 * len(cases), abs=1)
        assert len(val_cases) == pytest.approx(0.2 * len(cases), abs=1)
    assert len({frozenset(s.test) for s in splits}) > 1  # independent draws


def test_survival_folds_by_case(tmp_path, capsys):
    cases = write_cohort(tmp_path / 'labels.csv')
    code, _ = run(['survival', tmp_path / 'labels.csv', '--out', tmp_path / 's',
                   '--folds', '3'], capsys)
    assert code == 0
    assert (tmp_path / 's' / 'splits_0.csv').read_text().splitlines()[0] == ',train,val'
    table = load_survival_labels(tmp_path / 'labels.csv')
    splits = load_survival_splits(tmp_path / 's')
    vals = [set(s.val) for s in splits]
    assert set().union(*vals) == set(cases) == set(table.time)  # case ids, a partition
    assert sum(map(len, vals)) == len(cases)
    events = Counter(1 - cases[c][2] for c in cases)
    for split in splits:
        assert not set(split.train) & set(split.val)
        share = sum(1 - cases[c][2] for c in split.val) / len(split.val)
        assert share == pytest.approx(events[1] / len(cases), abs=0.15)  # stratified


def test_refuses_a_cohort_too_small_with_its_numbers(tmp_path, capsys):
    write_cohort(tmp_path / 'labels.csv', num_cases=9)  # 3 cases of class B
    code, out = run(['classification', tmp_path / 'labels.csv', '--out', tmp_path / 's',
                     '--folds', '5'], capsys)
    assert code == 1
    assert "cohort too small for 5 folds: 'B' has 3 case(s)" in out.err
    assert '--folds 3' in out.err and not (tmp_path / 's').exists()
    code, out = run(['classification', tmp_path / 'labels.csv', '--out', tmp_path / 's',
                     '--case-col', 'patient'], capsys)
    assert code == 1 and "no column 'patient'" in out.err and '--case-col' in out.err
