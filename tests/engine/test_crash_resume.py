"""Kill a real training process at different points; resume must repeat the same run,
with or without DataLoader workers."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.utils import ROOT, logged_scalars, run_train

pytestmark = pytest.mark.slow
CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'
OPTIONS = ('train_cfg.max_epochs=3',)
LOSSES = ('loss_dino', 'loss_intra', 'loss_inter')


def losses_by_iter(work):
    return {r['iter']: r for r in logged_scalars(work) if 'loss_dino' in r}


def start(work, store):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.Popen(
        [sys.executable, 'tools/train.py', str(CONFIG), '--work-dir', str(work),
         '--cfg-options', f'train_dataloader.dataset.store={store}', *OPTIONS],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, proc, timeout=300):  # start-up alone can take a minute on a busy host
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
            for key in LOSSES:
                if key in expected[it]:
                    assert row[key] == pytest.approx(expected[it][key], rel=1e-5), (it, key)
                    checked += 1
    assert checked >= 2 * per_epoch


@pytest.mark.parametrize('workers,persistent', [(0, False), (2, False), (2, True)])
def test_resume_with_loader_workers_repeats_the_uninterrupted_run_exactly(
        reference, tmp_path, workers, persistent):
    """A new loader iterator must not move the global generator (it did: persistent
    workers draw their base seed once per run, so a resumed run was one draw ahead)."""
    root, expected_0 = reference
    loader = (f'train_dataloader.dataset.store={root / "store"}',
              f'train_dataloader.num_workers={workers}',
              f'train_dataloader.persistent_workers={persistent}', *OPTIONS)
    if workers:
        run_train(tmp_path / 'full', *loader, config=CONFIG)
        expected = losses_by_iter(tmp_path / 'full')
        full_dir = tmp_path / 'full'
    else:
        expected, full_dir = expected_0, root / 'ref'
    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    shutil.copy(full_dir / 'epoch_1.pth', resumed_dir)
    run_train(resumed_dir, *loader, config=CONFIG,
              extra_args=('--resume', str(resumed_dir / 'epoch_1.pth')))
    resumed = losses_by_iter(resumed_dir)
    per_epoch = len(expected) // 3
    assert sorted(resumed) == [it for it in sorted(expected) if it > per_epoch]
    for it, row in resumed.items():
        assert {k: row.get(k) for k in LOSSES} == {k: expected[it].get(k) for k in LOSSES}, it
    # and the workers do not change the run at all
    assert {it: {k: r.get(k) for k in LOSSES} for it, r in expected.items()} == \
        {it: {k: r.get(k) for k in LOSSES} for it, r in expected_0.items()}
