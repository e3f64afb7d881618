"""Reading weights files weights-only: the one ``torch.load`` of the package.

Also one encoder's weights out of a training checkpoint, and pretrained backbone weights
(HIPT/DINO layout or ours) for ``backbone.init_cfg=dict(type='Pretrained', ...)``.

Every checkpoint the package reads -- the runner's resume and ``load_from``, the tools'
checkpoints (:mod:`slpd_plugin.checkpoints.reading`), Pretrained backbone weights --
goes through :func:`load_weights_only`: ``torch.load(weights_only=True)`` of a local
file, so nothing is ever unpickled as an arbitrary object (the runner's
:class:`~slpd_plugin.engine.hooks.weights_only_checkpoint_hook.WeightsOnlyCheckpointHook`
stores mmengine's message hub as tensors and plain values). It lives here, at the bottom
of the layering, because the model's Pretrained initialisation needs it too.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch import Tensor

__all__ = ['CheckpointError', 'encoder_state', 'load_backbone_weights', 'load_weights_only']


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded weights-only, lacks the weights, or they do not fit."""


def load_weights_only(path: str | os.PathLike, what: str = 'checkpoint',
                      map_location: str | Callable = 'cpu') -> Any:
    """Load a local file with ``torch.load(weights_only=True)``, never unpickling objects.

    Args:
        path: The file, e.g. ``work_dirs/slpd_lung/epoch_100.pth``.
        what: Names the file in error messages. Defaults to 'checkpoint'.
        map_location: As for ``torch.load``. Defaults to 'cpu'.

    Returns:
        What the file holds (tensors, plain values and containers of them).

    Raises:
        FileNotFoundError: if ``path`` is not a local file (URLs are not fetched).
        CheckpointError: if the file is not loadable weights-only.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: {what} not found (a local file is needed: URLs '
                                f'are not fetched, download it first)')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch.load of arbitrary bytes can raise nearly anything
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ''
        raise CheckpointError(
            f'{path}: not loadable weights-only with torch.load(weights_only=True) '
            f'({type(err).__name__}: {reason}); nothing is ever unpickled, so a {what} '
            f'must hold only tensors and plain values') from None


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


def load_backbone_weights(path: str | os.PathLike, prefix: str | None = None
                          ) -> dict[str, Tensor]:
    """A backbone's weights from a local file, loaded weights-only (never unpickled).

    Layouts, by what the file holds:

    - ``{'state_dict': ...}``, a checkpoint of this plugin: its teacher backbone;
    - ``{'teacher': ...}``, a DINO/HIPT/SLPD checkpoint such as HIPT's
      ``vit4k_xs_dino.pth``: its teacher, without the ``head.`` weights (what HIPT's
      loader keeps);
    - otherwise a bare backbone state dict.

    A leading ``module.`` and ``backbone.`` are removed from every key, as HIPT's loader
    does. With ``prefix`` (mmengine's ``Pretrained(prefix=...)``), only the keys of the
    file's state dict that start with it are kept, without it.

    Args:
        path: The file.
        prefix: Keep only keys starting with this. Defaults to None.

    Returns:
        ``{name: tensor}``, e.g. ``phi.0.weight``, ``blocks.0.attn.qkv.weight``.

    Raises:
        FileNotFoundError: if the file is missing.
        CheckpointError: if it is not loadable weights-only, or holds no backbone weights.
    """
    checkpoint = load_weights_only(path, 'pretrained backbone weights')
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'{path}: expected a dict of weights, got '
                              f'{type(checkpoint).__name__}')
    if prefix is not None:
        state = checkpoint.get('state_dict', checkpoint)
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    elif isinstance(checkpoint.get('state_dict'), dict):
        state = encoder_state(checkpoint, 'teacher', 'backbone', source=str(path))
    elif isinstance(checkpoint.get('teacher'), dict):
        state = {k: v for k, v in checkpoint['teacher'].items()
                 if not k.removeprefix('module.').startswith('head.')}
    else:
        state = checkpoint
    out = {}
    for key, value in state.items():
        if isinstance(value, Tensor):
            out[key.removeprefix('module.').removeprefix('backbone.')] = value
    if not out:
        raise CheckpointError(f'{path}: no backbone weights found (prefix={prefix!r}; '
                              f'top-level keys {sorted(checkpoint)[:10]})')
    return out
