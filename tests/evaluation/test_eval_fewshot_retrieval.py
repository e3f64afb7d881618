"""Few-shot draws, retrieval metrics on a hand-made case, bootstrap intervals, TRIDENT files."""
from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from slpd_plugin.checkpoints.trident import TridentWriter
from slpd_plugin.evaluation import SlideEmbeddings, Split, load_slide_embeddings
from slpd_plugin.evaluation.protocols.fewshot import (
    draw_support,
    evaluate_fewshot,
    simpleshot_proba,
)
from slpd_plugin.evaluation.protocols.retrieval import (
    RETRIEVAL_COLUMNS,
    evaluate_retrieval,
    retrieval_metrics,
)
from slpd_plugin.evaluation.stats.bootstrap import (
    bootstrap_ci,
    metric_auc,
    paired_bootstrap,
    verdict,
)
from tests.utils import load_tool


def test_retrieval_hand_made_case():
    # database: angles 0, 10, 20, 90, 100, 110, 180 degrees; labels by hand
    angles = np.deg2rad([0, 10, 20, 90, 100, 110, 180])
    database = np.stack([np.cos(angles), np.sin(angles)], 1) * np.arange(1, 8)[:, None]
    y_db = np.array([0, 1, 1, 0, 0, 2, 2])
    # query at 4 deg: ranking 0(0), 10(1), 20(1), 90(0), 100(0) -> top1 label 0
    # query at 93 deg, label 1: ranking 90(0), 100(0), 110(2), 20(1), 180(2)
    query = np.stack([np.cos(np.deg2rad([4, 93])), np.sin(np.deg2rad([4, 93]))], 1)
    m = retrieval_metrics(query, np.array([1, 1]), database, y_db, 'cosine')
    # q1 (label 1): top1 0 -> miss, top3 (0,1,1) hit and majority 1, majority of
    # (0,1,1,0,0) = 0 -> miss
    # q2 (label 1): ranking 90(0), 100(0), 110(2), 20(1), 10(1): top1 miss, top3 (0,0,2)
    # miss, top5 hit, and 0 and 1 tie for the majority of the top 5 -> correct
    assert m == {'acc@1': 0.0, 'acc@3': 0.5, 'acc@5': 1.0, 'mvacc@3': 0.5, 'mvacc@5': 0.5}
    m = retrieval_metrics(query, np.array([0, 0]), database, y_db, 'cosine')
    # q2's top5 (0,0,2,1,1): 0 and 1 tie for the majority, 0 among them -> correct
    assert m == {'acc@1': 1.0, 'acc@3': 1.0, 'acc@5': 1.0, 'mvacc@3': 0.5, 'mvacc@5': 1.0}


def test_majority_vote_counts_a_query_correct_when_its_label_ties_for_the_mode():
    """Patho-Bench's rule, on a hand-built 1-d ranking: query 0 retrieves labels
    (0, 1, 0, 1, 2) in this order; 0 and 1 tie in the top 5."""
    database = np.arange(1.0, 7.0)[:, None]
    y_db = np.array([0, 1, 0, 1, 2, 2])
    m = retrieval_metrics(np.zeros((1, 1)), np.array([1]), database, y_db)
    assert m['mvacc@5'] == 1.0  # 1 is among the tied modes (ranked after 0)
    assert m['mvacc@3'] == 0.0  # (0, 1, 0): mode 0 only
    assert m['acc@1'] == 0.0 and m['acc@3'] == 1.0
    m = retrieval_metrics(np.zeros((1, 1)), np.array([2]), database, y_db)
    assert m['mvacc@5'] == 0.0 and m['acc@5'] == 1.0


def test_l2_is_the_default_and_differs_from_cosine_where_norms_differ():
    """A long vector in the query's direction is nearest by cosine, a short one at an
    angle is nearest by L2 (Patho-Bench's default)."""
    query = np.array([[1.0, 0.0]])
    database = np.array([[10.0, 1.0], [0.9, 0.5], [-5, 5], [-6, -6], [0, -9]])
    y_db = np.array([0, 1, 2, 2, 2])
    assert retrieval_metrics(query, np.array([1]), database, y_db)['acc@1'] == 1.0
    assert retrieval_metrics(query, np.array([1]), database, y_db, 'l2')['acc@1'] == 1.0
    assert retrieval_metrics(query, np.array([1]), database, y_db, 'cosine')['acc@1'] == 0.0


