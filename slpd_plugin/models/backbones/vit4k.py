"""ViT-4K: a vision transformer over a region's grid of patch features (HIPT's vit4k).

Letters: ``B`` batch, ``C`` input channels (patch-feature dim), ``H x W`` grid
(14x14 global crops, 6x6 local crops, 16x16 full regions), ``R`` register tokens,
``T = 1 + R + H*W`` tokens (CLS, registers, cells), ``E`` embedding dim.

Parameter names follow HIPT's ``vit4k_xs`` (``phi.0``, ``cls_token``, ``pos_embed``,
``blocks.i.attn.qkv``, ``blocks.i.mlp.fc1``, ``norm`` ...), so a HIPT ``vit4k_xs_dino.pth``
teacher backbone loads with ``strict=True``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from slpd_plugin.registry import MODELS

from .masks import checked_grids
from .special_tokens import (
    add_special_tokens,
    mask_cells,
    num_prefix_tokens,
    prepend_tokens,
    split_outputs,
)
from .vit_blocks import init_vit_weights, resolve_arch, vit_blocks

ARCHS = {
    # HIPT's vit4k_xs.
    'xs': dict(embed_dims=192, depth=6, num_heads=6),
    's': dict(embed_dims=384, depth=6, num_heads=6),
    'b': dict(embed_dims=768, depth=12, num_heads=12),
}


@MODELS.register_module()
class ViT4K(BaseModule):
    """Region-level ViT of HIPT: patch features -> one embedding per region.

    Each grid cell (a 256-px patch feature of dim ``C``) is projected by
    ``Linear(C -> E) -> GELU -> Dropout``, a CLS token is prepended, a learned
    positional embedding for a 14x14 grid is added (bicubically interpolated to any other
    grid size exactly as HIPT does), then pre-norm transformer blocks and a final
    LayerNorm. The output is the CLS token.

    Registers (``num_registers = R > 0``, Darcet et al., ICLR 2024) are ``R`` learned
    tokens inserted after CLS (token order ``[CLS, registers..., cells...]``), with no
    positional embedding; they are always attended and never output. :meth:`forward_tokens`
    also returns the cell tokens, and replaces the projected input of the cells its
    ``token_mask`` selects by the learned ``mask_token`` (iBOT; the positional embedding
    is added after the replacement). Neither parameter exists with the defaults, so
    HIPT's checkpoints still load strictly.

    Args:
        arch: A preset name (``'xs'`` = HIPT's vit4k_xs, ``'s'``, ``'b'``) or a dict with
            ``embed_dims``, ``depth``, ``num_heads``. Defaults to ``'xs'``.
        in_channels: ``C``, the patch-feature dim. Defaults to 384 (HIPT ViT-256).
        depth: Override the preset's number of blocks (e.g. a shallow CPU demo).
            Defaults to None (the preset's).
        pos_grid_size: Side of the grid the positional embedding is learned for.
            Defaults to 14.
        mlp_ratio: Hidden/embedding ratio of the MLPs. Defaults to 4.
        drop_rate: Dropout after the input projection (HIPT's ``drop_rate``). Defaults
            to 0.0, as in HIPT's and SLPD's ``vit4k_xs``, which their training scripts
            never change.
        drop_path_rate: Stochastic depth, linearly increasing over blocks.
            Defaults to 0.1 (the student; build the teacher with 0).
        attn_impl: ``'sdpa'`` (``F.scaled_dot_product_attention``) or ``'math'`` (explicit
            softmax attention, the reference and benchmark baseline). Defaults to 'sdpa'.
        num_registers: ``R``, register tokens. Defaults to 0 (none).
        mask_token: Create the ``(1, 1, E)`` mask token :meth:`forward_tokens` needs for
            a ``token_mask``. Defaults to False (no such parameter).
        init_cfg: mmengine init config. Inside :class:`SLPD`, a
            ``dict(type='Pretrained', checkpoint=...)`` here is loaded by the SLPD model
            into the student and the teacher (HIPT checkpoints work as they are).

    Shapes:
        input ``(B, C, H, W)`` (and optionally a tissue mask ``(B, H, W)`` bool) ->
        output ``(B, E)``; :meth:`forward_tokens`: ``((B, E), (B, H*W, E))``.
        Missing cells (mask False) are left out of attention as keys
        (a key-padding mask; the CLS token is always attended), so the CLS output does
        not depend on what they hold; an all-True mask gives the unmasked output.

    Examples:
        >>> model = ViT4K(arch='xs', in_channels=384)
        >>> model(torch.randn(2, 384, 16, 16)).shape
        torch.Size([2, 192])
        >>> mask = torch.rand(2, 16, 16) > 0.3
        >>> model(torch.randn(2, 384, 16, 16), mask=mask).shape
        torch.Size([2, 192])
    """

    accepts_masks = True
    returns_patch_tokens = True

    def __init__(self, arch: str | dict = 'xs', in_channels: int = 384,
                 depth: int | None = None, pos_grid_size: int = 14, mlp_ratio: float = 4.0,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 attn_impl: str = 'sdpa', num_registers: int = 0, mask_token: bool = False,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(ARCHS, arch, 'ViT4K')
        self.embed_dims = int(arch['embed_dims'])
        self.in_channels = in_channels
        self.pos_grid_size = pos_grid_size
        depth = int(arch['depth'] if depth is None else depth)

        self.phi = nn.Sequential(nn.Linear(in_channels, self.embed_dims), nn.GELU(),
                                 nn.Dropout(drop_rate))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid_size**2 + 1, self.embed_dims))
        self.blocks = vit_blocks(self.embed_dims, int(arch['num_heads']), depth, mlp_ratio,
                                 drop_path_rate, attn_impl)
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)
        self._init_weights()
        self.num_registers = num_registers
        add_special_tokens(self, self.embed_dims, num_registers, mask_token)  # same draws

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        init_vit_weights(self)

    def interpolate_pos_encoding(self, height: int, width: int) -> Tensor:
        """Positional embedding for an ``height x width`` grid, ``(1, H*W + 1, E)``.

        Bicubic interpolation with HIPT's ``scale_factor = (side + 0.1) / 14`` so that a
        HIPT checkpoint reproduces HIPT's embeddings.
        """
        n = self.pos_grid_size
        if height == n and width == n:
            return self.pos_embed
        cls_pos, grid_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        grid_pos = grid_pos.reshape(1, n, n, -1).permute(0, 3, 1, 2)  # (1, E, n, n)
        grid_pos = F.interpolate(grid_pos, mode='bicubic', align_corners=False,
                                 scale_factor=((height + 0.1) / n, (width + 0.1) / n))
        if grid_pos.shape[-2:] != (height, width):
            raise RuntimeError(f'positional interpolation gave {tuple(grid_pos.shape[-2:])}'
                               f' for a {height}x{width} grid')
        grid_pos = grid_pos.permute(0, 2, 3, 1).reshape(1, height * width, -1)
        return torch.cat([cls_pos, grid_pos], dim=1)

    def forward_tokens(self, x: Tensor, mask: Tensor | None = None,
                       token_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The CLS token ``(B, E)`` and the cell tokens ``(B, H*W, E)`` of grids ``x``.

        ``mask`` ``(B, H, W)`` bool (True = a patch is present) leaves the missing cells
        out of attention; None = all present. ``token_mask`` ``(B, H, W)`` bool: cells
        whose input is replaced by the mask token (None = none).
        """
        x = checked_grids(x, mask, self.in_channels, 'ViT4K')
        b, _, h, w = x.shape
        prefix = num_prefix_tokens(self.register_tokens)
        attn_mask = None
        if mask is not None:  # (B, T): CLS and registers always valid
            valid = torch.cat([mask.new_ones(b, prefix), mask.flatten(1)], dim=1)
            attn_mask = valid[:, None, None, :]  # (B, 1, 1, T) key padding
        cells = self.phi(x.flatten(2).transpose(1, 2))  # (B, H*W, E), row-major cells
        cells = mask_cells(cells, token_mask, self.mask_token, x, 'ViT4K')
        pos = self.interpolate_pos_encoding(h, w)  # (1, 1 + H*W, E)
        cells = cells + pos[:, 1:]
        tokens = prepend_tokens(cells, self.cls_token + pos[:, :1], self.register_tokens)
        for block in self.blocks:
            tokens = block(tokens, attn_mask)
        return split_outputs(self.norm(tokens), prefix)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The CLS token ``(B, E)`` of grids ``x``; ``mask`` as for :meth:`forward_tokens`."""
        return self.forward_tokens(x, mask)[0]

