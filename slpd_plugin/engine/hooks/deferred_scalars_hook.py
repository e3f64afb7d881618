"""Log the model's per-step outputs without a host sync per step.

mmengine's ``RuntimeInfoHook`` hands every output tensor to ``MessageHub.update_scalar``,
which calls ``.item()``: on a GPU the host then waits for the step to finish, once per
loss term per step. :class:`DeferredRuntimeInfoHook` keeps the detached tensors and
converts them all in one transfer when someone reads them: where a ``LoggerHook`` logs,
at the end of each epoch and of training, and before a checkpoint (which holds the
message hub) is written.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmengine.utils import apply_to

from slpd_plugin.registry import HOOKS


def is_log_point(runner, batch_idx: int) -> bool:
    """Whether a ``LoggerHook`` of ``runner`` logs after training batch ``batch_idx``.

    mmengine 0.10 logs every ``interval`` batches of an epoch and at its last batch.
    """
    if batch_idx + 1 == len(runner.train_dataloader):
        return True
    return any((batch_idx + 1) % hook.interval == 0
               for hook in runner.hooks if isinstance(hook, LoggerHook))


def to_host(values: Sequence) -> list:
    """``values`` (scalar tensors and Python/numpy numbers) as Python numbers.

    One device-to-host transfer per device instead of one ``.item()`` per tensor.
    """
    out = list(values)
    by_device: dict[torch.device, list[int]] = {}
    for i, value in enumerate(values):
        if isinstance(value, torch.Tensor):
            by_device.setdefault(value.device, []).append(i)
    for positions in by_device.values():
        stacked = torch.stack([values[i].detach().reshape(()) for i in positions])
        for i, number in zip(positions, stacked.double().tolist()):
            out[i] = number
    return out


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` whose ``after_train_iter`` defers the outputs' host copy.

    Each step's outputs (``loss``, ``loss_dino``, ...) are kept as detached device
    scalars and put into the message hub, every step's value in order, at the next
    logging iteration, epoch end, end of training or checkpoint save: one transfer then
    instead of one sync per term per step. The log's window means and the checkpointed
    ``HistoryBuffer`` are the same as with ``RuntimeInfoHook``, which it replaces in
    ``default_hooks.runtime_info`` (same priority; everything else is inherited).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, object]] = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: dict | None = None) -> None:
        """Keep the step's outputs as detached scalars; flush them at a logging iteration."""
        for key, value in (outputs or {}).items():
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    raise ValueError(f'train/{key}: logged outputs must be scalars, got a '
                                     f'tensor of shape {tuple(value.shape)}')
                value = value.detach()
            self._pending.append((f'train/{key}', value))
        if is_log_point(runner, batch_idx):
            self.flush(runner)

    def flush(self, runner) -> bool:
        """Move every pending value into the message hub, oldest first; whether any was."""
        if not self._pending:
            return False
        keys, values = zip(*self._pending)
        self._pending = []
        for key, value in zip(keys, to_host(values)):
            runner.message_hub.update_scalar(key, value)
        return True

    def after_train_epoch(self, runner) -> None:
        """Flush the pending values into the message hub."""
        self.flush(runner)

    def after_train(self, runner) -> None:
        """Flush the pending values, then do what ``RuntimeInfoHook`` does."""
        self.flush(runner)
        super().after_train(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Flush, and store the updated message hub in ``checkpoint``."""
        if self.flush(runner):  # the runner copied the message hub before this hook
            checkpoint['message_hub'] = apply_to(runner.message_hub.state_dict(),
                                                 lambda x: hasattr(x, 'cpu'),
                                                 lambda x: x.cpu())
