"""ALiBi-ViT: a TITAN-style vision transformer over feature grids with a 2-D ALiBi bias.

Letters: ``B`` batch, ``C`` input channels (patch-feature dim), ``H x W`` grid,
``N = H*W`` cells, ``R`` register tokens, ``T = 1 + R + N`` tokens (CLS, registers,
cells), ``E`` embedding dim, ``h`` heads.

TITAN's slide encoder (Ding et al. 2024, arXiv 2411.19666) replaces learned positional
embeddings by ALiBi (Press et al. 2022, arXiv 2108.12409) extended to two dimensions:
each head adds ``-slope * distance`` to its attention scores, with the Euclidean
distance between the two patches' grid positions. Nothing positional is learned, so one
model takes 6x6, 14x14, 16x16 or 32x32 grids alike.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
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

_compiling = getattr(torch.compiler, 'is_compiling', lambda: False)  # torch >= 2.3

ARCHS = {
    'xs': dict(embed_dims=192, depth=6, num_heads=6),
    's': dict(embed_dims=384, depth=6, num_heads=6),
    # The size of TITAN's slide encoder (Ding et al. 2024): 768-d, 6 blocks, 12 heads.
    'titan': dict(embed_dims=768, depth=6, num_heads=12),
}


def alibi_slopes(num_heads: int) -> Tensor:
    """ALiBi's per-head slopes, ``(h,)``.

    For ``h`` a power of two, the geometric sequence ``2^(-8k/h)``, ``k = 1..h``;
    otherwise the sequence of the largest power of two ``m < h`` followed by the
    odd-indexed terms ``2^(-4k/m)``, ``k = 1, 3, 5, ...`` of the ``2m`` sequence (ALiBi's
    rule), e.g. 12 heads: ``2^-1 .. 2^-8`` then ``2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5``.
    """
    if num_heads < 1:
        raise ValueError(f'num_heads must be >= 1, got {num_heads}')
    m = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = [2.0 ** (-8.0 * k / m) for k in range(1, m + 1)]
    slopes += [2.0 ** (-8.0 * k / (2 * m)) for k in range(1, 2 * m + 1, 2)][:num_heads - m]
    return torch.tensor(slopes)


def grid_distances(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """Euclidean distances between the cells of a ``height x width`` grid, ``(N, N)`` float32.

    Cells are in row-major order (the order of ``x.flatten(2)``).
    """
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    pos = torch.stack([rows, cols], dim=-1).float()  # (N, 2)
    return (pos[:, None] - pos[None]).square().sum(-1).sqrt()  # (N, N)


@lru_cache(maxsize=16)
def alibi_bias(height: int, width: int, num_heads: int, device: torch.device,
               dtype: torch.dtype = torch.float32, num_prefix: int = 1) -> Tensor:
    """The 2-D ALiBi bias of a ``height x width`` grid after ``num_prefix`` tokens.

    ``(1, h, T, T)`` in ``dtype``, ``T = num_prefix + N``: ``-slope_k * distance``
    between cells, 0 to/from the tokens before them (CLS and any registers).

    Computed in float32 and rounded once to ``dtype``. Cached per grid size, head count,
    device and dtype (the few crop sizes of a run); callers must not modify the result
    in place. Built outside any inference mode so that it can be saved for backward
    later.
    """
    with torch.inference_mode(False), torch.no_grad():
        n = height * width
        dist = grid_distances(height, width, device)  # (N, N)
        slopes = alibi_slopes(num_heads).to(device)  # (h,)
        bias = dist.new_zeros(1, num_heads, num_prefix + n, num_prefix + n)
        bias[0, :, num_prefix:, num_prefix:] = -slopes[:, None, None] * dist  # (h, N, N)
    return bias.to(dtype)


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype attention runs in for activations ``x``.

    That is autocast's, if it is on for ``x``'s device, else ``x``'s own.
    """
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


