"""KNN / linear protocols against plainly written scikit-learn references."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from slpd_plugin.datasets.labels import load_labels
from slpd_plugin.evaluation import (
    DEFAULT_C_GRID,
    SlideEmbeddings,
    Split,
    evaluate_splits,
    load_slide_embeddings,
    load_splits,
    mean_std,
    parse_fraction,
    subsample,
)


def synthetic_regions(num_slides: int, num_classes: int, dim: int, signal: float,
                      seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Slides whose regions scatter around a class centre (label encoded in the mean)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)) * signal
    regions, labels = {}, {}
    for i in range(num_slides):
        y = i % num_classes
        n = int(rng.integers(2, 12))
        sid = f'TCGA-{i:04d}'
        regions[sid] = (centres[y] + rng.normal(size=(n, dim))).astype(np.float32)
        labels[sid] = y
    return regions, labels


def reference_knn(regions, labels, split):
    """KNN written out directly: numpy means, sklearn defaults, sklearn AUC."""
    ids = [s for s in split[0]]
    x_tr = np.stack([regions[s].astype(np.float64).mean(0) for s in ids])
    y_tr = np.array([labels[s] for s in ids])
    x_te = np.stack([regions[s].astype(np.float64).mean(0) for s in split[2]])
    y_te = np.array([labels[s] for s in split[2]])
    clf = KNeighborsClassifier(n_neighbors=5).fit(x_tr, y_tr)
    proba = clf.predict_proba(x_te)
    if proba.shape[1] == 2:
        auc = roc_auc_score(y_te, proba[:, 1])
    else:
        auc = roc_auc_score(y_te, proba, multi_class='ovr', average='macro')
    return auc, float((clf.predict(x_te) == y_te).mean())


def load_all(paths, label_map):
    table = load_labels(paths['csv'], 'label', label_map)
    return load_slide_embeddings(paths['embeddings']), table, load_splits(paths['splits'])


def test_knn_separable_gives_auc_one(make_dataset, splitter) -> None:
    regions, labels = synthetic_regions(60, 2, 8, signal=10.0)
    names = {s: ('ILC' if y else 'IDC') for s, y in labels.items()}
    paths = make_dataset(regions, names, splitter(sorted(regions), 4))
    emb, table, splits = load_all(paths, {'IDC': 0, 'ILC': 1})
    result = evaluate_splits('knn', emb, table.labels, splits, 2)
    assert [f.test_auc for f in result.folds] == [1.0] * 4
    assert [f.test_acc for f in result.folds] == [1.0] * 4
    summary = result.summary()['test_auc']
    assert summary['mean'] == 1.0 and summary['std'] == 0.0 and summary['n'] == 4


@pytest.mark.parametrize('num_classes', [2, 3])
def test_knn_matches_sklearn_reference(make_dataset, splitter, num_classes: int) -> None:
    regions, labels = synthetic_regions(90, num_classes, 6, signal=0.35, seed=num_classes)
    names = {s: f'c{y}' for s, y in labels.items()}
    raw_splits = splitter(sorted(regions), 5, seed=1)
    paths = make_dataset(regions, names, raw_splits)
    label_map = {f'c{k}': k for k in range(num_classes)}
    emb, table, splits = load_all(paths, label_map)
    result = evaluate_splits('knn', emb, table.labels, splits, num_classes)

    aucs, accs = [], []
    for fold, split in zip(result.folds, raw_splits):
        auc, acc = reference_knn(regions, labels, split)
        assert fold.test_auc == pytest.approx(auc, abs=1e-12)
        assert fold.test_acc == pytest.approx(acc, abs=1e-12)
        aucs.append(auc)
        accs.append(acc)
    assert 0.5 < statistics.mean(aucs) < 1.0  # a non-trivial case
    summary = result.summary()
    assert summary['test_auc']['mean'] == pytest.approx(statistics.mean(aucs))
    assert summary['test_auc']['std'] == pytest.approx(statistics.stdev(aucs))
    assert summary['test_acc']['std'] == pytest.approx(statistics.stdev(accs))


def _embeddings(regions: dict[str, np.ndarray]) -> SlideEmbeddings:
    ids = sorted(regions)
    return SlideEmbeddings(ids, np.stack([regions[s].mean(0) for s in ids]),
                           [len(regions[s]) for s in ids])


def test_class_missing_from_test_gives_nan(splitter) -> None:
    regions, labels = synthetic_regions(40, 2, 4, signal=3.0)
    ids = sorted(regions)
    class0 = [s for s in ids if labels[s] == 0]
    good = splitter(ids, 2)
    bad = Split(7, [s for s in ids if s not in class0[:5]], [], class0[:5])
    splits = [Split(k, *parts) for k, parts in enumerate(good)] + [bad]
    with pytest.warns(UserWarning, match=r"split 7: class\(es\) \['IDC'\] absent|split 7.*"
                                         r"\['ILC'\] absent from the test"):
        result = evaluate_splits('knn', _embeddings(regions), labels, splits, 2,
                                 ['IDC', 'ILC'])
    assert math.isnan(result.folds[-1].test_auc)
    assert not math.isnan(result.folds[-1].test_acc)
    assert math.isnan(result.folds[-1].val_auc)  # empty val part
    assert result.auc_undefined_folds == [7]
    summary = result.summary()['test_auc']
    finite = [f.test_auc for f in result.folds[:2]]
    assert summary['n'] == 2 and summary['n_nan'] == 1
    assert summary['mean'] == pytest.approx(statistics.mean(finite))


def test_mean_std_ddof1_and_nan() -> None:
    vals = [0.7, 0.8, float('nan'), 0.95]
    out = mean_std(vals)
    assert out['mean'] == pytest.approx(statistics.mean([0.7, 0.8, 0.95]))
    assert out['std'] == pytest.approx(statistics.stdev([0.7, 0.8, 0.95]))
    assert (out['n'], out['n_nan']) == (3, 1)
    assert math.isnan(mean_std([0.5])['std'])


@pytest.mark.parametrize('spec, value, n_drawn', [('hipt10', 0.1, 10), ('0.25', 0.25, 25),
                                                 ('1', 1.0, 100), (0.5, 0.5, 50)])
def test_fraction_draw(spec, value: float, n_drawn: int) -> None:
    fraction = parse_fraction(spec)
    assert fraction.value == value
    ids = [f's{i}' for i in range(100)]
    drawn = subsample(ids, fraction.value, np.random.default_rng([0, 3]))
    assert len(drawn) == n_drawn == len(set(drawn))
    assert drawn == sorted(drawn, key=ids.index)  # original order kept
    again = subsample(ids, fraction.value, np.random.default_rng([0, 3]))
    assert drawn == again


@pytest.mark.parametrize('bad', ['0', '1.5', '-0.1', 'hipt25', 'abc'])
def test_fraction_errors(bad: str) -> None:
    with pytest.raises(ValueError, match='hipt10'):
        parse_fraction(bad)


def test_fraction_is_seeded_per_split(splitter) -> None:
    regions, labels = synthetic_regions(80, 2, 4, signal=1.0)
    emb = _embeddings(regions)
    splits = [Split(k, *p) for k, p in enumerate(splitter(sorted(regions), 3))]
    full = evaluate_splits('knn', emb, labels, splits, 2, fraction='hipt10', seed=5)
    alone = evaluate_splits('knn', emb, labels, splits[2:], 2, fraction='hipt10', seed=5)
    assert full.folds[2].test_auc == alone.folds[0].test_auc
    assert [f.n_train for f in full.folds] == [5, 5, 5]  # round(0.1 * 48)
    with pytest.raises(ValueError, match='fewer than k=5'):
        evaluate_splits('knn', emb, labels, splits, 2, fraction=0.05)


def test_linear_fixed_C_matches_sklearn(splitter) -> None:
    regions, labels = synthetic_regions(90, 3, 6, signal=0.4, seed=3)
    emb = _embeddings(regions)
    raw = splitter(sorted(regions), 2, seed=2)
    splits = [Split(k, *p) for k, p in enumerate(raw)]
    result = evaluate_splits('linear', emb, labels, splits, 3, C=0.3)
    for fold, (train, _, test) in zip(result.folds, raw):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=1000))
        model.fit(emb.take(train), [labels[s] for s in train])
        y_te = [labels[s] for s in test]
        expected = roc_auc_score(y_te, model.predict_proba(emb.take(test)),
                                 multi_class='ovr')
        assert fold.C == 0.3
        assert fold.test_auc == pytest.approx(expected, abs=1e-9)


def test_linear_chooses_C_on_val(splitter) -> None:
    regions, labels = synthetic_regions(80, 2, 10, signal=0.3, seed=4)
    emb = _embeddings(regions)
    raw = splitter(sorted(regions), 1, seed=0, sizes=(0.5, 0.25))
    result = evaluate_splits('linear', emb, labels, [Split(0, *raw[0])], 2)
    train, val, _ = raw[0]
    scores = []
    for c in sorted(DEFAULT_C_GRID):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        model.fit(emb.take(train), [labels[s] for s in train])
        y_val = np.array([labels[s] for s in val])
        auc = roc_auc_score(y_val, model.predict_proba(emb.take(val))[:, 1])
        acc = float((model.predict(emb.take(val)) == y_val).mean())
        scores.append((auc, acc))
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))  # ties: smaller C
    assert result.folds[0].C == sorted(DEFAULT_C_GRID)[best]
    assert result.folds[0].val_auc == pytest.approx(scores[best][0])


def test_unknown_protocol_and_empty_test() -> None:
    emb = SlideEmbeddings(['a'], np.zeros((1, 2)), [1])
    with pytest.raises(ValueError, match='unknown protocol'):
        evaluate_splits('svm', emb, {'a': 0}, [], 2)
    with pytest.raises(ValueError, match='no test slide'):
        evaluate_splits('knn', emb, {'a': 0}, [Split(0, ['a'], [], ['b'])], 2)
