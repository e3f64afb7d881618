"""Kill a real training process at different points; resume must repeat the same run."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.utils import ROOT, logged_scalars, run_train

pytestmark = pytest.mark.slow
CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'
OPTIONS = ('train_cfg.max_epochs=3',)


def losses_by_iter(work):
    return {r['iter']: r for r in logged_scalars(work) if 'loss_dino' in r}


def start(work, store):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.Popen(
        [sys.executable, 'tools/train.py', str(CONFIG), '--work-dir', str(work),
         '--cfg-options', f'train_dataloader.dataset.store={store}', *OPTIONS],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, proc, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, 'training ended before the kill point'
        assert time.time() < deadline, 'kill point never reached'
        time.sleep(0.05)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp('crash')
    run_train(root / 'ref', f'train_dataloader.dataset.store={root / "store"}', *OPTIONS,
              config=CONFIG)
    return root, losses_by_iter(root / 'ref')


@pytest.mark.parametrize('kill_point', ['first checkpoint written (prototype refresh)',
                                        'mid epoch 3'])
def test_killed_run_resumes_and_repeats_the_uninterrupted_losses(reference, tmp_path,
                                                                 kill_point):
    root, expected = reference
    per_epoch = len(expected) // 3
    work = tmp_path / 'work'
    proc = start(work, root / 'store')
    if kill_point.startswith('first'):
        wait_for(lambda: (work / 'epoch_1.pth').exists(), proc)
    else:
        def past_mid_epoch_3():
            try:
                return max(losses_by_iter(work), default=0) >= 2 * per_epoch + 2
            except (AssertionError, ValueError):
                return False
        wait_for(past_mid_epoch_3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    run_train(work, f'train_dataloader.dataset.store={root / "store"}', *OPTIONS,
              config=CONFIG, extra_args=('--resume',))
    resumed = losses_by_iter(work)
    assert max(resumed) == max(expected)
    checked = 0
    for it, row in resumed.items():
        if it > per_epoch:  # every logged step after the first checkpoint
            for key in ('loss_dino', 'loss_intra', 'loss_inter'):
                if key in expected[it]:
                    assert row[key] == pytest.approx(expected[it][key], rel=1e-5), (it, key)
                    checked += 1
    assert checked >= 2 * per_epoch