def _reference_retrieval(query, y_query, database, y_db, similarity):
    """Patho-Bench's definitions written plainly: per query, sort (score, position)
    pairs; Acc@K any hit in the top K; MVAcc@K the label among the most common."""
    from collections import Counter
    out = {c: [] for c in ('acc@1', 'acc@3', 'acc@5', 'mvacc@3', 'mvacc@5')}
    for q, y in zip(query, y_query):
        scores = []
        for i, d in enumerate(database):
            if similarity == 'l2':
                s = float(np.sqrt(sum((a - b) ** 2 for a, b in zip(q, d))))
            else:
                s = -float(np.dot(q, d) / (np.linalg.norm(q) * np.linalg.norm(d)))
            scores.append((s, i))
        labels = [y_db[i] for _, i in sorted(scores)]
        for k in (1, 3, 5):
            out[f'acc@{k}'].append(float(y in labels[:k]))
        for k in (3, 5):
            counts = Counter(labels[:k])
            out[f'mvacc@{k}'].append(float(counts[y] == max(counts.values())))
    return {c: float(np.mean(v)) for c, v in out.items()}


@pytest.mark.parametrize('similarity', ['l2', 'cosine'])
def test_retrieval_matches_a_plain_reference_with_ties(similarity):
    rng = np.random.default_rng(3)
    database = np.round(rng.normal(size=(12, 3)), 1)
    database[6:9] = database[0:3]  # duplicate rows: tied distances
    y_db = rng.integers(0, 3, 12)
    query = np.concatenate([database[:4] + 0.01, np.round(rng.normal(size=(20, 3)), 1)])
    y_query = rng.integers(0, 3, len(query))
    got = retrieval_metrics(query, y_query, database, y_db, similarity)
    expected = _reference_retrieval(query, y_query, database, y_db, similarity)
    assert got == pytest.approx(expected)


def test_simpleshot_is_nearest_normalised_class_mean():
    support = np.array([[1.0, 0], [0.8, 0.6], [0, 1.0], [-0.6, 0.8]])
    y = np.array([0, 0, 1, 1])
    query = np.array([[0.9, 0.1], [-0.5, 0.9]])
    proba = simpleshot_proba(support, y, query, 2)
    means = np.array([[0.9, 0.3], [-0.3, 0.9]])
    dist = np.linalg.norm(query[:, None] - means[None], axis=2)
    assert proba.argmax(1).tolist() == dist.argmin(1).tolist() == [0, 1]
    assert proba == pytest.approx(np.exp(-dist) / np.exp(-dist).sum(1, keepdims=True))


def _fewshot_data(num=60, dim=5):
    rng = np.random.default_rng(0)
    ids = [f'S{i:03d}' for i in range(num)]
    labels = {s: i % 2 for i, s in enumerate(ids)}
    feats = rng.normal(size=(num, dim)) + 2.0 * np.array([labels[s] for s in ids])[:, None]
    emb = SlideEmbeddings(ids, feats, [1] * num)
    splits = [Split(k, ids[:40], [], ids[40:]) if k == 0 else Split(k, ids[20:], [], ids[:20])
              for k in range(2)]
    return emb, labels, splits


def test_fewshot_draw_counts_and_skips_too_large_k():
    emb, labels, splits = _fewshot_data()
    with pytest.warns(UserWarning, match='k=32 skipped'):
        result = evaluate_fewshot(emb, labels, splits, 2, shots=(1, 4, 32), num_draws=7)
    assert [(c.fold, c.k) for c in result.cells] == [(0, 1), (0, 4), (1, 1), (1, 4)]
    for cell in result.cells:
        for model in ('simpleshot', 'linear'):
            assert cell.scores[model]['bacc'].shape == (7,)
            s = cell.stats(model, 'bacc')
            assert s['lo'] - 1e-12 <= s['mean'] <= s['hi'] + 1e-12
    y = np.array([0, 1] * 20)
    idx = draw_support(y, 4, 2, np.random.default_rng(0))
    assert len(set(idx.tolist())) == 8 and np.bincount(y[idx]).tolist() == [4, 4]
    again = evaluate_fewshot(emb, labels, splits, 2, shots=(1, 4), num_draws=7)
    assert np.array_equal(again.cells[0].scores['linear']['auc'],
                          result.cells[0].scores['linear']['auc'])
    assert result.curve('simpleshot', 'bacc')[4][0] > 0.7  # separable classes