@MODELS.register_module()
class ALiBiViT(BaseModule):
    """ViT over a grid of patch features with a 2-D ALiBi attention bias (TITAN style).

    Each grid cell (one patch feature of dim ``C``) is projected by
    ``Linear(C -> E) -> GELU -> Dropout`` (as :class:`ViT4K`'s ``phi``), a learned CLS
    token is prepended, then pre-norm transformer blocks and a final LayerNorm; the
    output is the CLS token. There is no positional embedding: every block adds the
    same bias to its attention scores, for head ``k`` with ALiBi slope ``m_k``
    (:func:`alibi_slopes`)::

        bias[k, 1 + p, 1 + q] = -m_k * ||(row_p, col_p) - (row_q, col_q)||_2
        bias[k, 0, :] = bias[k, :, 0] = 0      # CLS to/from every cell

    The CLS token has no grid position, so it attends to every cell, and every cell to
    it, without a distance penalty (bias 0), whatever the grid size.

    Registers (``num_registers = R > 0``, Darcet et al., ICLR 2024) are ``R`` learned
    tokens placed after CLS (token order ``[CLS, registers..., cells...]``). Like CLS they
    have no grid position (bias 0 to and from every token), are always valid keys, and
    are never output. ``R = 0`` (the default) creates no parameter.

    Patch tokens: :meth:`forward_tokens` returns the CLS token and the ``N`` cell tokens
    after the final norm; its ``token_mask`` replaces the projected input of the chosen
    cells by the learned ``mask_token`` (iBOT's masked feature modelling; built only with
    ``mask_token=True``).

    Missing patches: with ``mask`` (``True`` = patch present) the missing cells are left
    out as keys: their columns of the bias are ``-inf`` (added to the ALiBi bias, so one
    float bias ``(B, h, T, T)`` goes to the attention), and their inputs are zeroed
    before the projection so that whatever a hole holds (even NaN) cannot reach the
    output. The CLS key is always valid, so no softmax row is empty, even for a grid
    with no patch at all. Without ``mask`` the bias is ``(1, h, T, T)``, broadcast over
    the batch and cached per grid size, device and dtype (:func:`alibi_bias`). Either
    way it is made once per forward, in the dtype attention runs in (autocast's under
    ``--amp``), so that no block re-casts it; the masked one is then half the bytes.

    Args:
        arch: A preset name (``'xs'``: 192-d, 6 blocks, 6 heads; ``'s'``: 384-d, 6, 6;
            ``'titan'``: 768-d, 6 blocks, 12 heads, the size of TITAN's slide encoder) or
            a dict with ``embed_dims``, ``depth``, ``num_heads``. Defaults to ``'xs'``.
        in_channels: ``C``, the patch-feature dim (e.g. 768 for CONCH v1.5).
            Defaults to 384.
        depth: Override the preset's number of blocks. Defaults to None (the preset's).
        mlp_ratio: Hidden/embedding ratio of the MLPs. Defaults to 4.
        drop_rate: Dropout after the input projection. Defaults to 0.0.
        drop_path_rate: Stochastic depth, linearly increasing over blocks from 0.
            Defaults to 0.1 (the student; the SLPD teacher is built with 0).
        attn_impl: ``'sdpa'`` (``F.scaled_dot_product_attention``) or ``'math'``
            (explicit softmax attention, the reference). Defaults to 'sdpa'.
        num_registers: ``R``, register tokens. Defaults to 0 (none).
        mask_token: Create the ``(1, 1, E)`` mask token :meth:`forward_tokens` needs for
            a ``token_mask``. Defaults to False (no such parameter).
        init_cfg: mmengine init config (inside :class:`SLPD` a ``Pretrained`` entry is
            loaded into the student and the teacher).

    Attributes:
        accepts_masks: True: :meth:`forward` takes a ``(B, H, W)`` mask of present cells.
        returns_patch_tokens: True: :meth:`forward_tokens` returns the cell tokens too.

    Shapes:
        input ``(B, C, H, W)`` (any ``H``, ``W``), mask ``(B, H, W)`` bool or None ->
        output ``(B, E)``; :meth:`forward_tokens`: ``((B, E), (B, H*W, E))``.

    Examples:
        >>> model = ALiBiViT(arch='titan', in_channels=768)
        >>> grids = torch.randn(2, 768, 16, 16)
        >>> mask = torch.rand(2, 16, 16) > 0.3
        >>> model(grids, mask).shape
        torch.Size([2, 768])
    """

    accepts_masks = True
    returns_patch_tokens = True

    def __init__(self, arch: str | dict = 'xs', in_channels: int = 384,
                 depth: int | None = None, mlp_ratio: float = 4.0,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 attn_impl: str = 'sdpa', num_registers: int = 0, mask_token: bool = False,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(ARCHS, arch, 'ALiBiViT')
        self.embed_dims = int(arch['embed_dims'])
        self.in_channels = in_channels
        self.num_heads = int(arch['num_heads'])
        depth = int(arch['depth'] if depth is None else depth)

        self.phi = nn.Sequential(nn.Linear(in_channels, self.embed_dims), nn.GELU(),
                                 nn.Dropout(drop_rate))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self.blocks = vit_blocks(self.embed_dims, self.num_heads, depth, mlp_ratio,
                                 drop_path_rate, attn_impl)
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)
        self._init_weights()
        self.num_registers = num_registers
        add_special_tokens(self, self.embed_dims, num_registers, mask_token)  # same draws

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        init_vit_weights(self)

    def attention_bias(self, height: int, width: int, device: torch.device,
                       mask: Tensor | None = None,
                       dtype: torch.dtype = torch.float32) -> Tensor:
        """The float bias every block adds to its attention scores, in ``dtype``.

        ``dtype`` is the one attention runs in, so no block casts the bias again.

        Returns:
            ``(1, h, T, T)`` without ``mask`` (:func:`alibi_bias`, cached, broadcast over
            the batch: no per-sample copy); ``(B, h, T, T)`` with a ``(B, H, W)`` mask,
            ``-inf`` in the key columns of missing cells (CLS and registers stay valid).
        """
        prefix = num_prefix_tokens(self.register_tokens)
        # torch.compile traces the uncached function into its graph (a constant there)
        build = alibi_bias.__wrapped__ if _compiling() else alibi_bias
        bias = build(height, width, self.num_heads, torch.device(device), dtype,
                     prefix)  # (1, h, T, T)
        if mask is None:
            return bias
        keys = torch.cat([mask.new_ones(mask.shape[0], prefix), mask.flatten(1)],
                         dim=1)  # (B, T)
        return bias.masked_fill(~keys[:, None, None, :], float('-inf'))  # (B, h, T, T)

    def forward_tokens(self, x: Tensor, mask: Tensor | None = None,
                       token_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The CLS token ``(B, E)`` and the cell tokens ``(B, H*W, E)`` of grids ``x``.

        ``mask`` ``(B, H, W)``: present cells (None = all); ``token_mask`` ``(B, H, W)``:
        cells whose input is replaced by the mask token (None = none).
        """
        x = checked_grids(x, mask, self.in_channels, 'ALiBiViT')
        b, _, h, w = x.shape
        cells = self.phi(x.flatten(2).transpose(1, 2))  # (B, N, E), row-major cells
        cells = mask_cells(cells, token_mask, self.mask_token, x, 'ALiBiViT')
        tokens = prepend_tokens(cells, self.cls_token, self.register_tokens)  # (B, T, E)
        # Once per forward, in the dtype attention runs in (bf16 under autocast).
        bias = self.attention_bias(h, w, x.device, mask, compute_dtype(tokens))
        for block in self.blocks:
            tokens = block(tokens, bias)
        return split_outputs(self.norm(tokens), num_prefix_tokens(self.register_tokens))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Embed grids ``(B, C, H, W)`` to the CLS token ``(B, E)``; ``mask``: ``(B, H, W)``."""
        return self.forward_tokens(x, mask)[0]
