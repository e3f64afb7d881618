"""Labels: HIPT presets on the real CSVs, generic label columns, id normalisation."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from slpd_plugin.datasets.labels import (
    TASK_PRESETS,
    load_labels,
    load_task_labels,
    normalize_slide_id,
    parse_label_map,
)

# Cohorts of HIPT's subtyping tasks (slides with a kept oncotree code).
COHORTS = {'tcga_brca': 875, 'tcga_lung': 958, 'tcga_kidney': 905}


@pytest.mark.parametrize('task', sorted(COHORTS))
def test_cohort_counts__real_csv(hipt_dir: Path, task: str) -> None:
    preset = TASK_PRESETS[task]
    table = load_task_labels(task, hipt_dir / preset.csv_name)
    assert len(table.labels) == COHORTS[task]

    # Independent count: raw rows whose code is in the preset, unique slide ids.
    with (hipt_dir / preset.csv_name).open(newline='') as fh:
        rows = list(csv.DictReader(fh))
    kept = [r for r in rows if r['oncotree_code'] in preset.label_map]
    assert len({r['slide_id'] for r in kept}) == COHORTS[task]
    expected = Counter(r['oncotree_code'] for r in kept)
    assert table.class_counts() == {name: expected[name] for name in table.class_names}
    assert table.num_dropped == len(rows) - len(kept)
    assert all(not s.endswith('.svs') for s in table.labels)


def test_brca_drops_non_idc_ilc_codes(hipt_dir: Path) -> None:
    table = load_task_labels('tcga_brca', hipt_dir / 'tcga_brca_subset.csv')
    assert table.class_names == ['IDC', 'ILC']
    assert set(table.dropped_values) >= {'MDLC', 'IMMC', 'MBC'}
    assert 'IDC' not in table.dropped_values


def test_kidney_has_three_classes_in_hipt_order(hipt_dir: Path) -> None:
    table = load_task_labels('tcga_kidney', hipt_dir / 'tcga_kidney_subset.csv')
    assert table.class_names == ['CCRCC', 'PRCC', 'CHRCC']
    assert table.num_classes == 3


@pytest.mark.parametrize('raw, expected', [
    ('TCGA-AB-1234.svs', 'TCGA-AB-1234'),
    ('TCGA-AB-1234', 'TCGA-AB-1234'),
    ('  TCGA-AB-1234.svs\n', 'TCGA-AB-1234'),
    ('slide.SVS', 'slide'),
    ('a.svs.b', 'a.svs.b'),
])
def test_normalize_slide_id(raw: str, expected: str) -> None:
    assert normalize_slide_id(raw) == expected


@pytest.mark.parametrize('text, expected', [
    ('IDC:0,ILC:1', {'IDC': 0, 'ILC': 1}),
    ('{"a": 1, "b": 0}', {'a': 1, 'b': 0}),
    ('neg, pos', {'neg': 0, 'pos': 1}),
    ('x:0,y:0,z:1', {'x': 0, 'y': 0, 'z': 1}),
    ('["b", "a"]', {'b': 0, 'a': 1}),
])
def test_parse_label_map(text: str, expected: dict) -> None:
    assert parse_label_map(text) == expected


@pytest.mark.parametrize('text, match', [
    ('a:0,b:2', 'cover 0..K-1'),
    ('a:x', 'name:int'),
    ('a:0,b', 'mixes'),
    ('{"a": "0"}', 'integers'),
    ('{"a": 0', 'not valid JSON'),
])
def test_parse_label_map__errors(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_label_map(text)


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['slide_id', 'label'])
        writer.writerows(rows)
    return path


def test_generic_label_column(tmp_path: Path) -> None:
    path = _write(tmp_path / 'b.csv', [('s1.svs', 'pos'), ('s2', 'neg'), ('s3', ''),
                                       ('s4', 'pos'), ('s1', 'pos')])
    table = load_labels(path, 'label')
    assert table.class_names == ['neg', 'pos']  # sorted when no map is given
    assert table.labels == {'s1': 1, 's2': 0, 's4': 1}  # duplicate s1 kept once
    assert table.num_dropped == 1 and table.dropped_values == {'': 1}

    mapped = load_labels(path, 'label', {'pos': 0, 'neg': 1})
    assert mapped.labels == {'s1': 0, 's2': 1, 's4': 0}


def test_conflicting_labels_raise(tmp_path: Path) -> None:
    path = _write(tmp_path / 'c.csv', [('s1.svs', 'pos'), ('s1', 'neg')])
    with pytest.raises(ValueError, match='two labels'):
        load_labels(path, 'label')


def test_missing_column_and_task(tmp_path: Path) -> None:
    path = _write(tmp_path / 'd.csv', [('s1', 'pos')])
    with pytest.raises(ValueError, match="column 'oncotree_code' not in"):
        load_labels(path)
    with pytest.raises(ValueError, match='unknown task'):
        load_task_labels('tcga_nope', path)
