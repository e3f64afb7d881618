"""The backbone interface: feature grids and their tissue masks.

A backbone that takes masks declares it with a class attribute ``accepts_masks = True``
and a forward ``forward(x (B, C, H, W), mask (B, H, W) bool | None = None) -> (B, E)``:
True where a grid cell holds a patch, None when every cell does. A backbone without the
attribute (e.g. one a user registers) is called without masks, and the config check
refuses a store with holes for it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def accepts_masks(backbone: nn.Module | type) -> bool:
    """Whether a backbone (instance or class) declares ``accepts_masks = True``."""
    return bool(getattr(backbone, 'accepts_masks', False))


def check_mask(mask: Tensor, x: Tensor, name: str) -> None:
    """Refuse a mask that is not bool ``(B, H, W)`` for grids ``x`` ``(B, C, H, W)``."""
    b, _, h, w = x.shape
    if mask.dtype != torch.bool or tuple(mask.shape) != (b, h, w):
        raise ValueError(f'{name} expects a bool mask of shape ({b}, {h}, {w}) for grids '
                         f'{tuple(x.shape)}, got {mask.dtype} {tuple(mask.shape)}')


def checked_grids(x: Tensor, mask: Tensor | None, in_channels: int, name: str) -> Tensor:
    """Check grids ``x`` ``(B, C, H, W)`` and ``mask``; return them with holes zeroed.

    ``name`` names the backbone in errors. Zeroing the missing cells means that whatever
    a hole holds (even NaN) cannot reach the output through ``0 * value``.
    """
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f'{name} expects grids of shape (B, {in_channels}, H, W), '
                         f'got {tuple(x.shape)}: set model.backbone.in_channels to the '
                         'feature width of the store')
    if mask is None:
        return x
    check_mask(mask, x, name)
    return x.masked_fill(~mask[:, None], 0.0)
