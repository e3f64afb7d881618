"""One encoder's weights out of a training checkpoint.

Checkpoints of ``tools/train.py`` load with ``torch.load(weights_only=True)`` (the
runner's :class:`~slpd_plugin.engine.hooks.weights_only_checkpoint_hook.WeightsOnlyCheckpointHook`
stores mmengine's message hub as tensors and plain values), so no file is ever
unpickled with arbitrary objects: load them with
:func:`slpd_plugin.visualization.load_checkpoint`. Checkpoints written before that hook
existed are refused with a clear message; retrain or re-save them.
"""
from __future__ import annotations

from torch import Tensor

__all__ = ['CheckpointError', 'encoder_state']


class CheckpointError(ValueError):
    """A checkpoint lacks the weights asked for, or they do not fit a model."""


def encoder_state(checkpoint: dict, encoder: str = 'teacher',
                  part: str = 'backbone', source: str = 'checkpoint') -> dict[str, Tensor]:
    """The weights of one part of the student or teacher, without prefixes.

    Args:
        checkpoint: A loaded checkpoint (``{'state_dict': {...}, ...}``) of an
            :class:`~slpd_plugin.models.SLPD` model.
        encoder: ``'teacher'`` or ``'student'``. Defaults to 'teacher'.
        part: ``'backbone'`` or ``'head'``. Defaults to 'backbone'.
        source: Names the checkpoint in error messages. Defaults to 'checkpoint'.

    Returns:
        ``{name: tensor}`` with the ``{encoder}.{part}.`` (and any DDP ``module.``)
        prefix removed, e.g. ``phi.0.weight``, ``blocks.0.attn.qkv.weight``.

    Raises:
        CheckpointError: if no such weights are in the checkpoint.
    """
    if encoder not in ('teacher', 'student') or part not in ('backbone', 'head'):
        raise CheckpointError(f'encoder must be teacher/student and part backbone/head, '
                              f'got {encoder!r}, {part!r}')
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f'{source}: expected a dict with a "state_dict"')
    prefix = f'{encoder}.{part}.'
    out = {}
    for key, value in state.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        if key.startswith(prefix) and isinstance(value, Tensor):
            out[key[len(prefix):]] = value
    if not out:
        tops = sorted({k.split('.')[0] for k in state})
        raise CheckpointError(f'{source}: no "{prefix}*" weights; its state_dict has '
                              f'top-level names {tops[:10]} (is it an SLPD/DINO-4K '
                              f'checkpoint of this plugin?)')
    return out
