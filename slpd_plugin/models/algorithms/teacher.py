"""The teacher holds no stochastic layer, whatever backbone the config names.

DINO's (and HIPT's, SLPD's) teacher is built without stochastic depth and without
dropout, so that two forwards of the same input give the same targets, in training mode
as in eval mode. A backbone is any registered module, so this is done twice:

1. :func:`teacher_backbone_cfg` sets every dropout-like argument of the backbone's
   config to 0 (any keyword whose name contains ``drop``: ``drop_rate``,
   ``drop_path_rate``, ``attn_drop_rate``, ``dropout`` ...), which also covers a
   backbone that applies dropout functionally from such an argument;
2. :func:`disable_stochastic_layers` then sets ``p = 0`` on every dropout module of the
   built teacher (``nn.Dropout`` and its 1d/2d/3d/alpha variants, the attention dropout
   of ``nn.MultiheadAttention``) and the rate of every other dropout-like module (a
   leaf module without parameters whose class name holds ``Drop`` or
   ``StochasticDepth``: ``DropPath``, ``DropBlock``, a user's own ``Dropout``).

Example:
    >>> cfg = teacher_backbone_cfg(dict(type='ViT4K', drop_rate=0.1, drop_path_rate=0.1))
    >>> cfg['drop_rate'], cfg['drop_path_rate']
    (0.0, 0.0)
"""
from __future__ import annotations

import inspect
import re

from torch import nn

from slpd_plugin.registry import MODELS

_DROP_KEY = re.compile(r'drop', re.IGNORECASE)
_DROP_CLASS = re.compile(r'drop|stochastic_?depth', re.IGNORECASE)
# Attribute names that dropout-like modules use for their rate (ours and timm's DropPath:
# ``p`` / ``drop_prob``; torchvision's StochasticDepth: ``p``).
_RATE_ATTRS = ('p', 'drop_prob', 'drop_rate', 'drop_path', 'rate')


def _is_rate(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_leaf_without_weights(m: nn.Module) -> bool:
    """Whether ``m`` holds no submodule and no parameter, as dropout-like layers do.

    This tells them from, say, a backbone whose class name happens to contain ``Drop``.
    """
    return next(m.children(), None) is None and next(m.parameters(), None) is None


def teacher_backbone_cfg(backbone: dict) -> dict:
    """The student's backbone config with every dropout-like rate set to 0.

    Keys are taken from the config and from the backbone's signature (so a rate that
    defaults to non-zero is zeroed too); only numbers are changed.
    """
    cfg = dict(backbone)
    backbone_cls = MODELS.get(cfg['type']) if isinstance(cfg['type'], str) else cfg['type']
    defaults = {}
    if backbone_cls is not None:
        defaults = {name: p.default for name, p in
                    inspect.signature(backbone_cls).parameters.items()
                    if p.default is not inspect.Parameter.empty}
    for key, value in {**defaults, **cfg}.items():
        if key != 'type' and _DROP_KEY.search(key) and _is_rate(value):
            cfg[key] = 0.0
    return cfg


def disable_stochastic_layers(module: nn.Module) -> list[str]:
    """Set every dropout and stochastic-depth rate inside ``module`` to 0, in place.

    Returns:
        The names of the modules that had a non-zero rate.

    Raises:
        ValueError: naming a dropout-like module whose rate attribute is unknown
            (it cannot be switched off, so the teacher would not be deterministic).
    """
    changed = []
    attrs: tuple[str, ...]
    for name, m in module.named_modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            attrs = ('p',)
        elif isinstance(m, nn.MultiheadAttention):
            attrs = ('dropout',)
        elif _DROP_CLASS.search(type(m).__name__) and _is_leaf_without_weights(m):
            attrs = tuple(a for a in _RATE_ATTRS if _is_rate(getattr(m, a, None)))
            if not attrs:
                raise ValueError(
                    f'teacher module {name!r} ({type(m).__name__}) looks like dropout or '
                    f'stochastic depth but has none of the rate attributes {_RATE_ATTRS}; '
                    f'it cannot be switched off in the teacher')
        else:
            continue
        if any(getattr(m, a) for a in attrs):
            changed.append(name)
        for a in attrs:
            setattr(m, a, 0.0)
    return changed
