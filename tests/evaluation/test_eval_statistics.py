"""Statistics: DeLong against brute-force structural components, balanced accuracy against
scikit-learn, paired bootstrap on hand-made cases, CIs in the knn/linear outputs."""
from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from slpd_plugin.evaluation.stats.bootstrap import (
    bootstrap_ci,
    metric_auc,
    metric_bacc,
    paired_bootstrap,
    verdict,
)
from slpd_plugin.evaluation.stats.delong import delong_covariance, delong_folds, delong_paired
from tests.utils import load_tool


def brute_force_delong(y, scores):
    """DeLong 1988 by definition: psi over every (positive, negative) pair, then the
    covariance of the per-case means."""
    scores = np.atleast_2d(scores)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos), len(neg)
    k = len(scores)
    psi = np.zeros((k, m, n))
    for r in range(k):
        for a, i in enumerate(pos):
            for b, j in enumerate(neg):
                xi, yj = scores[r, i], scores[r, j]
                psi[r, a, b] = 1.0 if xi > yj else 0.5 if xi == yj else 0.0
    v10, v01 = psi.mean(2), psi.mean(1)  # (K, M), (K, N)
    auc = psi.mean((1, 2))
    s10 = np.array([[np.sum((v10[p] - auc[p]) * (v10[q] - auc[q])) / (m - 1)
                     for q in range(k)] for p in range(k)])
    s01 = np.array([[np.sum((v01[p] - auc[p]) * (v01[q] - auc[q])) / (n - 1)
                     for q in range(k)] for p in range(k)])
    return auc, s10 / m + s01 / n


def test_delong_matches_brute_force_structural_components():
    rng = np.random.default_rng(0)
    for _ in range(4):
        y = (rng.random(23) < 0.4).astype(int)
        y[:2] = [0, 1]
        a = rng.integers(0, 5, 23).astype(float)  # many ties
        b = a + rng.normal(0, 1.0, 23).round(1) + y
        auc, cov = delong_covariance(y, np.stack([a, b]))
        auc_bf, cov_bf = brute_force_delong(y, np.stack([a, b]))
        np.testing.assert_allclose(auc, auc_bf, atol=1e-12)
        np.testing.assert_allclose(auc, [roc_auc_score(y, a), roc_auc_score(y, b)])
        np.testing.assert_allclose(cov, cov_bf, atol=1e-12)
        r = delong_paired(y, a, b)
        se = math.sqrt(cov_bf[0, 0] + cov_bf[1, 1] - 2 * cov_bf[0, 1])
        assert r.diff == pytest.approx(auc_bf[1] - auc_bf[0])
        assert r.se == pytest.approx(se)
        assert r.p == pytest.approx(2 * norm.sf(abs(r.diff / se)))


def test_delong_se_agrees_with_the_bootstrap_and_folds_combine():
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.5).astype(int)
    a = y + rng.normal(0, 1.2, 400)
    b = a + y * 0.4 + rng.normal(0, 0.5, 400)
    proba = [np.stack([1 - s, s], 1) for s in (a, b)]
    delong = delong_paired(y, a, b)
    boot = paired_bootstrap(metric_auc, [(y, proba[0])], [(y, proba[1])], 1000, seed=0)
    assert boot.point == pytest.approx(delong.diff)
    # the two 95 % intervals agree to within a fifth of their width
    assert abs((boot.hi - boot.lo) - (delong.hi - delong.lo)) < 0.2 * (delong.hi - delong.lo)
    # two folds: the mean difference, variance (v1 + v2) / 4
    half = [slice(0, 200), slice(200, 400)]
    folds_a = [(y[h], proba[0][h]) for h in half]
    folds_b = [(y[h], proba[1][h]) for h in half]
    parts = [delong_paired(y[h], a[h], b[h]) for h in half]
    both = delong_folds(folds_a, folds_b)
    assert both.diff == pytest.approx(np.mean([p.diff for p in parts]))
    assert both.se == pytest.approx(math.sqrt(sum(p.se ** 2 for p in parts)) / 2)
    with pytest.raises(ValueError, match='different test slides'):
        delong_folds(folds_a, folds_b[::-1])
    with pytest.raises(ValueError, match='binary'):
        delong_paired(np.array([0, 1, 2]), a[:3], b[:3])


