"""Whole-slide encoding: a grid backbone over every patch of a slide, memory linear in N.

A slide encoder trained on patch-feature grids (TITAN, MOOZY: one embedding per slide)
embeds a whole slide as one grid: its bounding box of lattice cells, missing cells
masked. Built densely that grid needs an ``(h, T, T)`` attention bias and score matrix
per block, quadratic in the slide's cells (40,000 patches at 70 % tissue: 13 GB per
head in float32). :func:`encode_slide` gives the same CLS embedding from the present cells
only, with the backbone's own weights: per block, ``q``, ``k``, ``v`` of all tokens,
then attention of one chunk of queries at a time against all keys, with the ALiBi bias
of that chunk only (``(h, chunk, T)``, from the cells' distances), then the projection,
residuals and MLP of the chunk. The last block only computes the CLS query, the one row
the output reads. Peak memory is ``O(chunk * T)`` plus ``O(T * E)`` for the tokens.

Supported backbones (:data:`SUPPORTED`): :class:`~.alibi_vit.ALiBiViT` (bias from the
cells' Euclidean distances, 0 to and from CLS and registers) and :class:`~.vit4k.ViT4K`
(positional embedding interpolated to the slide's bounding grid, as the dense forward
does, and gathered at the present cells: ``H x W x E`` floats, linear in the grid's
area; no bias, key padding only). Register tokens
(``num_registers`` > 0, ``register_tokens`` ``(1, R, E)``) follow CLS, without a grid
position, as in the backbones' own forward.

Letters: ``N`` present cells of a slide, ``C`` patch-feature dim, ``E`` embedding dim,
``h`` heads, ``d = E / h``, ``R`` registers, ``T = 1 + R + N`` tokens.
"""
from __future__ import annotations

from typing import Callable, Union, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .alibi_vit import ALiBiViT, alibi_slopes
from .vit4k import ViT4K
from .vit_blocks import Block, math_attention

#: The backbones :func:`encode_slide` runs (their names, for error messages).
SUPPORTED = (ALiBiViT, ViT4K)
GridViT = Union[ALiBiViT, ViT4K]


def supports_whole_slide(backbone: nn.Module) -> bool:
    """Whether :func:`encode_slide` can run ``backbone`` (one of :data:`SUPPORTED`)."""
    return isinstance(backbone, SUPPORTED)


def _checked_cells(backbone: GridViT, feats: Tensor, cells: Tensor) -> Tensor:
    """Check the inputs; return the cells shifted to start at ``(0, 0)``, ``(N, 2)`` int64."""
    name = type(backbone).__name__
    if feats.dim() != 2 or feats.shape[1] != backbone.in_channels:
        raise ValueError(f'{name}: expected slide features (N, {backbone.in_channels}), '
                         f'got {tuple(feats.shape)}')
    if cells.dtype.is_floating_point or tuple(cells.shape) != (len(feats), 2):
        raise ValueError(f'expected integer cells (N, 2) = (row, col) for {len(feats)} '
                         f'patches, got {cells.dtype} {tuple(cells.shape)}')
    cells = cells.long()
    return cells - cells.min(0).values if len(cells) else cells


def _input_tokens(backbone: GridViT, feats: Tensor, cells: Tensor) -> Tensor:
    """``[CLS, registers..., cells...]`` tokens before the first block, ``(T, E)``."""
    device = backbone.cls_token.device
    dtype = backbone.cls_token.dtype
    x = backbone.phi(feats.to(device, dtype))  # (N, E)
    cls = backbone.cls_token[0]  # (1, E)
    if isinstance(backbone, ViT4K):
        height, width = (cells.max(0).values + 1).tolist() if len(cells) else (1, 1)
        pos = backbone.interpolate_pos_encoding(height, width)[0]  # (1 + H*W, E)
        cls = cls + pos[:1]
        x = x + pos[1 + cells[:, 0] * width + cells[:, 1]]
    parts = [cls, x]
    registers = getattr(backbone, 'register_tokens', None)  # (1, R, E)
    if getattr(backbone, 'num_registers', 0) and registers is not None:
        parts.insert(1, registers[0])
    return torch.cat(parts)  # (T, E)


def _alibi_chunk(slopes: Tensor, positions: Tensor, num_prefix: int, lo: int,
                 hi: int) -> Tensor:
    """ALiBi bias of queries ``[lo, hi)`` against all keys, ``(h, hi - lo, T)``.

    ``positions`` ``(N, 2)`` float are the cells'; the first ``num_prefix`` tokens (CLS,
    registers) have bias 0. Distances are computed as :func:`~.alibi_vit.grid_distances`
    does (squares summed, root), so the bias equals the dense one; each head's bias is
    written in place, so the only temporaries are ``(chunk, N)``.
    """
    bias = slopes.new_zeros(len(slopes), hi - lo, num_prefix + len(positions))
    q_lo, q_hi = max(lo - num_prefix, 0), max(hi - num_prefix, 0)
    if q_hi > q_lo:
        rows = positions[q_lo:q_hi, 0, None] - positions[None, :, 0]  # (chunk, N)
        cols = positions[q_lo:q_hi, 1, None] - positions[None, :, 1]
        dist = rows.square_().add_(cols.square_()).sqrt_()
        first = hi - lo - (q_hi - q_lo)  # rows of the chunk that are cells
        for k in range(len(slopes)):
            torch.mul(dist, -slopes[k], out=bias[k, first:, num_prefix:])
    return bias


