"""Teacher temperature: linear warm-up, then constant."""
from __future__ import annotations

from mmengine.hooks import Hook

from slpd_plugin.models.losses import TEACHER_TEMP
from slpd_plugin.registry import HOOKS
from slpd_plugin.utils.model import unwrap


@HOOKS.register_module()
class TeacherTempHook(Hook):
    """Set the model's teacher temperature before every training iteration.

    Linear from ``warmup_temp`` to ``temp`` over ``warmup_epochs`` (measured in
    iterations, so fractional epochs are smooth), then ``temp``. Logged as
    ``teacher_temp``.

    Args:
        temp: Final teacher temperature. Defaults to :data:`TEACHER_TEMP` (0.04, the
            paper's and DINO-4K's value).
        warmup_temp: Starting temperature. Defaults to :data:`TEACHER_TEMP`.
        warmup_epochs: Warm-up length in epochs. Defaults to 0.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, temp: float = TEACHER_TEMP, warmup_temp: float = TEACHER_TEMP,
                 warmup_epochs: float = 0) -> None:
        if temp <= 0 or warmup_temp <= 0 or warmup_epochs < 0:
            raise ValueError(f'temperatures must be > 0 and warmup_epochs >= 0, got '
                             f'temp={temp}, warmup_temp={warmup_temp}, '
                             f'warmup_epochs={warmup_epochs}')
        self.temp = temp
        self.warmup_temp = warmup_temp
        self.warmup_epochs = warmup_epochs

    def temperature(self, iteration: int, iters_per_epoch: int) -> float:
        """The teacher temperature at ``iteration``: linear warm-up, then ``temp``."""
        warmup_iters = self.warmup_epochs * iters_per_epoch
        if iteration >= warmup_iters:
            return self.temp
        return self.warmup_temp + (self.temp - self.warmup_temp) * iteration / warmup_iters

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Set the model's teacher temperature for this step and log it."""
        t = self.temperature(runner.iter, len(runner.train_dataloader))
        unwrap(runner.model).teacher_temp = t
        runner.message_hub.update_scalar('train/teacher_temp', t)
