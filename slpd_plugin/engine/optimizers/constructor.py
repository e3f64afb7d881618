"""Parameter groups as DINO makes them: no weight decay on biases and 1-d tensors."""
from __future__ import annotations

from mmengine.optim import OptimWrapper
from torch import nn

from slpd_plugin.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from slpd_plugin.utils.model import unwrap

from .dino_optim_wrapper import LAST_LAYER

#: The last layers of the DINO head and of a separate iBOT patch head.
LAST_LAYER_KEYS = ('head.projection.last_layer', 'patch_head.projection.last_layer')


def dino_param_groups(student: nn.Module,
                      last_layer_key: str | tuple[str, ...] = LAST_LAYER_KEYS) -> list[dict]:
    """Split trainable parameters into ``decay``, ``no_decay`` and ``last_layer`` groups.

    ``no_decay`` holds biases and 1-d tensors (norms), with ``weight_decay=0``; the heads'
    last layers (names starting with ``last_layer_key``, or one of them) are a group of
    their own so the optimizer wrapper can freeze them early.
    """
    groups: dict[str, list[nn.Parameter]] = {'decay': [], 'no_decay': [], LAST_LAYER: []}
    for name, p in student.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(last_layer_key):
            groups[LAST_LAYER].append(p)
        elif name.endswith('.bias') or p.ndim == 1:
            groups['no_decay'].append(p)
        else:
            groups['decay'].append(p)
    return [dict(name=k, params=v, **({'weight_decay': 0.0} if k == 'no_decay' else {}))
            for k, v in groups.items() if v]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SLPDOptimWrapperConstructor:
    """Build the optimizer over the student only (the teacher is an EMA, never stepped).

    Args:
        optim_wrapper_cfg: ``dict(type=..., optimizer=dict(type='AdamW', ...), ...)``.
        paramwise_cfg: Unused; accepted for mmengine compatibility.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg:
            raise ValueError('SLPDOptimWrapperConstructor builds DINO parameter groups '
                             f'itself; paramwise_cfg is not supported (got {paramwise_cfg})')
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """The optimizer wrapper over the student's DINO parameter groups."""
        model = unwrap(model)
        cfg = dict(self.optim_wrapper_cfg)
        cfg.setdefault('type', 'DINOOptimWrapper')
        optimizer_cfg = dict(cfg.pop('optimizer'))
        optimizer_cfg['params'] = dino_param_groups(model.student)
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(cfg, default_args=dict(optimizer=optimizer))
