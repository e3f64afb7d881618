"""A deliberately small backbone: mean-pooled grid features through an MLP.

Useful as a fast baseline and to show that the SLPD head, losses and prototype hook take
their dimensions from whatever backbone the config gives them.
"""
from __future__ import annotations

from mmengine.model import BaseModule
from torch import Tensor, nn

from slpd_plugin.registry import MODELS

from .masks import checked_grids


@MODELS.register_module()
class PooledMLP(BaseModule):
    """``mean over grid cells -> Linear -> GELU -> Linear``.

    Args:
        in_channels: ``C``. Defaults to 384.
        embed_dims: Output dim ``E``. Defaults to 128.
        hidden_dims: Hidden dim. Defaults to 256.

    Shapes:
        ``(B, C, H, W) -> (B, E)``; with a tissue mask ``(B, H, W)`` bool the mean runs
        over the present cells only (a grid with none pools to zeros).

    Example:
        >>> mask = torch.rand(2, 16, 16) > 0.3  # True = a patch is present
        >>> PooledMLP(in_channels=32)(torch.randn(2, 32, 16, 16), mask=mask).shape
        torch.Size([2, 128])
    """

    accepts_masks = True

    def __init__(self, in_channels: int = 384, embed_dims: int = 128,
                 hidden_dims: int = 256, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden_dims), nn.GELU(),
                                 nn.Linear(hidden_dims, embed_dims))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Embed grids ``x`` ``(B, C, H, W)`` to ``(B, E)``.

        ``mask`` ``(B, H, W)`` bool (True = a patch is present) averages over the present
        cells only; None = all present.
        """
        kept = checked_grids(x, mask, self.in_channels, 'PooledMLP')
        if mask is None:
            return self.mlp(kept.mean(dim=(2, 3)))
        kept = kept.sum(dim=(2, 3))  # (B, C)
        count = mask.sum(dim=(1, 2)).clamp_min(1)[:, None]  # (B, 1); empty grid -> zeros
        return self.mlp(kept / count)
