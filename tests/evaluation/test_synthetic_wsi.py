"""The synthetic WSI benchmark: HIPT-format files, composition-dependent labels, layout."""
from __future__ import annotations

import hashlib
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from slpd_plugin.datasets import StoreError, open_store
from slpd_plugin.datasets.labels import load_labels
from slpd_plugin.demo.references import write_reference_embeddings
from slpd_plugin.demo.synthetic_wsi import (
    CLASS_CODES,
    REGION_PX,
    class_priors,
    ensure_wsi_benchmark,
    make_wsi_benchmark,
)
from slpd_plugin.demo.tcga_region_counts import BRCA_REGION_COUNTS
from slpd_plugin.evaluation import evaluate_splits, load_slide_embeddings, load_splits
from tests.warm import python_exe

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(num_slides=120, channels=8, region_scale=0.2, num_folds=10, val_frac=0.1,
             test_frac=0.2, progress=False)


@pytest.fixture(scope='module')
def bench(tmp_path_factory) -> Path:
    return make_wsi_benchmark(tmp_path_factory.mktemp('wsi') / 'bench', **SMALL)


def _knn_fold_aucs(bench: Path, emb_dir: Path) -> np.ndarray:
    table = load_labels(bench / 'labels.csv')
    splits = load_splits(bench / 'splits')
    emb = load_slide_embeddings(emb_dir)
    result = evaluate_splits('knn', emb, table.labels, splits, table.num_classes,
                             table.class_names, 1.0)
    return np.array([f.test_auc for f in result.folds])


def test_labels_and_splits_parse_like_hipt_files(bench):
    table = load_labels(bench / 'labels.csv')  # default column oncotree_code, as HIPT
    assert table.class_names == list(CLASS_CODES)
    assert table.class_counts() == {'SYN_A': 60, 'SYN_B': 60}
    store = open_store(bench / 'store')
    assert sorted(table.labels) == sorted(store.slide_ids)  # '.svs' removed on reading
    splits = load_splits(bench / 'splits')
    assert [s.fold for s in splits] == list(range(10))
    for split in splits:
        assert split.all_ids() == set(store.slide_ids)
        for part, expected in (('test', 24), ('val', 12), ('train', 84)):
            ids = split.part(part)
            assert len(ids) == expected
            assert {table.labels[i] for i in ids} == {0, 1}  # stratified


def test_labels_depend_on_composition_not_on_noise(bench, tmp_path):
    """knn on the true phenotype histograms beats knn on pure noise by a wide margin."""
    oracle = _knn_fold_aucs(bench, write_reference_embeddings(bench, 'composition',
                                                              tmp_path / 'comp'))
    noise = _knn_fold_aucs(bench, write_reference_embeddings(bench, 'noise',
                                                             tmp_path / 'noise'))
    diff = oracle.mean() - noise.mean()
    stderr = math.sqrt(oracle.var(ddof=1) / len(oracle) + noise.var(ddof=1) / len(noise))
    assert diff > 4 * stderr, (oracle, noise)


def test_composition_priors_and_truth(bench):
    truth = np.load(bench / 'ground_truth.npz')
    alpha = class_priors(8, 2, 0.5, 3.0)
    np.testing.assert_allclose(truth['class_alpha'], alpha)
    assert (alpha[0, [0, 2]] > alpha[1, [0, 2]]).all()
    assert (alpha[1, [1, 3]] > alpha[0, [1, 3]]).all()
    comp, labels = truth['slide_composition'], truth['slide_label']
    np.testing.assert_allclose(comp.sum(axis=1), 1.0)
    enriched_a = comp[:, [0, 2]].sum(axis=1) - comp[:, [1, 3]].sum(axis=1)
    assert enriched_a[labels == 0].mean() > enriched_a[labels == 1].mean()
    means = truth['phenotype_means']
    np.testing.assert_array_equal(means[0], means[1])  # texture twins
    assert not np.allclose(means[2], means[3])


def test_slide_sizes_layout_and_sites(bench):
    store = open_store(bench / 'store')
    counts = np.array([r.count for r in store.slides])
    allowed = {max(4, round(c * 0.2)) for c in BRCA_REGION_COUNTS}
    assert set(counts.tolist()) <= allowed
    coords = store.coords()
    assert coords is not None and (coords % REGION_PX == 0).all()
    truth = np.load(bench / 'ground_truth.npz')
    assert len(truth['region_phenotype']) == store.num_regions
    for rec in store.slides:
        xy = coords[rec.offset:rec.offset + rec.count]
        assert len({tuple(p) for p in xy}) == rec.count  # one region per tile
        order = np.lexsort((xy[:, 0], xy[:, 1]))
        np.testing.assert_array_equal(order, np.arange(rec.count))  # row-major
    assert len(np.unique(truth['slide_site'])) > 1


def test_same_arguments_same_bytes_and_ensure_checks_settings(tmp_path):
    args = dict(num_slides=12, channels=4, region_scale=0.1, num_folds=2, val_frac=0.2,
                test_frac=0.2, progress=False)
    a = make_wsi_benchmark(tmp_path / 'a', **args)
    b = ensure_wsi_benchmark(tmp_path / 'b', **args)
    for name in ('store/grids.bin', 'store/coords.bin', 'labels.csv', 'splits/splits_1.csv'):
        assert (hashlib.sha256((a / name).read_bytes()).hexdigest()
                == hashlib.sha256((b / name).read_bytes()).hexdigest())
    assert ensure_wsi_benchmark(tmp_path / 'b', **args) == b  # reused
    with pytest.raises(StoreError, match='other settings'):
        ensure_wsi_benchmark(tmp_path / 'b', **dict(args, seed=1))


@pytest.mark.parametrize('bad, match', [
    (dict(texture_twins=3), 'texture_twins'),
    (dict(num_slides=6, test_frac=0.5), 'too few'),
    (dict(dtype='int8'), 'dtype'),
])
def test_bad_arguments_fail_before_writing(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        make_wsi_benchmark(tmp_path / 'x', **dict(dict(num_slides=12, channels=4,
                                                       progress=False), **bad))
    assert not (tmp_path / 'x').exists()


def test_make_synthetic_cli(tmp_path):
    script = str(REPO_ROOT / 'tools' / 'make_synthetic.py')
    done = subprocess.run([python_exe(), script, 'benchmark', str(tmp_path / 'b'),
                           '--num-slides', '12', '--channels', '4', '--region-scale', '0.1',
                           '--num-folds', '2', '--val-frac', '0.2', '--test-frac', '0.2',
                           '--no-progress'], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'b' / 'splits' / 'splits_1.csv').is_file()
    again = subprocess.run([python_exe(), script, 'store', str(tmp_path / 'b')],
                           capture_output=True, text=True)
    assert again.returncode == 2 and 'exists' in again.stderr
