"""The combined report: several sets + raw-feature baselines in one markdown file, its
numbers recomputed independently from the files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from slpd_plugin.datasets.labels import load_labels
from slpd_plugin.demo.synthetic_survival import write_survival
from slpd_plugin.demo.synthetic_wsi import make_wsi_benchmark
from slpd_plugin.evaluation import load_splits
from slpd_plugin.evaluation.protocols.baselines import FEATHER_LIKE, num_parameters, raw_region_bags
from tests.utils import load_tool


@pytest.fixture(scope='module')
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('report')
    bench = make_wsi_benchmark(root / 'bench', num_slides=40, channels=16, region_scale=0.1,
                               num_folds=3, val_frac=0.2, test_frac=0.25, progress=False)
    write_survival(bench)
    return bench


def _write_set(bench: Path, folder: Path, scale: float, seed: int) -> dict[str, np.ndarray]:
    """Region embeddings = raw region means (store) times a scale plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    out = {}
    for sid, raw in raw_region_bags(bench / 'store').items():
        emb = scale * raw.numpy() + rng.standard_normal(raw.shape)
        torch.save(torch.as_tensor(emb, dtype=torch.float32), folder / f'{sid}.pt')
        out[sid] = emb.mean(0)
    return out


@pytest.mark.slow  # trains MIL models for 3 sets x 3 splits and fits Cox models
def test_report_holds_every_set_baselines_cis_and_plots(bench, tmp_path, capsys):
    good = _write_set(bench, tmp_path / 'good', 1.0, 0)
    _write_set(bench, tmp_path / 'poor', 0.2, 1)
    out = tmp_path / 'rep'
    code = load_tool('eval_slides').main([
        'report', '--embeddings', f'good={tmp_path / "good"}',
        '--embeddings', f'poor={tmp_path / "poor"}', '--store', str(bench / 'store'),
        '--csv', str(bench / 'labels.csv'), '--splits', str(bench / 'splits'),
        '--survival-csv', str(bench / 'survival.csv'),
        '--survival-splits', str(bench / 'splits_survival'), '--out', str(out),
        '--epochs', '1', '--shots', '1', '2', '--draws', '3', '--bootstrap', '200'])
    assert code == 0, capsys.readouterr().err
    text = (out / 'report.md').read_text()
    record = json.loads((out / 'report.json').read_text())
    for section in ('## knn', '## linear', '## mil', '## few-shot', '## retrieval',
                    '## survival'):
        assert section in text
    for png in ('roc_knn.png', 'roc_linear.png', 'roc_mil.png', 'fewshot.png',
                'km_good.png', 'km_poor.png', 'km_raw_features.png'):
        assert (out / png).read_bytes()[:4] == b'\x89PNG' and f']({png})' in text
    assert set(record['knn']) == {'good', 'poor', 'raw_features'}
    # The supervised ABMIL baseline is the FEATHER-like model on the C = 16 raw features.
    params = num_parameters(FEATHER_LIKE, 16, 2)
    assert f'FEATHER-like ABMIL, {params / 1e6:.2f}M params' in text

    # knn of "good" recomputed with scikit-learn from the files: mean test AUC and the
    # report's table cell.
    labels = load_labels(bench / 'labels.csv', 'oncotree_code')
    aucs = []
    for split in load_splits(bench / 'splits'):
        x_tr = np.stack([good[s] for s in split.train])
        y_tr = [labels.labels[s] for s in split.train]
        x_te = np.stack([good[s] for s in split.test])
        y_te = [labels.labels[s] for s in split.test]
        proba = KNeighborsClassifier().fit(x_tr, y_tr).predict_proba(x_te)[:, 1]
        aucs.append(roc_auc_score(y_te, proba))
    knn = record['knn']['good']
    assert knn['test_auc']['mean'] == pytest.approx(np.mean(aucs), abs=1e-6)
    row = re.search(r'^\| good \| KNN k=5 \| ([0-9.]+) ± ([0-9.]+) \| \[([0-9.]+), ([0-9.]+)\]',
                    text, re.M)
    assert float(row.group(1)) == pytest.approx(np.mean(aucs), abs=5e-4)
    assert float(row.group(3)) == pytest.approx(knn['bootstrap']['test_auc']['lo'], abs=5e-4)

    # Paired comparisons against the first set: a verdict per row, "no claim" exactly when
    # the bootstrap interval covers 0; DeLong for this binary task.
    for protocol in ('knn', 'linear', 'mil'):
        for name in ('poor', 'raw_features'):
            cmp = record[protocol][name]['vs_good']
            boot = cmp['test_auc']['bootstrap']
            assert cmp['test_auc']['no_claim'] == (boot['lo'] <= 0 <= boot['hi'])
            assert cmp['test_auc']['delong']['diff'] == pytest.approx(boot['point'])
    assert text.count('no claim (CI covers 0)') == sum(
        record[p][n]['vs_good']['test_auc']['no_claim'] for p in ('knn', 'linear', 'mil')
        for n in ('poor', 'raw_features')) + sum(
        record['survival'][n]['vs_good']['no_claim'] for n in ('poor', 'raw_features'))

    # Survival: five folds, the table's mean is the mean of the fold c-indices.
    surv = record['survival']['good']
    folds = [f['val_cindex'] for f in surv['folds']]
    assert len(folds) == 5 and surv['val_cindex']['mean'] == pytest.approx(np.mean(folds))
    assert surv['bootstrap']['lo'] <= surv['val_cindex']['mean'] <= surv['bootstrap']['hi']
    assert f'| good | {np.mean(folds):.3f} ±' in text


def test_report_argument_errors(bench, tmp_path, capsys):
    cli = load_tool('eval_slides')
    _write_set(bench, tmp_path / 'a', 1.0, 0)
    base = ['report', '--embeddings', str(tmp_path / 'a'), '--csv', str(bench / 'labels.csv'),
            '--splits', str(bench / 'splits'), '--out', str(tmp_path / 'o')]
    assert cli.main([*base, '--survival-csv', str(bench / 'survival.csv')]) == 2
    assert '--survival-csv and --survival-splits go together' in capsys.readouterr().err
    assert cli.main([*base, '--protocols', 'svm']) == 2
    assert cli.main([*base, '--store', str(tmp_path / 'nostore'), '--protocols', 'knn']) == 1
    assert 'nostore' in capsys.readouterr().err
