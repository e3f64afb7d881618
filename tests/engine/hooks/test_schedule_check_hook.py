"""ScheduleCheckHook: a run shorter than its warm-up, its schedulers, its temperature
warm-up or its teacher EMA's horizon is named, schedule by schedule."""
from slpd_plugin.engine.hooks.schedule_check_hook import schedule_warnings
from slpd_plugin.engine.hooks.teacher_ema_hook import TeacherEMAHook
from tests.engine.hooks.toy import ITERS_PER_EPOCH


def _trained(toy_runner, warmup_epochs, temp_epochs, momentum):
    runner = toy_runner(
        max_epochs=2,
        param_scheduler=[dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
                              end=warmup_epochs, convert_to_iter_based=True)],
        custom_hooks=[dict(type='TeacherTempHook', warmup_temp=0.02,
                           warmup_epochs=temp_epochs), dict(type='ScheduleCheckHook')])
    runner.train()  # builds the schedulers, as before_train sees them
    runner.register_hook(TeacherEMAHook(momentum=momentum))  # the toy has no teacher
    return runner


def test_a_short_run_is_named_schedule_by_schedule(toy_runner):
    lines = schedule_warnings(_trained(toy_runner, 10, 3, 0.99))
    total = 2 * ITERS_PER_EPOCH
    length = f'the run has {total} iteration(s) ({ITERS_PER_EPOCH} per epoch x 2 epoch(s))'
    assert lines == [
        f'param_scheduler[0] (LinearLR of lr) runs to iteration {10 * ITERS_PER_EPOCH}, '
        f'but {length}: it never finishes',
        f'default_hooks.teacher_temp.warmup_epochs=3 is longer than the run ({length})',
        f'default_hooks.teacher_ema.momentum=0.99 averages over about 100 iterations, but '
        f'{length}: the teacher stays close to its initialisation (lower the momentum or '
        'train longer)']


def test_a_run_long_enough_is_not_warned(toy_runner):
    assert schedule_warnings(_trained(toy_runner, 1, 1, 0.5)) == []
