"""TeacherTempHook: the model's teacher temperature at every step, and its log."""
import numpy as np
import pytest

from slpd_plugin.engine.hooks.teacher_temp_hook import TeacherTempHook
from tests.engine.hooks.toy import ITERS_PER_EPOCH, logged

START, END = 0.02, 0.04


@pytest.mark.parametrize('warmup_epochs', [1, 1.5])
def test_temperature_warms_up_linearly_per_iteration_then_stays(toy_runner, warmup_epochs):
    runner = toy_runner(max_epochs=2, custom_hooks=[dict(
        type='TeacherTempHook', temp=END, warmup_temp=START, warmup_epochs=warmup_epochs)])
    runner.train()
    warmup_iters = int(warmup_epochs * ITERS_PER_EPOCH)
    total = 2 * ITERS_PER_EPOCH
    expected = [*np.linspace(START, END, warmup_iters, endpoint=False),
                *[END] * (total - warmup_iters)]
    seen = runner.model.seen_temps  # what each training step's forward pass used
    assert seen == pytest.approx(expected, rel=1e-12)
    assert logged(runner, 'train/teacher_temp') == pytest.approx(seen, rel=1e-12)


def test_bad_temperatures_are_refused():
    from slpd_plugin.registry import HOOKS
    for bad in (dict(temp=0), dict(warmup_temp=-0.01), dict(warmup_epochs=-1)):
        with pytest.raises(ValueError, match='temperatures must be > 0'):
            HOOKS.build(dict(type='TeacherTempHook', **bad))


def test_teacher_temperature_defaults_are_one_constant() -> None:
    """The hook, the prototype head and lightly's DINO loss default to TEACHER_TEMP."""
    import inspect

    from lightly.loss import DINOLoss as LightlyDINOLoss

    from slpd_plugin.models.heads.prototype_head import PrototypeDistillHead
    from slpd_plugin.models.losses import TEACHER_TEMP

    hook = TeacherTempHook()
    assert hook.temp == hook.warmup_temp == TEACHER_TEMP
    head = inspect.signature(PrototypeDistillHead).parameters['teacher_temp'].default
    lightly = inspect.signature(LightlyDINOLoss).parameters['teacher_temp'].default
    assert head == lightly == TEACHER_TEMP
