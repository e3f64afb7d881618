"""Pre-norm transformer block with HIPT/DINO parameter names.

Letters: ``B`` batch, ``T`` tokens, ``E`` embedding dim, ``h`` heads, ``d = E / h``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ATTN_IMPLS = ('sdpa', 'math')


def resolve_arch(presets: dict[str, dict], arch: str | dict, name: str) -> dict:
    """A preset's ``embed_dims``/``depth``/``num_heads`` by name, or a given dict checked."""
    if isinstance(arch, str):
        if arch not in presets:
            raise ValueError(f'Unknown {name} arch {arch!r}; choose one of '
                             f'{sorted(presets)} or pass a dict')
        arch = presets[arch]
    missing = {'embed_dims', 'depth', 'num_heads'} - set(arch)
    if missing:
        raise ValueError(f'{name} arch dict is missing {sorted(missing)}: got {arch}')
    return arch


def math_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """Explicit ``softmax(q k^T / sqrt(d) + bias) v`` on ``(B, h, T, d)`` tensors.

    ``attn_mask`` follows ``F.scaled_dot_product_attention``: a bool tensor (True = may
    attend) or a float bias added to the scores, broadcastable to ``(B, h, T, T)``.
    """
    attn = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn = attn.masked_fill(~attn_mask, float('-inf'))
        else:
            attn = attn + attn_mask
    return attn.softmax(dim=-1) @ v


class Attention(nn.Module):
    """Multi-head self-attention (``qkv`` and ``proj`` linear layers, qkv with bias).

    Args:
        dim: ``E``.
        num_heads: ``h``.
        attn_impl: ``'sdpa'`` uses ``F.scaled_dot_product_attention`` (fused kernels);
            ``'math'`` the explicit softmax reference.
    """

    def __init__(self, dim: int, num_heads: int, attn_impl: str = 'sdpa') -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'embedding dim {dim} is not divisible by {num_heads} heads')
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}')
        self.num_heads = num_heads
        self.attn_impl = attn_impl
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """Multi-head self-attention of tokens ``x`` ``(B, T, E)`` -> ``(B, T, E)``.

        ``attn_mask``: None, bool (True = may attend) or an additive float bias,
        broadcastable to ``(B, h, T, T)`` (e.g. ``(B, 1, 1, T)`` key padding).
        """
        b, t, e = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, e // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, h, T, d)
        if self.attn_impl == 'sdpa':
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        else:
            out = math_attention(q, k, v, attn_mask)
        return self.proj(out.transpose(1, 2).reshape(b, t, e))


class Mlp(nn.Module):
    """``fc1 -> GELU -> fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``fc2(act(fc1(x)))`` over the last dim of ``x``."""
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with prob ``p``.

    ``x * keep / (1 - p)`` with ``keep ~ Bernoulli(1 - p)`` per sample, computed in one
    pass over ``x``: the scale goes into the (B, 1, ..., 1) mask first.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """Training: zero each sample with prob ``p``, scale the rest by ``1/(1-p)``; else ``x``."""
        if self.p == 0.0 or not self.training:
            return x
        scale = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * scale.div_(1 - self.p)  # scale: (B, 1, ..., 1), 0 or 1 / (1 - p)


class Block(nn.Module):
    """``x + DropPath(Attn(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``, LN eps 1e-6.

    Shapes: ``(B, T, E) -> (B, T, E)``; ``attn_mask`` as for :class:`Attention`.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, attn_impl: str = 'sdpa') -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_impl)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """One pre-norm block, ``(B, T, E)``: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def vit_blocks(dim: int, num_heads: int, depth: int, mlp_ratio: float, drop_path_rate: float,
               attn_impl: str) -> nn.ModuleList:
    r"""``depth`` pre-norm :class:`Block`\ s, stochastic depth rising linearly from 0."""
    rates = torch.linspace(0, drop_path_rate, depth).tolist()
    return nn.ModuleList(Block(dim, num_heads, mlp_ratio, drop_path=r, attn_impl=attn_impl)
                         for r in rates)


def init_vit_weights(model: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear weights, zero biases, unit LayerNorms."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


__all__ = ['Attention', 'Block', 'DropPath', 'Mlp', 'init_vit_weights', 'math_attention',
           'resolve_arch']
