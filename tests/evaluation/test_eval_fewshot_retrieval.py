"""Few-shot draws, retrieval metrics on a hand-made case, bootstrap intervals, TRIDENT files."""
from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from slpd_plugin.evaluation import SlideEmbeddings, Split, load_slide_embeddings
from slpd_plugin.evaluation.bootstrap import bootstrap_ci, metric_auc, paired_bootstrap, verdict
from slpd_plugin.evaluation.fewshot import draw_support, evaluate_fewshot, simpleshot_proba
from slpd_plugin.evaluation.retrieval import retrieval_metrics
from slpd_plugin.evaluation.trident import TridentWriter
from tests.utils import load_tool


def test_retrieval_hand_made_case():
    # database: angles 0, 10, 20, 90, 100, 110, 180 degrees; labels by hand
    angles = np.deg2rad([0, 10, 20, 90, 100, 110, 180])
    database = np.stack([np.cos(angles), np.sin(angles)], 1) * np.arange(1, 8)[:, None]
    y_db = np.array([0, 1, 1, 0, 0, 2, 2])
    # query at 4 deg: ranking 0(0), 10(1), 20(1), 90(0), 100(0) -> top1 label 0
    # query at 93 deg, label 1: ranking 90(0), 100(0), 110(2), 20(1), 180(2)
    query = np.stack([np.cos(np.deg2rad([4, 93])), np.sin(np.deg2rad([4, 93]))], 1)
    m = retrieval_metrics(query, np.array([1, 1]), database, y_db)
    # q1 (label 1): top1 0 -> miss, top3 hit, majority of (0,1,1,0,0) = 0 -> miss
    # q2 (label 1): top1 miss, top3 (0,0,2) miss, top5 hit, majority 0 -> miss
    assert m == {'acc@1': 0.0, 'acc@3': 0.5, 'acc@5': 1.0, 'mvacc@5': 0.0}
    m = retrieval_metrics(query, np.array([0, 0]), database, y_db)
    assert m == {'acc@1': 1.0, 'acc@3': 1.0, 'acc@5': 1.0, 'mvacc@5': 1.0}


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
    assert rows[0] == ['', 'folds', 'acc@1', 'acc@3', 'acc@5', 'mvacc@5'] and len(rows) == 3
    assert cli.main(['fewshot', *common, '--out', str(tmp_path / 'f'), '--shots', '1', '2',
                     '--draws', '5']) == 0
    with (tmp_path / 'f/summary.csv').open(newline='') as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ['', 'folds', 'k'] and 'simpleshot_bacc_mean' in rows[0]
    assert [(r[1], r[2]) for r in rows[1:]] == [('0', '1'), ('0', '2'), ('1', '1'), ('1', '2')]
    assert (tmp_path / 'f/fewshot.png').read_bytes()[:4] == b'\x89PNG'
