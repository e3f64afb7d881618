"""The real training tool, end to end: single process, resume, and 2-process gloo DDP."""
import json
import math
import re
import shutil

import pytest
from mmengine.config import Config

from tests.utils import TINY_CONFIG, logged_scalars, run_train, shared_run

pytestmark = pytest.mark.slow
SCHEDULES = ('lr', 'wd', 'teacher_momentum', 'teacher_temp')


@pytest.fixture(scope='module')
def baseline_run(tmp_path_factory):
    root = shared_run(tmp_path_factory)
    return root, root / 'work'


def test_trains_logs_schedules_and_checkpoints(baseline_run):
    root, work = baseline_run
    assert (work / 'epoch_1.pth').is_file() and (work / 'epoch_2.pth').is_file()
    rows = [r for r in logged_scalars(work) if 'loss' in r]
    assert rows, 'no training iterations were logged'
    for key in ('loss', 'loss_dino', *SCHEDULES):
        assert all(key in r for r in rows), key
    temps = [r['teacher_temp'] for r in rows]
    assert temps[0] < temps[-1] == pytest.approx(0.04)  # warm-up 0.02 -> 0.04
    cfg = Config.fromfile(TINY_CONFIG)
    # Teacher momentum: a cosine from `momentum` at iteration 0 (logged as iter 1) to
    # exactly `end_momentum` at the last iteration, and not before.
    start, end = (cfg.default_hooks.teacher_ema[k] for k in ('momentum', 'end_momentum'))
    last = max(r['iter'] for r in rows) - 1
    assert [r['iter'] for r in rows] == list(range(1, last + 2))
    for r in rows:
        cosine = (1 + math.cos(math.pi * (r['iter'] - 1) / last)) / 2
        assert r['teacher_momentum'] == pytest.approx(end - (end - start) * cosine, abs=1e-12)
    assert rows[0]['teacher_momentum'] == pytest.approx(start, abs=1e-12)
    assert rows[-1]['teacher_momentum'] == pytest.approx(end, abs=1e-12)
    assert rows[-2]['teacher_momentum'] < end - 1e-7
    wds = [r['wd'] for r in rows]
    assert wds == sorted(wds) and wds[0] >= cfg.optim_wrapper.optimizer.weight_decay
    assert (root / 'store' / 'manifest.json').is_file()  # generated on first use
    log = next(work.glob('*/*.log')).read_text()
    assert 'Failed to search registry' not in log


def test_resume_continues_at_the_right_iteration_with_same_schedules(baseline_run, tmp_path):
    root, work = baseline_run
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(work / 'epoch_1.pth', resumed / 'epoch_1.pth')
    run_train(resumed, f'train_dataloader.dataset.store={root / "store"}',
              extra_args=('--resume', str(resumed / 'epoch_1.pth')))
    full = {r['iter']: r for r in logged_scalars(work) if 'loss' in r}
    after = {r['iter']: r for r in logged_scalars(resumed) if 'loss' in r}
    iters_per_epoch = len(full) // 2
    assert min(after) == iters_per_epoch + 1 and max(after) == max(full)
    for it, row in after.items():
        for key in SCHEDULES:
            assert row[key] == pytest.approx(full[it][key], rel=1e-6), (it, key)
    assert (resumed / 'epoch_2.pth').is_file()


def test_checkpoints_load_weights_only_and_pickled_objects_are_refused(baseline_run, tmp_path):
    import torch
    root, work = baseline_run
    ckpt = torch.load(work / 'epoch_2.pth', weights_only=True)  # no unpickling needed
    assert {'state_dict', 'optimizer', 'message_hub', 'meta'} <= set(ckpt)
    assert not list(work.glob('.*.tmp'))  # atomic writes leave no temporary file
    other = tmp_path / 'other'
    other.mkdir()
    ckpt['meta']['payload'] = Exploit(str(tmp_path / 'exploited'))  # a tampered file
    torch.save(ckpt, other / 'epoch_1.pth')
    proc = run_train(other, f'train_dataloader.dataset.store={root / "store"}',
                     extra_args=('--resume', str(other / 'epoch_1.pth')), check=False)
    assert proc.returncode != 0
    assert 'not loadable weights-only' in proc.stderr
    assert not (tmp_path / 'exploited').exists()


class Exploit:
    """Unpickling this would run code; weights-only loading must refuse it."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os
        return (os.mkdir, (self.target,))


def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path):
    work = tmp_path / 'ddp'
    proc = run_train(work, f'train_dataloader.dataset.store={tmp_path / "store"}', nproc=2)
    assert 'state consistent across ranks' in proc.stdout + proc.stderr
    ranks = [json.loads((work / 'consistency' / f'rank{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0]['epoch'] == ranks[1]['epoch'] == 2
    prints0, prints1 = ranks[0]['fingerprints'], ranks[1]['fingerprints']
    assert prints0 == prints1
    assert any(k.startswith('student.') for k in prints0)
    assert any(k.startswith('teacher.') for k in prints0)
    assert 'loss_module.center' in prints0
    # the teacher moved away from its initial copy of the student: training happened
    assert any(prints0[k] != prints0['teacher.' + k[len('student.'):]]
               for k in prints0 if k.startswith('student.backbone'))


def load_own_checkpoint(path):
    import torch
    return torch.load(path, map_location='cpu', weights_only=True)


def test_cfg_options_change_the_backbone_preset(tmp_path):
    work = tmp_path / 'work'
    run_train(work, f'train_dataloader.dataset.store={tmp_path / "store"}',
              'model.backbone.arch=s', 'train_cfg.max_epochs=1',
              'train_dataloader.dataset.generate.num_slides=2')  # a step or two: shapes only
    state = load_own_checkpoint(work / 'epoch_1.pth')['state_dict']
    assert state['student.backbone.pos_embed'].shape[-1] == 384  # preset 's'
    assert state['student.head.projection.layers.0.weight'].shape[1] == 384


def test_swapped_backbone_trains_slpd_by_config_alone(tmp_path):
    from tests.utils import ROOT
    work = tmp_path / 'work'
    run_train(work, f'train_dataloader.dataset.store={tmp_path / "store"}',
              config=ROOT / 'tests' / 'configs' / 'tiny_slpd_pooled_mlp.py')
    state = load_own_checkpoint(work / 'epoch_2.pth')
    assert state['state_dict']['student.backbone.mlp.2.weight'].shape == (24, 48)
    assert 'prototype_bank' in state
    rows = [r for r in logged_scalars(work) if 'loss_intra' in r]
    assert rows and all(r['loss_intra'] > 0 for r in rows)


def test_non_finite_loss_stops_with_step_terms_and_slides(baseline_run, tmp_path):
    root, _ = baseline_run
    work = tmp_path / 'work'
    proc = run_train(work, f'train_dataloader.dataset.store={root / "store"}',
                     'optim_wrapper.optimizer.lr=1e30', 'optim_wrapper.clip_per_tensor=None',
                     'default_hooks.logger.interval=4', check=False)
    assert proc.returncode != 0
    err = proc.stderr
    found = re.search(r'NonFiniteLossError: non-finite loss at epoch 1, iteration (\d+): '
                      r'.*Training stopped after iteration (\d+);', err)
    assert found, err[-3000:]
    bad, stopped = map(int, found.groups())  # checked at the next logging point
    assert bad <= stopped and stopped % 4 == 0 and stopped - bad < 4
    assert "'loss_dino':" in err and 'synthetic-0' in err  # terms and slide ids
    assert not list(work.glob('*.pth'))  # nothing saved after the bad step
