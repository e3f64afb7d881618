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
    ``teacher_temp``. A model with a ``teacher_patch_temp`` attribute (SLPD with an iBOT
    patch loss) gets the temperature of the patch loss too: the same schedule from
    ``patch_warmup_temp`` to ``patch_temp`` (each defaults to its DINO counterpart, as in
    iBOT and DINOv2, which share one schedule), logged as ``teacher_patch_temp``.

    Args:
        temp: Final teacher temperature. Defaults to :data:`TEACHER_TEMP` (0.04, the
            paper's and DINO-4K's value).
        warmup_temp: Starting temperature. Defaults to :data:`TEACHER_TEMP`.
        warmup_epochs: Warm-up length in epochs. Defaults to 0.
        patch_temp: Final teacher temperature of the patch loss. Defaults to None
            (``temp``).
        patch_warmup_temp: Its starting temperature. Defaults to None (``warmup_temp``).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, temp: float = TEACHER_TEMP, warmup_temp: float = TEACHER_TEMP,
                 warmup_epochs: float = 0, patch_temp: float | None = None,
                 patch_warmup_temp: float | None = None) -> None:
        patch_temp = temp if patch_temp is None else patch_temp
        patch_warmup_temp = warmup_temp if patch_warmup_temp is None else patch_warmup_temp
        if min(temp, warmup_temp, patch_temp, patch_warmup_temp) <= 0 or warmup_epochs < 0:
            raise ValueError(f'temperatures must be > 0 and warmup_epochs >= 0, got '
                             f'temp={temp}, warmup_temp={warmup_temp}, '
                             f'patch_temp={patch_temp}, patch_warmup_temp='
                             f'{patch_warmup_temp}, warmup_epochs={warmup_epochs}')
        self.temp = temp
        self.warmup_temp = warmup_temp
        self.patch_temp = patch_temp
        self.patch_warmup_temp = patch_warmup_temp
        self.warmup_epochs = warmup_epochs

    def temperature(self, iteration: int, iters_per_epoch: int, patch: bool = False
                    ) -> float:
        """The teacher temperature at ``iteration``: linear warm-up, then the final one.

        ``patch=True``: that of the patch loss.
        """
        start, end = ((self.patch_warmup_temp, self.patch_temp) if patch
                      else (self.warmup_temp, self.temp))
        warmup_iters = self.warmup_epochs * iters_per_epoch
        if iteration >= warmup_iters:
            return end
        return start + (end - start) * iteration / warmup_iters

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Set the model's teacher temperature(s) for this step and log them."""
        model = unwrap(runner.model)
        t = self.temperature(runner.iter, len(runner.train_dataloader))
        model.teacher_temp = t
        runner.message_hub.update_scalar('train/teacher_temp', t)
        if hasattr(model, 'teacher_patch_temp'):
            t = self.temperature(runner.iter, len(runner.train_dataloader), patch=True)
            model.teacher_patch_temp = t
            runner.message_hub.update_scalar('train/teacher_patch_temp', t)
