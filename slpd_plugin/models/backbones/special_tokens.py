"""Register tokens, the iBOT mask token and the token layout shared by the grid ViTs.

Letters: ``B`` batch, ``H x W`` grid, ``N = H*W`` cells, ``R`` register tokens,
``E`` embedding dim.

Token order inside :class:`ViT4K` and :class:`ALiBiViT`: ``[CLS, registers..., cells
row-major...]``, so ``1 + R`` tokens come before the cells. Registers (Darcet et al.,
"Vision Transformers Need Registers", ICLR 2024) are learned tokens with no grid
position that the blocks may use as scratch space; they never appear in an output. The
mask token (Zhou et al., "iBOT", ICLR 2022) replaces the projected input of the cells a
``token_mask`` selects, for masked feature modelling.

Both are created only when asked for (``num_registers > 0``, ``mask_token=True``), so a
backbone built with the defaults has exactly the parameters and state-dict keys it had
without them (HIPT's checkpoints and older ones of this plugin load strictly).

Example:
    >>> module = torch.nn.Module()
    >>> add_token_parameter(module, 'register_tokens', 4, 8, std=0.02)
    >>> module.register_tokens.shape
    torch.Size([1, 4, 8])
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .masks import check_mask


def add_token_parameter(module: nn.Module, name: str, count: int, dims: int,
                        std: float = 0.0) -> None:
    """Register ``module.<name>`` as a ``(1, count, dims)`` parameter, or as None if 0.

    Initialised truncated-normal with ``std`` (zeros for ``std=0``). A None parameter
    is not in the state dict.
    """
    if count < 0:
        raise ValueError(f'{name}: the number of tokens must be >= 0, got {count}')
    if count == 0:
        module.register_parameter(name, None)
        return
    param = nn.Parameter(torch.zeros(1, count, dims))
    if std > 0:
        nn.init.trunc_normal_(param, std=std)
    module.register_parameter(name, param)


def add_special_tokens(module: nn.Module, dims: int, num_registers: int,
                       mask_token: bool) -> None:
    """Give a grid ViT its ``register_tokens`` ``(1, R, E)`` and ``mask_token`` ``(1, 1, E)``.

    Each is None when not asked for (``num_registers=0``, ``mask_token=False``), so the
    defaults add no parameter; registers are initialised truncated-normal (std 0.02), the
    mask token with zeros. Call it after the backbone's own initialisation, so that the
    defaults draw the same random numbers as a backbone without special tokens.
    """
    add_token_parameter(module, 'register_tokens', num_registers, dims, 0.02)
    add_token_parameter(module, 'mask_token', int(mask_token), dims)


def mask_cells(cells: Tensor, token_mask: Tensor | None, mask_token: Tensor | None,
               grids: Tensor, name: str) -> Tensor:
    """Projected cells ``(B, N, E)`` with the ``token_mask`` ``(B, H, W)`` cells replaced.

    Those cells get ``mask_token`` ``(1, 1, E)``; ``grids`` ``(B, C, H, W)`` gives the
    shape the mask is checked against, ``name`` the backbone in errors.
    """
    if token_mask is None:
        return cells
    if mask_token is None:
        raise ValueError(f'{name} got a token_mask but has no mask token: build it with '
                         'mask_token=True (model.backbone.mask_token)')
    check_mask(token_mask, grids, name)
    return torch.where(token_mask.flatten(1)[..., None], mask_token.to(cells.dtype), cells)


def prepend_tokens(cells: Tensor, cls_token: Tensor, registers: Tensor | None) -> Tensor:
    """``[CLS, registers..., cells...]``: ``(B, N, E)`` -> ``(B, 1 + R + N, E)``."""
    b = cells.shape[0]
    front = [cls_token.expand(b, -1, -1)]
    if registers is not None:
        front.append(registers.expand(b, -1, -1))
    return torch.cat([*front, cells], dim=1)


def num_prefix_tokens(registers: Tensor | None) -> int:
    """``1 + R``: the tokens before the cells (CLS and the registers)."""
    return 1 + (0 if registers is None else registers.shape[1])


def split_outputs(tokens: Tensor, num_prefix: int) -> tuple[Tensor, Tensor]:
    """The CLS token ``(B, E)`` and the cell tokens ``(B, N, E)`` of ``(B, T, E)``.

    The ``num_prefix - 1`` registers between them are dropped.
    """
    return tokens[:, 0], tokens[:, num_prefix:]


#: The parameters this module adds, which checkpoints made without them lack.
NEW_TOKEN_KEYS = ('register_tokens', 'mask_token')


def fit_special_tokens(state: dict[str, Tensor], backbone: nn.Module
                       ) -> tuple[dict[str, Tensor], list[str]]:
    """``state`` fitted to the register and mask tokens ``backbone`` has.

    A token ``backbone`` has and ``state`` lacks is taken from ``backbone`` (kept as
    initialised), so that a checkpoint made without it (HIPT's, or one of this plugin
    with the defaults) still loads strictly. A mask token ``state`` has and ``backbone``
    lacks is dropped: it only serves masked training, never an embedding. (Registers
    in ``state`` are never dropped: they change every output.)

    Returns:
        The new state dict and the names added or dropped.
    """
    own = backbone.state_dict()
    added = [k for k in NEW_TOKEN_KEYS if k in own and k not in state]
    dropped = ['mask_token'] if 'mask_token' in state and 'mask_token' not in own else []
    fitted = {k: v for k, v in state.items() if k not in dropped}
    return {**fitted, **{k: own[k] for k in added}}, added + dropped