def test_balanced_accuracy_matches_scikit_learn():
    rng = np.random.default_rng(2)
    for k in (2, 3):
        y = rng.integers(0, k, 50)
        if k == 3:
            y[y == 2] = 0  # a class predicted but absent from y: left out of the mean
        proba = rng.random((50, k))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)
            expected = balanced_accuracy_score(y, proba.argmax(1))
        assert metric_bacc(y, proba) == pytest.approx(expected)


def test_paired_bootstrap_hand_made_cases():
    # 400 slides of one class: B right where A is wrong on 60 slides, the same elsewhere.
    # The paired difference is the mean of d_i in {0, 1}: 0.15 with standard error
    # sqrt(0.15 * 0.85 / 400) = 0.0179, so the interval is about 0.15 ± 0.035.
    y = np.zeros(400, int)
    right, wrong = np.array([0.9, 0.1]), np.array([0.1, 0.9])
    a = np.array([right] * 200 + [wrong] * 200)
    b = a.copy()
    b[200:260] = right
    diff = paired_bootstrap(metric_bacc, [(y, a)], [(y, b)], 2000, seed=0)
    assert diff.point == pytest.approx(0.15)
    se = math.sqrt(0.15 * 0.85 / 400)
    assert diff.lo == pytest.approx(0.15 - 1.96 * se, abs=0.008)
    assert diff.hi == pytest.approx(0.15 + 1.96 * se, abs=0.008)
    assert 'B is better' in verdict(diff, 'A', 'B')
    # Same accuracy (0.5) on different slides: difference 0, interval about ± 1.96 / 20.
    c = np.array([wrong] * 200 + [right] * 200)
    tie = paired_bootstrap(metric_bacc, [(y, a)], [(y, c)], 2000, seed=0)
    assert tie.point == 0 and tie.lo == pytest.approx(-0.098, abs=0.01)
    assert 'no claim' in verdict(tie, 'A', 'C')
    # Identical predictions: every replicate differs by exactly 0.
    same = paired_bootstrap(metric_bacc, [(y, a)], [(y, a)], 200, seed=0)
    assert (same.lo, same.hi) == (0.0, 0.0) and 'no claim' in verdict(same, 'A', 'A')
    single = bootstrap_ci(metric_bacc, [(y, b)], 200, seed=0)
    assert single.lo < 0.65 < single.hi


def test_knn_and_linear_outputs_carry_bootstrap_cis(make_dataset, splitter, tmp_path):
    cli = load_tool('eval_slides')
    rng = np.random.default_rng(0)
    regions = {f'S{i:03d}': rng.normal(size=(3, 4)) + (i % 2) for i in range(40)}
    labels = {s: 'AB'[i % 2] for i, s in enumerate(regions)}
    paths = make_dataset(regions, labels, splitter(sorted(regions), 2, seed=0))
    out = tmp_path / 'knn'
    assert cli.main(['knn', '--embeddings', str(paths['embeddings']), '--csv',
                     str(paths['csv']), '--splits', str(paths['splits']), '--out', str(out),
                     '--label-col', 'label', '--bootstrap', '300', '--roc', 'none']) == 0
    result = json.loads((out / 'results.json').read_text())
    boot = result['bootstrap']
    assert boot['test_auc']['num_resamples'] == 300
    assert boot['test_auc']['point'] == pytest.approx(result['summary']['test_auc']['mean'])
    assert boot['test_auc']['lo'] <= boot['test_auc']['point'] <= boot['test_auc']['hi']
    # balanced accuracy from the written predictions, independently with scikit-learn
    with (out / 'predictions.csv').open() as fh:
        rows = list(csv.DictReader(fh))
    per_fold = []
    for k in ('0', '1'):
        part = [r for r in rows if r['fold'] == k]
        y = [int(r['label']) for r in part]
        pred = [int(float(r['prob_1']) > float(r['prob_0'])) for r in part]
        per_fold.append(balanced_accuracy_score(y, pred))
    assert boot['test_bacc']['point'] == pytest.approx(np.mean(per_fold))
