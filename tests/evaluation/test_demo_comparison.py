"""The demo's comparison logic in-process: paired differences on planted numbers (against
scipy's t-test), the report and its JSON, the method table, and the random-init
checkpoint against the weights a real training run starts from."""
from __future__ import annotations

import copy
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from scipy.stats import ttest_1samp

from slpd_plugin.checkpoints import load_encoder
from slpd_plugin.cli.run_demo import main as run_demo_main
from slpd_plugin.cli.run_demo import resolve_methods
from slpd_plugin.demo import make_synthetic_store
from slpd_plugin.demo.methods import (
    ABMIL_PROTOCOL,
    ABMIL_ROW,
    METHODS,
    RAW_MEAN_ROW,
    SLIDE_ROUTES,
    Method,
    SlideRoute,
    planned_pairs,
    random_init_row,
)
from slpd_plugin.demo.paired import MIN_SEEDS, paired_difference
from slpd_plugin.demo.random_init import build_initial_model, save_random_init
from slpd_plugin.demo.report import format_cell, write_report
from slpd_plugin.demo.steps import DemoError, check_routes
from slpd_plugin.engine.launch import prepare_config
from slpd_plugin.utils.cli import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)


def _planted(shift: float, seeds: int = 3, splits: int = 4) -> tuple[list, list]:
    base = RNG.uniform(0.6, 0.8, (seeds, splits))
    other = base + shift + RNG.normal(0, 0.01, (seeds, splits))
    return base.tolist(), other.tolist()


def _reference_interval(base: list, other: list) -> tuple[float, float, float]:
    """Per-seed means of the defined split differences, then scipy's t-interval."""
    means = []
    for b_seed, o_seed in zip(base, other):
        d = [o - b for o, b in zip(o_seed, b_seed) if not (math.isnan(o) or math.isnan(b))]
        means.append(sum(d) / len(d))
    ci = ttest_1samp(means, 0.0).confidence_interval(0.95)
    return sum(means) / len(means), ci.low, ci.high


def test_paired_difference_matches_scipy_and_claims_a_planted_gain():
    base, other = _planted(0.05)
    other[1][2] = math.nan  # an undefined split AUC drops that pair only
    diff = paired_difference(base, other, 'A', 'B', 'linear')
    mean, lo, hi = _reference_interval(base, other)
    assert diff.mean == pytest.approx(mean) and diff.lo == pytest.approx(lo)
    assert diff.hi == pytest.approx(hi)
    assert diff.claim and diff.verdict == 'B higher'
    assert math.isnan(diff.diffs[1][2])
    assert diff.diffs[0][0] == pytest.approx(other[0][0] - base[0][0])


def test_paired_difference_makes_no_claim_when_the_interval_covers_zero_or_seeds_are_few():
    base, other = _planted(0.0)
    other[0] = [b + 0.03 for b in base[0]]
    other[1] = [b - 0.03 for b in base[1]]
    diff = paired_difference(base, other, 'A', 'B', 'knn')
    _, lo, hi = _reference_interval(base, other)
    assert lo < 0 < hi and not diff.claim and 'no claim' in diff.verdict
    two_base, two_other = _planted(0.2, seeds=MIN_SEEDS - 1)
    few = paired_difference(two_base, two_other, 'A', 'B', 'knn')
    assert few.lo > 0 and not few.claim and 'no claim' in few.verdict