def _block_chunked(block: Block, x: Tensor, queries: range, chunk_size: int,
                   bias_of: Callable[[int, int], Tensor | None]) -> Tensor:
    """One pre-norm block for the tokens ``queries`` of ``x`` ``(T, E)``, chunk by chunk.

    Keys and values are all ``T`` tokens; returns ``(len(queries), E)``.
    """
    attn = block.attn
    t, e = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(block.norm1(x)).reshape(t, 3, heads, e // heads).permute(1, 2, 0, 3)
    q, k, v = qkv[0], qkv[1], qkv[2]  # each (h, T, d)
    out = x.new_empty(len(queries), e)
    for lo in range(queries.start, queries.stop, chunk_size):
        hi = min(lo + chunk_size, queries.stop)
        bias = bias_of(lo, hi)  # (h, hi - lo, T) or None
        if attn.attn_impl == 'sdpa':
            mixed = F.scaled_dot_product_attention(q[:, lo:hi], k, v, attn_mask=bias)
        else:
            mixed = math_attention(q[:, lo:hi], k, v, bias)
        y = x[lo:hi] + attn.proj(mixed.transpose(0, 1).reshape(hi - lo, e))  # (chunk, E)
        out[lo - queries.start:hi - queries.start] = y + block.mlp(block.norm2(y))
    return out


def _encode(backbone: GridViT, feats: Tensor, cells: Tensor, chunk_size: int) -> Tensor:
    cells = _checked_cells(backbone, feats, cells)
    x = _input_tokens(backbone, feats, cells.to(backbone.cls_token.device))  # (T, E)
    num_prefix = x.shape[0] - len(cells)
    positions = cells.to(x.device, torch.float32)  # (N, 2)
    slopes = (alibi_slopes(backbone.num_heads).to(x.device, x.dtype)  # (h,)
              if isinstance(backbone, ALiBiViT) else None)

    def bias_of(lo: int, hi: int) -> Tensor | None:
        if slopes is None:  # ViT4K: positions are in the tokens, no bias
            return None
        return _alibi_chunk(slopes, positions, num_prefix, lo, hi).to(x.dtype)

    blocks = [cast(Block, block) for block in backbone.blocks]
    for i, block in enumerate(blocks):
        # the output reads CLS only: the last block computes that one query
        queries = range(1) if i == len(blocks) - 1 else range(x.shape[0])
        x = _block_chunked(block, x, queries, chunk_size, bias_of)
    return backbone.norm(x[0])  # (E,)


@torch.no_grad()
def encode_slide(backbone: nn.Module, feats: Tensor, cells: Tensor,
                 chunk_size: int = 1024) -> Tensor:
    """Embed one whole slide with a grid backbone, its CLS token ``(E,)``.

    Equal (to float tolerance) to ``backbone(grid[None], mask[None])[0]`` for the
    slide's bounding grid with the present cells' features and ``mask`` True exactly
    there, with memory linear in ``N`` (module docstring). Runs in eval mode (no
    dropout or drop-path; the backbone's mode is restored after) and without gradients.

    Args:
        backbone: An :class:`~.alibi_vit.ALiBiViT` or :class:`~.vit4k.ViT4K`.
        feats: The slide's patch features ``(N, C)``, any float dtype.
        cells: Their lattice cells ``(N, 2)`` int64 ``(row, col)``, distinct; any
            origin (only differences matter, except for ViT4K's bounding grid, which
            starts at the smallest row and column).
        chunk_size: Queries per attention chunk. Defaults to 1024.

    Returns:
        The slide embedding ``(E,)``, on the backbone's device, in its dtype.

    Raises:
        TypeError: for a backbone that is not one of :data:`SUPPORTED`.
        ValueError: for features of another width or cells not ``(N, 2)`` integers.

    Example:
        >>> vit = ALiBiViT(arch='xs', in_channels=768).eval()
        >>> cells = torch.stack(torch.meshgrid(torch.arange(50), torch.arange(80),
        ...                                    indexing='ij'), -1).reshape(-1, 2)
        >>> encode_slide(vit, torch.randn(len(cells), 768), cells).shape
        torch.Size([192])
    """
    if not isinstance(backbone, SUPPORTED):
        raise TypeError(f'whole-slide encoding supports {[b.__name__ for b in SUPPORTED]} '
                        f'backbones, got {type(backbone).__name__}: embed regions instead '
                        'and average them')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    was_training = backbone.training
    backbone.eval()
    try:
        return _encode(backbone, feats, cells, chunk_size)
    finally:
        backbone.train(was_training)


__all__ = ['SUPPORTED', 'encode_slide', 'supports_whole_slide']
