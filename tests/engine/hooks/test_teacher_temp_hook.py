"""TeacherTempHook: the model's teacher temperature at every step, and its log."""
import numpy as np
import pytest

from slpd_plugin.engine.hooks.teacher_temp_hook import TeacherTempHook
from tests.engine.hooks.toy import ITERS_PER_EPOCH, ToyModel, logged

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


class PatchToyModel(ToyModel):
    """The toy model with a patch-loss temperature, recorded at each step as well."""

    def __init__(self) -> None:
        super().__init__()
        self.teacher_patch_temp = None
        self.seen_patch_temps: list = []

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            self.seen_patch_temps.append(self.teacher_patch_temp)
        return super().forward(inputs, data_samples, mode)


@pytest.mark.parametrize('patch', [dict(), dict(patch_temp=0.07, patch_warmup_temp=0.05)],
                         ids=['same', 'own'])
def test_patch_loss_temperature_follows_its_own_schedule(toy_runner, patch):
    runner = toy_runner(max_epochs=2, model=PatchToyModel(), custom_hooks=[dict(
        type='TeacherTempHook', temp=END, warmup_temp=START, warmup_epochs=1, **patch)])
    runner.train()
    start, end = patch.get('patch_warmup_temp', START), patch.get('patch_temp', END)
    expected = [*np.linspace(start, end, ITERS_PER_EPOCH, endpoint=False),
                *[end] * ITERS_PER_EPOCH]
    assert runner.model.seen_patch_temps == pytest.approx(expected, rel=1e-12)
    assert runner.model.seen_temps == pytest.approx(
        [*np.linspace(START, END, ITERS_PER_EPOCH, endpoint=False), *[END] * ITERS_PER_EPOCH],
        rel=1e-12)
    assert logged(runner, 'train/teacher_patch_temp') == pytest.approx(expected, rel=1e-12)


def test_no_patch_temperature_without_the_attribute(toy_runner):
    runner = toy_runner(max_epochs=1, custom_hooks=[dict(type='TeacherTempHook')])
    runner.train()
    assert not hasattr(runner.model, 'teacher_patch_temp')
    assert 'train/teacher_patch_temp' not in runner.message_hub.log_scalars


def test_bad_temperatures_are_refused():
    from slpd_plugin.registry import HOOKS
    for bad in (dict(temp=0), dict(warmup_temp=-0.01), dict(warmup_epochs=-1),
                dict(patch_temp=0), dict(patch_warmup_temp=-1)):
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
