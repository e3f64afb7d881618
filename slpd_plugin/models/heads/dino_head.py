"""DINO projection head that exposes the bottleneck embedding and the last layer."""
from __future__ import annotations

import warnings

import torch.nn.functional as F
from lightly.models.modules.heads import DINOProjectionHead
from mmengine.model import BaseModule
from torch import Tensor, nn

from slpd_plugin.registry import MODELS


@MODELS.register_module()
class DINOHead(BaseModule):
    """DINO head: MLP -> L2-normalised bottleneck ``z`` -> weight-normalised last layer.

    A thin adapter over lightly's :class:`DINOProjectionHead` (its MLP ``layers`` and its
    ``last_layer``, weight norm frozen at 1). SLPD needs the two halves apart: the
    prototypes live in ``z`` space, and their targets are ``last_layer(prototype)``.
    Dropping the last layer's gradients in the first epoch is done by the optimizer
    wrapper (it must also work under DDP), not here.

    Args:
        in_channels: Backbone embedding dim ``E``. Defaults to 192 (ViT-4K-XS).
        hidden_dims: MLP hidden dim. Defaults to 2048.
        bottleneck_dims: Dim of ``z``. Defaults to 256.
        out_channels: Number of prototypes/logits ``P``. Defaults to 65536.
        norm_last_layer: Freeze the last layer's weight norm at 1. Defaults to True.

    Shapes:
        :meth:`bottleneck`: ``(B, E) -> (B, bottleneck_dims)`` (unit norm);
        :meth:`last_layer`: ``(..., bottleneck_dims) -> (..., P)``;
        :meth:`forward`: ``(B, E) -> (B, P)``.
    """

    def __init__(self, in_channels: int = 192, hidden_dims: int = 2048,
                 bottleneck_dims: int = 256, out_channels: int = 65536,
                 norm_last_layer: bool = True, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.bottleneck_dims = bottleneck_dims
        self.out_channels = out_channels
        with warnings.catch_warnings():
            # lightly (1.6) still uses the deprecated nn.utils.weight_norm.
            warnings.simplefilter('ignore', FutureWarning)
            self.projection = DINOProjectionHead(
                input_dim=in_channels, hidden_dim=hidden_dims,
                bottleneck_dim=bottleneck_dims, output_dim=out_channels,
                norm_last_layer=norm_last_layer)

    def bottleneck(self, x: Tensor) -> Tensor:
        """The unit-norm bottleneck embedding ``z`` of backbone embeddings ``x``."""
        return F.normalize(self.projection.layers(x), dim=-1, p=2)

    def last_layer(self, z: Tensor) -> Tensor:
        """The weight-normalised last layer: ``z`` ``(..., Z)`` -> logits ``(..., P)``."""
        return self.projection.last_layer(z)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, P)`` of backbone embeddings ``(B, E)``."""
        return self.last_layer(self.bottleneck(x))


class DINOEncoder(nn.ModuleDict):
    """A backbone and its :class:`DINOHead`: what SLPD's student and teacher each hold.

    A ``ModuleDict`` with the keys ``backbone`` (``(B, C, H, W) -> (B, E)``) and ``head``,
    so state-dict keys read ``backbone.*`` and ``head.*``; the annotations below give
    the two entries their types. SLPD with an iBOT patch loss and a separate patch head
    adds a third entry, ``patch_head`` (a :class:`DINOHead` for the cell tokens).

    Example:
        >>> import torch
        >>> enc = DINOEncoder(dict(backbone=nn.Flatten(), head=DINOHead(in_channels=4,
        ...                        hidden_dims=8, bottleneck_dims=4, out_channels=16)))
        >>> enc.head(enc.backbone(torch.randn(2, 4, 1, 1))).shape
        torch.Size([2, 16])
    """

    backbone: nn.Module
    head: DINOHead
