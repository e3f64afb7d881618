"""Optimizer wrapper with DINO's gradient surgery, working the same with and without DDP.

Under DDP, ``MMDistributedDataParallel.train_step`` never calls the wrapped model's
``train_step``; it calls ``optim_wrapper.update_params``. Everything between backward
and the optimizer step therefore lives here.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from slpd_plugin.registry import OPTIM_WRAPPERS

LAST_LAYER = 'last_layer'  # param-group name set by SLPDOptimWrapperConstructor
# fp16 would need a loss scaler; bf16 has fp32's range and needs none.
AUTOCAST_DTYPES = {'bfloat16': torch.bfloat16}


@OPTIM_WRAPPERS.register_module()
class DINOOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that, before every optimizer step:

    1. drops the gradients of the head's last layer during the first
       ``freeze_last_layer_epochs`` epochs (DINO/HIPT: 1), and
    2. clips each parameter tensor's gradient to norm ``clip_per_tensor`` separately
       (DINO's ``clip_gradients``; mmengine's ``clip_grad`` clips the global norm instead,
       and is still available on top).

    It can also run the forward pass under autocast (``autocast_dtype='bfloat16'``), on
    CPU or GPU; bf16 needs no loss scaling.

    Args:
        clip_per_tensor: Max gradient norm per parameter tensor; None disables.
            Defaults to 3.0 (paper).
        freeze_last_layer_epochs: Epochs during which the param group named
            ``'last_layer'`` gets no update. Defaults to 1.
        autocast_dtype: None (fp32) or ``'bfloat16'``. Defaults to None.
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, *args, clip_per_tensor: float | None = 3.0,
                 freeze_last_layer_epochs: int = 1, autocast_dtype: str | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if autocast_dtype is not None and autocast_dtype not in AUTOCAST_DTYPES:
            raise ValueError(f'autocast_dtype must be None or one of '
                             f'{sorted(AUTOCAST_DTYPES)}, got {autocast_dtype!r}')
        self.clip_per_tensor = clip_per_tensor
        self.freeze_last_layer_epochs = freeze_last_layer_epochs
        self.autocast_dtype = autocast_dtype

    def _params(self, last_layer: bool | None = None) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups
                if last_layer is None or (g.get('name') == LAST_LAYER) == last_layer
                for p in g['params'] if p.grad is not None]

    def step(self, **kwargs) -> None:
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        if epoch < self.freeze_last_layer_epochs:
            for p in self._params(last_layer=True):
                p.grad = None
        if self.clip_per_tensor is not None:
            grads = [p.grad for p in self._params()]
            if grads:
                norms = torch._foreach_norm(grads)
                scales = [torch.clamp(self.clip_per_tensor / (n + 1e-6), max=1.0)
                          for n in norms]
                torch._foreach_mul_(grads, scales)
        super().step(**kwargs)

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model):
            if self.autocast_dtype is None:
                ctx = nullcontext()
            else:
                device = next(model.parameters()).device.type
                ctx = torch.autocast(device_type=device,
                                     dtype=AUTOCAST_DTYPES[self.autocast_dtype])
            with ctx:
                yield
