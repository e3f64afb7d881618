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
from torch.amp import GradScaler

from slpd_plugin.registry import OPTIM_WRAPPERS

LAST_LAYER = 'last_layer'  # param-group name set by SLPDOptimWrapperConstructor
# bf16 has fp32's range and needs no loss scaler; fp16 overflows/underflows without one.
AUTOCAST_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


@OPTIM_WRAPPERS.register_module()
class DINOOptimWrapper(OptimWrapper):
    """``OptimWrapper`` with DINO's gradient handling, and optional autocast.

    Before every optimizer step, it:

    1. drops the gradients of the head's last layer during the first
       ``freeze_last_layer_epochs`` epochs (DINO/HIPT: 1), and
    2. clips each parameter tensor's gradient to norm ``clip_per_tensor`` separately
       (DINO's ``clip_gradients``; mmengine's ``clip_grad`` clips the global norm instead,
       and is still available on top).

    It can also run the forward pass under autocast, on CPU or GPU:
    ``autocast_dtype='bfloat16'`` needs no loss scaling; ``'float16'`` multiplies the
    loss by a scale before backward (``torch.amp.GradScaler``), divides the gradients
    by it again before steps 1-2 (so clipping acts on the true gradients), skips the
    optimizer step when a gradient is inf/NaN and then halves the scale (``'dynamic'``;
    it doubles again after ``growth_interval`` good steps). Skipping needs the found-inf
    flag: plain optimizers read it on the host (one device sync per step), optimizers
    with ``_step_supports_amp_scaling`` (fused AdamW, ``fused=True`` as in
    ``configs/_base_/schedules/dino_100e.py``) skip inside their kernel without a sync.

    Args:
        clip_per_tensor: Max gradient norm per parameter tensor; None disables.
            Defaults to 3.0 (paper).
        freeze_last_layer_epochs: Epochs during which the param group named
            ``'last_layer'`` gets no update. Defaults to 1.
        autocast_dtype: None (fp32), ``'bfloat16'`` or ``'float16'``. Defaults to None.
        loss_scale: fp16 only: ``'dynamic'``, a float (static scale) or a dict of
            ``torch.amp.GradScaler`` arguments (``init_scale``, ``growth_interval``, ...).
            Its state is saved as ``state_dict()['loss_scaler']``. Defaults to
            ``'dynamic'``.
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, *args, clip_per_tensor: float | None = 3.0,
                 freeze_last_layer_epochs: int = 1, autocast_dtype: str | None = None,
                 loss_scale: str | float | dict = 'dynamic', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if autocast_dtype is not None and autocast_dtype not in AUTOCAST_DTYPES:
            raise ValueError(f'autocast_dtype must be None or one of '
                             f'{sorted(AUTOCAST_DTYPES)}, got {autocast_dtype!r}')
        self.clip_per_tensor = clip_per_tensor
        self.freeze_last_layer_epochs = freeze_last_layer_epochs
        self.autocast_dtype = autocast_dtype
        self.loss_scaler: GradScaler | None = None
        self._static_scale: float | None = None
        if autocast_dtype == 'float16':
            self._build_loss_scaler(loss_scale)
        elif loss_scale != 'dynamic':
            raise ValueError(f"loss_scale needs autocast_dtype='float16', got "
                             f'autocast_dtype={autocast_dtype!r}')

    def _build_loss_scaler(self, loss_scale: str | float | dict) -> None:
        # torch's own scaler: mmengine's AmpOptimWrapper asserts a GPU, this works on CPU
        # too. Its device type only decides whether it is enabled; its scale tensor is
        # created on the device of the first loss it scales.
        device = self.optimizer.param_groups[0]['params'][0].device.type
        if isinstance(loss_scale, dict):
            self.loss_scaler = GradScaler(device, **loss_scale)
        elif isinstance(loss_scale, (int, float)) and not isinstance(loss_scale, bool):
            self._static_scale = float(loss_scale)
            self.loss_scaler = GradScaler(device, init_scale=self._static_scale)
        elif loss_scale == 'dynamic':
            self.loss_scaler = GradScaler(device)
        else:
            raise TypeError(f"loss_scale must be 'dynamic', a float or a dict, "
                            f'got {loss_scale!r}')

    def _params(self, last_layer: bool | None = None) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups
                if last_layer is None or (g.get('name') == LAST_LAYER) == last_layer
                for p in g['params'] if p.grad is not None]

    def _clip_each_tensor(self, grads: list[torch.Tensor]) -> None:
        """Scale each gradient by ``min(1, clip / (norm + 1e-6))``, with no host sync.

        The coefficients of all T tensors are computed as one (T,) tensor (a handful of
        kernels instead of three per tensor). The final multiply passes one 0-dim
        coefficient per gradient; torch's fused foreach kernel needs equal shapes in
        both lists, so on CUDA that multiply is still one small kernel per tensor.
        """
        by_device: dict[tuple, list[torch.Tensor]] = {}
        for g in grads:  # foreach kernels need one device and dtype per call
            by_device.setdefault((g.device, g.dtype), []).append(g)
        for same in by_device.values():
            norms = torch.stack(torch._foreach_norm(same))  # (T,)
            coefs = (self.clip_per_tensor / (norms + 1e-6)).clamp_(max=1.0)  # (T,)
            torch._foreach_mul_(same, list(coefs.unbind()))

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        """Backward of ``loss``, scaled first when float16 autocast uses a loss scaler."""
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        """Unscale, drop the frozen last layer's gradients, clip per tensor, then step."""
        if self.loss_scaler is not None:
            self.loss_scaler.unscale_(self.optimizer)  # and records inf/NaN gradients
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        if epoch < self.freeze_last_layer_epochs:
            for p in self._params(last_layer=True):
                p.grad = None
        if self.clip_per_tensor is not None:
            self._clip_each_tensor([p.grad for p in self._params()])
        if self.loss_scaler is None:
            super().step(**kwargs)
            return
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)  # skipped on inf/NaN gradients
        self.loss_scaler.update(self._static_scale)

    def state_dict(self) -> dict:
        """The wrapper's state, with the loss scaler's when there is one."""
        state = super().state_dict()
        if self.loss_scaler is not None:
            state['loss_scaler'] = self.loss_scaler.state_dict()  # floats and ints only
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the wrapper's state and the loss scaler's."""
        state_dict = dict(state_dict)
        scaler_state = state_dict.pop('loss_scaler', None)
        if self.loss_scaler is not None and scaler_state:
            self.loss_scaler.load_state_dict(scaler_state)
        super().load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """The mmengine context of the forward and backward, under autocast when set."""
        with super().optim_context(model):
            if self.autocast_dtype is None:
                ctx = nullcontext()
            else:
                device = next(model.parameters()).device.type
                ctx = torch.autocast(device_type=device,
                                     dtype=AUTOCAST_DTYPES[self.autocast_dtype])
            with ctx:
                yield