@pytest.mark.parametrize('linear', [None, 'pathobench', 'cl2n'])
def test_fewshot_linear_probe_presets_match_sklearn_fit_here(linear):
    """None is the default: Patho-Bench's probe (C=0.5, balanced class weights, raw
    embeddings); 'cl2n' is C=1 without weights on centred, normalised embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    emb, labels, splits = _fewshot_data()
    kwargs = {} if linear is None else {'linear': linear}
    result = evaluate_fewshot(emb, labels, splits, 2, shots=(2,), num_draws=3, seed=5,
                              **kwargs)
    settings = dict(C=1.0, class_weight=None) if linear == 'cl2n' else \
        dict(C=0.5, class_weight='balanced')
    for split, cell in zip(splits, result.cells, strict=True):
        x_tr, x_te = emb.take(split.train), emb.take(split.test)
        y_tr = np.array([labels[s] for s in split.train])
        y_te = np.array([labels[s] for s in split.test])
        if linear == 'cl2n':
            mean = x_tr.mean(0)
            x_tr, x_te = ((x - mean) / np.linalg.norm(x - mean, axis=1, keepdims=True)
                          for x in (x_tr, x_te))
        for r in range(3):
            idx = draw_support(y_tr, 2, 2, np.random.default_rng([5, split.fold, 2, r]))
            model = LogisticRegression(max_iter=1000, **settings).fit(x_tr[idx], y_tr[idx])
            proba = model.predict_proba(x_te)
            assert cell.scores['linear']['bacc'][r] == pytest.approx(
                balanced_accuracy_score(y_te, proba.argmax(1)))
            assert cell.scores['linear']['auc'][r] == pytest.approx(
                roc_auc_score(y_te, proba[:, 1]))


def test_bootstrap_ci_contains_point_and_is_reproducible():
    rng = np.random.default_rng(1)
    folds = []
    for _ in range(3):
        y = rng.integers(0, 2, 40)
        p1 = np.clip(0.3 * y + 0.7 * rng.random(40), 0, 1)
        folds.append((y, np.stack([1 - p1, p1], 1)))
    a = bootstrap_ci(metric_auc, folds, 300, seed=5)
    b = bootstrap_ci(metric_auc, folds, 300, seed=5)
    c = bootstrap_ci(metric_auc, folds, 300, seed=6)
    assert a.lo <= a.point <= a.hi and a == b and (a.lo, a.hi) != (c.lo, c.hi)
    assert a.point == pytest.approx(np.mean([roc_auc_score(y, p[:, 1]) for y, p in folds]))
    same = paired_bootstrap(metric_auc, folds, folds, 100)
    assert (same.point, same.lo, same.hi) == (0.0, 0.0, 0.0)
    assert 'no claim' in verdict(same, 'A', 'B')
    worse = [(y, p[:, ::-1].copy()) for y, p in folds]
    diff = paired_bootstrap(metric_auc, folds, worse, 300)
    assert diff.hi < 0 and 'A is better' in verdict(diff, 'A', 'B')


def test_trident_files_round_trip_into_eval(tmp_path):
    rng = np.random.default_rng(0)
    writer = TridentWriter(tmp_path / 'job', 'slpd_teacher')
    feats = {f'TCGA-{i}': rng.normal(size=(i + 2, 6)).astype(np.float32) for i in range(3)}
    for sid, x in feats.items():
        coords = np.stack([np.arange(len(x)) * 8192, np.zeros(len(x), int)], 1)
        writer.write(sid, x, coords)
    with h5py.File(tmp_path / 'job/features_slpd_teacher/TCGA-2.h5', 'r') as fh:
        assert fh['features'].shape == (4, 6) and fh['coords'].dtype == np.int64
        assert fh['coords'].attrs['patch_size_level0'] == 8192
        assert fh['features'].attrs['encoder'] == 'slpd_teacher'
    with h5py.File(tmp_path / 'job/slide_features_slpd_teacher/TCGA-1.h5', 'r') as fh:
        assert fh['features'].shape == (1, 6)  # one row, as TRIDENT's slide encoders write
    slide = load_slide_embeddings(tmp_path / 'job/slide_features_slpd_teacher')
    region = load_slide_embeddings(tmp_path / 'job/features_slpd_teacher')
    want = np.stack([feats[s].mean(0) for s in sorted(feats)])
    assert slide.ids == sorted(feats) and slide.features == pytest.approx(want, abs=1e-6)
    assert region.features == pytest.approx(want, abs=1e-6)
    pt_dir = tmp_path / 'pt'
    pt_dir.mkdir()
    for sid, x in feats.items():  # per-slide .pt holding a (D,) slide vector
        torch.save(torch.from_numpy(x.mean(0)), pt_dir / f'{sid}.pt')
    assert load_slide_embeddings(pt_dir).features == pytest.approx(want, abs=1e-6)


def test_cli_fewshot_and_retrieval_write_summaries(tmp_path):
    emb, labels, splits = _fewshot_data()
    folder = tmp_path / 'emb'
    folder.mkdir()
    for sid, x in zip(emb.ids, emb.features):
        with h5py.File(folder / f'{sid}.h5', 'w') as fh:
            fh['features'] = x.astype(np.float32)
    with (tmp_path / 'labels.csv').open('w', newline='') as fh:
        w = csv.writer(fh)
        w.writerow(['', 'case_id', 'slide_id', 'label'])
        for i, s in enumerate(emb.ids):
            w.writerow([i, s, f'{s}.svs', 'AB'[labels[s]]])
    split_dir = tmp_path / 'splits'
    split_dir.mkdir()
    for sp in splits:
        with (split_dir / f'splits_{sp.fold}.csv').open('w', newline='') as fh:
            w = csv.writer(fh)
            w.writerow(['', 'train', 'val', 'test'])
            for i, s in enumerate(sp.train):
                w.writerow([i, s, '', sp.test[i] if i < len(sp.test) else ''])
    cli = load_tool('eval_slides')
    common = ['--embeddings', f'mine={folder}', '--csv', str(tmp_path / 'labels.csv'),
              '--splits', str(split_dir), '--label-col', 'label']
    assert cli.main(['retrieval', *common, '--out', str(tmp_path / 'r')]) == 0
    with (tmp_path / 'r/summary.csv').open(newline='') as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ['folds', 'acc@1', 'acc@3', 'acc@5', 'mvacc@3', 'mvacc@5']  # no index
    assert len(rows) == 3
    assert cli.main(['retrieval', *common, '--out', str(tmp_path / 'rc'),
                     '--similarity', 'cosine']) == 0
    read = load_slide_embeddings(folder)
    for out, similarity in (('r', 'l2'), ('rc', 'cosine')):
        result = json.loads((tmp_path / out / 'results.json').read_text())
        assert result['similarity'] == similarity
        expected = evaluate_retrieval(read, labels, splits, similarity)
        for got, want in zip(result['folds'], expected, strict=True):
            assert {c: got[c] for c in RETRIEVAL_COLUMNS} == pytest.approx(want.metrics)
    assert cli.main(['fewshot', *common, '--out', str(tmp_path / 'f'), '--shots', '1', '2',
                     '--draws', '5']) == 0
    with (tmp_path / 'f/summary.csv').open(newline='') as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:2] == ['folds', 'k'] and 'simpleshot_bacc_mean' in rows[0]  # no index
    assert [(r[0], r[1]) for r in rows[1:]] == [('0', '1'), ('0', '2'), ('1', '1'), ('1', '2')]
    assert (tmp_path / 'f/fewshot.png').read_bytes()[:4] == b'\x89PNG'
