"""Warn before training when the run is too short for its schedules."""
from __future__ import annotations

from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS

from .teacher_ema_hook import TeacherEMAHook
from .teacher_temp_hook import TeacherTempHook

UNBOUNDED = int(1e9)  # mmengine's default ``end`` of a parameter scheduler


def _schedulers(runner) -> list:
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):  # one list per optimizer
        return [s for group in schedulers.values() for s in group]
    return list(schedulers)


def schedule_warnings(runner) -> list[str]:
    """One line per schedule that the run's ``max_iters`` iterations cut short.

    Checks (a) every parameter scheduler (warm-up, cosine) against the run's length,
    (b) the teacher-temperature warm-up, and (c) the teacher EMA: with momentum ``m``
    the teacher averages over about ``1 / (1 - m)`` steps, so a run shorter than that
    leaves it close to its initialisation.
    """
    total = runner.max_iters
    per_epoch = len(runner.train_dataloader)
    length = (f'the run has {total} iteration(s) ({per_epoch} per epoch x '
              f'{runner.max_epochs} epoch(s))')
    lines = []
    for i, sched in enumerate(_schedulers(runner)):
        if sched.begin < total < sched.end < UNBOUNDED:
            name = getattr(sched, 'param_name', 'lr')
            lines.append(f'param_scheduler[{i}] ({type(sched).__name__} of {name}) runs '
                         f'to iteration {sched.end}, but {length}: it never finishes')
    for hook in runner.hooks:
        if isinstance(hook, TeacherTempHook) and hook.warmup_epochs * per_epoch > total:
            lines.append(f'default_hooks.teacher_temp.warmup_epochs={hook.warmup_epochs} '
                         f'is longer than the run ({length})')
        if isinstance(hook, TeacherEMAHook) and hook.momentum < 1:
            horizon = round(1 / (1 - hook.momentum))
            if total < horizon:
                lines.append(f'default_hooks.teacher_ema.momentum={hook.momentum} averages '
                             f'over about {horizon} iterations, but {length}: the teacher '
                             'stays close to its initialisation (lower the momentum or '
                             'train longer)')
    return lines


@HOOKS.register_module()
class ScheduleCheckHook(Hook):
    """Before training, log a warning per schedule the run is too short for.

    See :func:`schedule_warnings`; the run goes on.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        """Log one ``short run:`` warning per schedule the run is too short for."""
        for line in schedule_warnings(runner):
            runner.logger.warning(f'short run: {line}')
