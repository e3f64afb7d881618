"""Teacher update: exponential moving average of the student, cosine momentum."""
from __future__ import annotations

from lightly.models.utils import update_momentum
from lightly.utils.scheduler import cosine_schedule
from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS
from slpd_plugin.utils.model import unwrap


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """After every optimizer step, ``teacher = m * teacher + (1 - m) * student``.

    ``m`` (the weight KEPT by the teacher, DINO's convention; mmengine's ``EMAHook`` uses
    the opposite one) follows a cosine over the ``T`` training iterations,
    ``m_i = end - (end - momentum) * (1 + cos(pi * i / (T - 1))) / 2``: exactly
    ``momentum`` at iteration 0 and exactly ``end_momentum`` at the last one, ``T - 1``.
    (DINO's own schedule divides by ``T`` and stops just short of ``end_momentum``.) It is
    logged as ``teacher_momentum`` (mmengine logs AdamW's beta1 as ``momentum``).

    Args:
        momentum: Teacher momentum at the first iteration. Defaults to 0.996.
        end_momentum: Momentum at the last iteration. Defaults to 1.0.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, momentum: float = 0.996, end_momentum: float = 1.0) -> None:
        if not 0.0 <= momentum <= end_momentum <= 1.0:
            raise ValueError('need 0 <= momentum <= end_momentum <= 1, got '
                             f'momentum={momentum}, end_momentum={end_momentum}')
        self.momentum = momentum
        self.end_momentum = end_momentum

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Move the teacher towards the student with this step's cosine-scheduled momentum."""
        model = unwrap(runner.model)
        # lightly's schedule runs from step 0 to step max_steps - 1 (cosine over
        # max_steps - 1 intervals): passing T puts end_momentum at the last iteration.
        m = cosine_schedule(runner.iter, runner.max_iters, self.momentum, self.end_momentum)
        update_momentum(model.student, model.teacher, m)
        runner.message_hub.update_scalar('train/teacher_momentum', m)
