"""Teacher update: exponential moving average of the student, cosine momentum."""
from __future__ import annotations

from lightly.models.utils import update_momentum
from lightly.utils.scheduler import cosine_schedule
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from slpd_plugin.registry import HOOKS


def unwrap(model):
    """The algorithm inside a DDP/FSDP wrapper (or the model itself)."""
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """After every optimizer step, ``teacher = m * teacher + (1 - m) * student``.

    ``m`` (the weight KEPT by the teacher, DINO's convention; mmengine's ``EMAHook`` uses
    the opposite one) follows a cosine from ``momentum`` to ``end_momentum`` over all
    training iterations. It is logged as ``teacher_momentum`` (mmengine logs AdamW's beta1 as ``momentum``).

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
        model = unwrap(runner.model)
        m = cosine_schedule(runner.iter, max(runner.max_iters - 1, 1), self.momentum,
                            self.end_momentum)
        update_momentum(model.student, model.teacher, m)
        runner.message_hub.update_scalar('train/teacher_momentum', m)
