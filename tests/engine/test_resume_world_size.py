"""Resume on another number of processes (1 -> 2 gloo): refused when the schedules
would shift, allowed with the same total batch and epoch length."""
import shutil

import pytest

from tests.utils import logged_scalars, run_train, shared_run

pytestmark = pytest.mark.slow
SCHEDULES = ('lr', 'wd', 'teacher_momentum', 'teacher_temp')


@pytest.fixture(scope='module')
def one_process_run(tmp_path_factory):
    return shared_run(tmp_path_factory)


def resume_on_two(root, tmp_path, batch_size, check):
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(root / 'work' / 'epoch_1.pth', resumed)
    proc = run_train(resumed, f'train_dataloader.dataset.store={root / "store"}',
                     f'train_dataloader.batch_size={batch_size}', nproc=2,
                     extra_args=('--resume', str(resumed / 'epoch_1.pth')), check=check)
    return resumed, proc.stdout + proc.stderr


def test_resume_on_two_processes_with_the_batch_per_process_is_refused(one_process_run,
                                                                       tmp_path):
    resumed, out = resume_on_two(one_process_run, tmp_path, batch_size=8, check=False)
    assert 'RuntimeError: cannot resume: the checkpoint was written by 1 process(es) x ' \
           'batch_size 8 = 8 regions per step' in out
    assert 'this run has 2 process(es) x batch_size 8 = 16 regions per step' in out
    assert 'load_from=<checkpoint> without --resume' in out
    assert not (resumed / 'epoch_2.pth').exists()


def test_resume_on_two_processes_with_the_same_total_batch_keeps_the_schedules(
        one_process_run, tmp_path):
    resumed, out = resume_on_two(one_process_run, tmp_path, batch_size=4, check=True)
    assert 'resumed on 2 process(es), the checkpoint was written by 1' in out
    assert 'RNG states not restored: the checkpoint holds them for 1 rank(s), this run ' \
           'has 2' in out
    full = {r['iter']: r for r in logged_scalars(one_process_run / 'work') if 'loss' in r}
    after = {r['iter']: r for r in logged_scalars(resumed) if 'loss' in r}
    assert sorted(after) == [it for it in sorted(full) if it > len(full) // 2]
    for it, row in after.items():
        for key in SCHEDULES:
            assert row[key] == pytest.approx(full[it][key], rel=1e-6), (it, key)
