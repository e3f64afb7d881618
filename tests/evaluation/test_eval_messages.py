"""eval_slides.py's errors name the flag that fixes them, expected numpy warnings stay
silent, long protocols show progress, and a reader that stops early (``| true``) ends
a tool quietly."""
from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from slpd_plugin.demo.synthetic import make_synthetic_store
from slpd_plugin.evaluation.protocols.survival import SurvivalFold, SurvivalResult
from slpd_plugin.evaluation.stats.survival_metrics import c_index
from tests.utils import ROOT, load_tool


def _embeddings(folder, ids, dim=4, seed=0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for s in ids:
        torch.save(torch.from_numpy(rng.standard_normal((3, dim)).astype(np.float32)),
                   folder / f'{s}.pt')


def _columns_csv(path, header, rows):
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_survival_names_inner_folds(tmp_path, capsys):
    cases = [f'c{i}' for i in range(6)]
    _embeddings(tmp_path / 'emb', [f'{c}-s' for c in cases])
    # train: one event among three cases, so no inner fold can hold a comparable pair
    outcomes = {'c0': (5, 0), 'c1': (9, 1), 'c2': (12, 0), 'c3': (3, 0), 'c4': (7, 1),
                'c5': (20, 1)}
    _columns_csv(tmp_path / 'surv.csv', ['case_id', 'slide_id', 'survival_months',
                                         'censorship'],
                 [[c, f'{c}-s.svs', t, 1 - e] for c, (t, e) in outcomes.items()])
    (tmp_path / 'splits').mkdir()
    _columns_csv(tmp_path / 'splits' / 'splits_0.csv', ['', 'train', 'val'],
                 [[i, cases[i], cases[3 + i]] for i in range(3)])
    args = ['survival', '--embeddings', str(tmp_path / 'emb'), '--csv',
            str(tmp_path / 'surv.csv'), '--splits', str(tmp_path / 'splits'), '--out',
            str(tmp_path / 'out'), '--bootstrap', '10', '--no-progress']
    tool = load_tool('eval_slides')
    assert tool.main(args) == 1
    err = capsys.readouterr().err
    assert ('split 0: 3 training cases, fewer than the 5 inner folds choosing the Cox '
            'penalty: lower --inner-folds') in err and 'n_splits' not in err
    assert tool.main([*args, '--inner-folds', '2']) == 1
    err = capsys.readouterr().err
    assert 'none of the 2 inner folds choosing the Cox penalty could be scored' in err
    assert '(3 training cases, 1 events' in err and '--inner-folds' in err


def test_survival_refuses_a_c_index_undefined_on_every_split():
    fold = SurvivalFold(0, 10, 2, math.nan)
    with pytest.raises(ValueError, match=r'undefined on all 2 splits .*make fewer, larger '
                       r'folds \(tools/make_splits.py --folds\)'):
        SurvivalResult('cox', [fold, fold]).check_scored()
    SurvivalResult('cox', [fold, SurvivalFold(1, 10, 2, 0.6)]).check_scored()  # one: fine


def test_c_index_without_a_comparable_pair_is_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert math.isnan(c_index(np.array([1.0, 1.0]), np.array([True, True]),
                                  np.array([0.1, 0.2])))
        assert math.isnan(c_index(np.array([2.0, 1.0]), np.array([True, False]),
                                  np.array([0.1, 0.2])))


def _classification(tmp_path, val=True):
    ids = [f's{i}' for i in range(12)]
    _embeddings(tmp_path / 'emb', ids)
    _columns_csv(tmp_path / 'labels.csv', ['slide_id', 'oncotree_code'],
                 [[s, 'AB'[i % 2]] for i, s in enumerate(ids)])
    (tmp_path / 'splits').mkdir()
    parts = (ids[:6], ids[6:8] if val else [], ids[8:])
    rows = [[i, *(p[i] if i < len(p) else '' for p in parts)] for i in range(6)]
    for k in range(2):
        _columns_csv(tmp_path / 'splits' / f'splits_{k}.csv', ['', 'train', 'val', 'test'],
                     rows)
    return ['--embeddings', str(tmp_path / 'emb'), '--csv', str(tmp_path / 'labels.csv'),
            '--splits', str(tmp_path / 'splits'), '--out', str(tmp_path / 'out'),
            '--bootstrap', '0', '--roc', 'none']


def test_linear_probe_without_val_names_C(tmp_path, capsys):
    assert load_tool('eval_slides').main(['linear', *_classification(tmp_path, val=False)]) == 1
    err = capsys.readouterr().err
    assert 'give a fixed C with --C' in err and err.count('\n') == 1


def test_mil_shows_splits_times_epochs(tmp_path, capsys):
    args = ['mil', *_classification(tmp_path), '--epochs', '3']
    assert load_tool('eval_slides').main(args) == 0
    err = capsys.readouterr().err
    assert 'mil:' in err and '6/6' in err  # 2 splits x 3 epochs
    assert load_tool('eval_slides').main([*args, '--no-progress']) == 0
    assert 'mil:' not in capsys.readouterr().err


def test_a_closed_pipe_ends_a_tool_quietly(tmp_path):
    store = make_synthetic_store(tmp_path / 'store', num_slides=30, min_regions=2,
                                 max_regions=3, channels=4, num_phenotypes=2,
                                 phenotypes_per_slide=(1, 1), progress=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(['bash', '-c', f'set -o pipefail; "{sys.executable}" '
                           f'tools/inspect_store.py {store} --all | true'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'Traceback' not in proc.stderr and 'BrokenPipe' not in proc.stderr
