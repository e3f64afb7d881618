"""Export a trained region encoder in the layout of HIPT's ``vit4k_xs_dino.pth``.

HIPT's DINO checkpoints hold the teacher as a DINO ``MultiCropWrapper`` state dict under
``'teacher'``: backbone weights under ``backbone.`` (``backbone.phi.0.weight``,
``backbone.blocks.0.attn.qkv.weight``, ...) and the projection head under ``head.``.
HIPT's loader (``get_vit4k`` in ``hipt_model_utils.py``) takes ``ckpt['teacher']``,
removes every ``module.`` and ``backbone.`` from the keys and loads the result into
``vit4k_xs()``. We write the backbone only, as ``{'teacher': {'backbone.<name>': w}}``
(plus a ``'slpd_meta'`` dict of plain values that HIPT ignores), so after HIPT's
stripping the keys are exactly the ViT-4K's and even a ``strict=True`` load succeeds.
Our projection head is left out: its parameter names are not DINO's, and HIPT does not
use a head.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor

from slpd_plugin.utils.weights import CheckpointError, encoder_state

from .reading import load_checkpoint

__all__ = ['HIPT_VIT4K_XS', 'describe_vit4k', 'export_hipt_teacher', 'hipt_state_dict']

# HIPT's vit4k_xs: ViT over 14x14 grids of 384-d ViT-256 features.
HIPT_VIT4K_XS = dict(in_channels=384, embed_dims=192, depth=6, pos_tokens=14 * 14 + 1)
REQUIRED_KEYS = ('phi.0.weight', 'phi.0.bias', 'cls_token', 'pos_embed', 'norm.weight',
                 'norm.bias')


def describe_vit4k(state: dict[str, Tensor], source: str = 'checkpoint') -> dict[str, int]:
    """Read the architecture of a ViT-4K from its backbone weights.

    Args:
        state: Backbone weights with ViT-4K names (``phi.0.weight`` ...).
        source: Names the weights in error messages. Defaults to 'checkpoint'.

    Returns:
        ``in_channels``, ``embed_dims``, ``depth`` and ``pos_tokens``.

    Raises:
        CheckpointError: if the weights are not a ViT-4K's.
    """
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f'{source}: not ViT-4K backbone weights (missing {missing}; '
                              f'has e.g. {sorted(state)[:5]})')
    blocks = {int(k.split('.')[1]) for k in state if k.startswith('blocks.')}
    embed_dims, in_channels = state['phi.0.weight'].shape
    return dict(in_channels=int(in_channels), embed_dims=int(embed_dims),
                depth=len(blocks), pos_tokens=int(state['pos_embed'].shape[1]))


def hipt_state_dict(backbone: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Backbone weights in the DINO/HIPT teacher layout (``backbone.`` prefix).

    Args:
        backbone: ViT-4K weights without prefix.

    Returns:
        ``{'backbone.' + name: contiguous copy}``, in the given order.
    """
    return OrderedDict((f'backbone.{k}', v.detach().clone().contiguous())
                       for k, v in backbone.items())


def export_hipt_teacher(checkpoint: str | os.PathLike, out: str | os.PathLike,
                        encoder: str = 'teacher') -> dict:
    """Write ``{'teacher': backbone state dict, 'slpd_meta': {...}}`` for HIPT.

    Args:
        checkpoint: A checkpoint written by this plugin's runner (``epoch_N.pth``).
        out: Output ``.pth`` path.
        encoder: Which encoder to export under the ``'teacher'`` key. Defaults to
            'teacher' (what HIPT and SLPD use downstream).

    Returns:
        The ``slpd_meta`` written: source, encoder, epoch, architecture, and
        ``hipt_vit4k_xs`` (whether the architecture is HIPT's ``vit4k_xs``, which HIPT's
        code builds; other sizes need a matching model on HIPT's side).

    Raises:
        FileNotFoundError: if there is no such checkpoint.
        ValueError: if it cannot be loaded weights-only or holds no such encoder
            (:class:`CheckpointError`).
    """
    ckpt = load_checkpoint(checkpoint)
    backbone = encoder_state(ckpt, encoder, 'backbone', source=str(checkpoint))
    arch = describe_vit4k(backbone, source=str(checkpoint))
    meta_in = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    epoch = meta_in.get('epoch') if isinstance(meta_in, dict) else None
    meta = dict(source=str(Path(checkpoint).resolve()), encoder=encoder,
                epoch=int(epoch) if isinstance(epoch, int) else None, **arch,
                hipt_vit4k_xs=arch == HIPT_VIT4K_XS)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save({'teacher': hipt_state_dict(backbone), 'slpd_meta': meta}, out)
    return meta