def test_one_seed_interval_is_over_splits_and_a_reference_row_pairs_with_every_seed():
    base, other = _planted(0.1, seeds=1, splits=5)
    one = paired_difference(base, other, 'A', 'B', 'knn')
    ci = ttest_1samp(np.subtract(other[0], base[0]), 0.0).confidence_interval(0.95)
    assert (one.lo, one.hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert not one.claim  # one seed: never a claim
    _, other3 = _planted(0.1, seeds=3, splits=5)
    broadcast = paired_difference(base, other3, 'ref', 'B', 'knn')
    explicit = paired_difference(base * 3, other3, 'ref', 'B', 'knn')
    assert broadcast.as_dict() == explicit.as_dict()
    with pytest.raises(ValueError, match='seeds'):
        paired_difference(base * 2, other3, 'A', 'B', 'knn')


def test_format_cell_is_mean_and_std_over_seeds_and_splits():
    per_seed = [[0.7, 0.8, 0.9], [0.6, 0.8, math.nan]]
    values = [0.7, 0.8, 0.9, 0.6, 0.8]
    seed_means = [statistics.mean(per_seed[0]), statistics.mean([0.6, 0.8])]
    cell = format_cell(per_seed)
    assert cell.startswith(f'{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}')
    assert f'seed means ± {statistics.stdev(seed_means):.3f}' in cell
    assert format_cell(per_seed[:1]).endswith('(3 splits)')


def test_report_and_json_hold_every_split_auc_and_every_difference(tmp_path):
    base, other = _planted(0.05)
    _, flat = _planted(0.0)
    results = {'knn': {'DINO-4K': base, 'SLPD': other, 'SLPD (random init)': flat}}
    pairs = [paired_difference(base, other, 'DINO-4K', 'SLPD', 'knn'),
             paired_difference(flat, other, 'SLPD (random init)', 'SLPD', 'knn'),
             paired_difference(base, flat, 'DINO-4K', 'SLPD (random init)', 'knn')]
    path = write_report(tmp_path, title='DINO-4K vs SLPD', setup=['- planted'],
                        results=results, comparisons=pairs, figures={}, prototype_map=None,
                        timings={'x': 1.0})
    report = path.read_text()
    assert '| knn | SLPD − DINO-4K |' in report and '| SLPD (random init) |' in report
    rows = [line for line in report.splitlines() if line.startswith('| knn |')]
    assert len(rows) == 3
    for row, pair in zip(rows, pairs):
        assert ('no claim' in row) == (not pair.claim)
    saved = json.loads((tmp_path / 'demo_results.json').read_text())
    np.testing.assert_allclose(saved['test_auc_per_seed_per_fold']['knn']['SLPD'], other)
    first = saved['paired_differences'][0]
    np.testing.assert_allclose(first['diffs'], np.subtract(other, base))
    assert first['claim'] == pairs[0].claim


def test_method_table_pairs_and_routes(monkeypatch):
    pairs = planned_pairs(['DINO-4K', 'SLPD'], baselines=False)
    assert pairs == [('DINO-4K', 'SLPD', None)]
    monkeypatch.setitem(METHODS, 'SLPD+X', Method('a.py', 'b.py', base='SLPD'))
    pairs = planned_pairs(list(METHODS), baselines=True)
    for expected in [('DINO-4K', 'SLPD+X', None), ('SLPD', 'SLPD+X', None),
                     (random_init_row('SLPD+X'), 'SLPD+X', None),
                     (RAW_MEAN_ROW, 'DINO-4K', None), (ABMIL_ROW, 'SLPD', ABMIL_PROTOCOL)]:
        assert expected in pairs
    assert resolve_methods(['all'], False) == list(METHODS)
    assert resolve_methods(['SLPD+X', 'DINO-4K'], False) == ['DINO-4K', 'SLPD+X']
    with pytest.raises(UsageError, match='--methods'):
        resolve_methods(['nope'], True)
    check_routes(list(METHODS))  # every route of the table exists in this checkout
    monkeypatch.setitem(SLIDE_ROUTES, 'later', SlideRoute('not written yet', None))
    monkeypatch.setitem(METHODS, 'later', Method('a.py', 'b.py', slide='later'))
    with pytest.raises(DemoError, match="method later: slide route 'later'"):
        check_routes(['DINO-4K', 'later'])


class _Stop(Exception):
    pass


class _CaptureStart(Hook):
    """Keeps the teacher backbone's weights at ``before_train``, then stops the run."""

    def before_train(self, runner) -> None:
        self.state = copy.deepcopy(runner.model.teacher.backbone.state_dict())
        raise _Stop


def _runner_start(config: Path, store: Path, seed: int, work: Path) -> dict:
    """The teacher weights a real training run with ``seed`` starts from."""
    cfg = prepare_config(str(config), work_dir=str(work), cfg_options={
        'train_dataloader.dataset.store': str(store), 'randomness.seed': seed})
    runner = Runner.from_cfg(cfg)
    hook = _CaptureStart()
    runner.register_hook(hook)
    with pytest.raises(_Stop):
        runner.train()
    return hook.state


def test_random_init_checkpoint_is_the_untrained_start_of_a_training_run(tmp_path):
    store = make_synthetic_store(tmp_path / 'store', num_slides=3, min_regions=2,
                                 max_regions=3, channels=12, progress=False)
    config = REPO_ROOT / 'configs' / 'demo_quick_slpd.py'
    saved, ckpt = save_random_init(config, 3, tmp_path / 'init',
                                   {'train_dataloader.dataset.store': str(store)})
    teacher = load_encoder(saved, ckpt).teacher.backbone.state_dict()
    start = _runner_start(config, store, 3, tmp_path / 'run3')
    assert teacher.keys() == start.keys()
    for name, value in start.items():
        torch.testing.assert_close(teacher[name], value, rtol=0, atol=0, msg=name)
    other_seed, _ = build_initial_model(config, 4, {'train_dataloader.dataset.store': str(store)},
                                        tmp_path / 'init4')
    other = other_seed.teacher.backbone.state_dict()
    assert any(not torch.equal(teacher[k], other[k]) for k in teacher)
    assert torch.load(ckpt, weights_only=True)['meta']['untrained'] is True


def test_run_demo_refuses_an_unknown_method_in_one_line(tmp_path, capsys):
    assert run_demo_main(['--methods', 'DINO-4K', 'nope', '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--methods' in err[0] and 'nope' in err[0]
    assert not (tmp_path / 'benchmark').exists()
