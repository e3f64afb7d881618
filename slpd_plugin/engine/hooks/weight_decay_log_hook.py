"""Log the scheduled weight decay next to mmengine's ``lr``."""
from __future__ import annotations

from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS


@HOOKS.register_module()
class WeightDecayLogHook(Hook):
    """Log the largest weight decay over parameter groups as ``wd`` every iteration.

    Groups without decay (biases, norms) stay at 0 and would hide the schedule, hence
    the max.
    """

    priority = 'BELOW_NORMAL'

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Log the largest weight decay of the parameter groups as ``train/wd``."""
        wd = max(g.get('weight_decay', 0.0) for g in runner.optim_wrapper.param_groups)
        runner.message_hub.update_scalar('train/wd', wd)
