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

DINO-style training checkpoints (DINO's ``main_dino.py`` and the scripts built on it:
HIPT's ``main_dino4k.py``, whose ``vit4k_xs_dino.pth`` is such a file, and SLPD's
``main_SLPD.py``) save ``{'student', 'teacher', 'optimizer', 'epoch', 'args',
'dino_loss'[, 'fp16_scaler']}``. Besides tensors and plain values they hold exactly two
kinds of objects, which :data:`TRAINING_CHECKPOINT_GLOBALS` allows and nothing else:
``args``, the run's ``argparse.Namespace`` of plain values; and numpy ``float64``
scalars, the optimizer's ``lr`` and ``weight_decay``, which these scripts set every
iteration from numpy schedule arrays.
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ['CheckpointError', 'TRAINING_CHECKPOINT_GLOBALS', 'encoder_state',
           'load_backbone_weights', 'load_weights_only']

_NUMPY_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor

#: The non-tensor types of DINO-style training checkpoints, for
#: ``torch.serialization.safe_globals``: the ``args`` Namespace, and numpy float64 scalars
#: (their reconstructor under numpy 1's and numpy 2's module names, the dtype and its
#: class). Nothing else is unpickled.
TRAINING_CHECKPOINT_GLOBALS = [
    argparse.Namespace, np.dtype, type(np.dtype(np.float64)),
    (_NUMPY_SCALAR, 'numpy.core.multiarray.scalar'),
    (_NUMPY_SCALAR, 'numpy._core.multiarray.scalar'),
]


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded weights-only, lacks the weights, or they do not fit."""


def load_weights_only(path: str | os.PathLike, what: str = 'checkpoint',
                      map_location: str | Callable = 'cpu') -> Any:
    """Load a local file with ``torch.load(weights_only=True)``.

    No object is unpickled other than those of :data:`TRAINING_CHECKPOINT_GLOBALS`.

    Args:
        path: The file, e.g. ``work_dirs/slpd_lung/epoch_100.pth``.
        what: Names the file in error messages. Defaults to 'checkpoint'.
        map_location: As for ``torch.load``. Defaults to 'cpu'.

    Returns:
        What the file holds (tensors, plain values and containers of them; a DINO-style
        checkpoint's ``args`` Namespace and numpy float64 scalars).

    Raises:
        FileNotFoundError: if ``path`` is not a local file (URLs are not fetched).
        CheckpointError: if the file is not loadable weights-only.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: {what} not found (a local file is needed: URLs '
                                f'are not fetched, download it first)')
    try:
        with torch.serialization.safe_globals(TRAINING_CHECKPOINT_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch.load of arbitrary bytes can raise nearly anything
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ''
        raise CheckpointError(
            f'{path}: not loadable weights-only with torch.load(weights_only=True) '
            f'({type(err).__name__}: {reason}); nothing is ever unpickled, so a {what} '
            f'must hold only tensors and plain values (and, as DINO-style training '
            f'checkpoints do, an argparse.Namespace and numpy float64 scalars)') from None


def encoder_state(checkpoint: dict, encoder: str = 'teacher',
                  part: str = 'backbone', source: str = 'checkpoint') -> dict[str, Tensor]:
    """The weights of one part of the student or teacher, without prefixes.

    Args:
        checkpoint: A loaded checkpoint: ``{'state_dict': {...}, ...}`` of an
            :class:`~slpd_plugin.models.SLPD` model, or a DINO-style training checkpoint
            (HIPT's ``main_dino4k.py``, SLPD's ``main_SLPD.py``), whose ``'student'`` and
            ``'teacher'`` are state dicts with ``backbone.`` / ``head.`` names (the
            student's under DDP's ``module.``).
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
    if state is None and isinstance(checkpoint, dict) and isinstance(
            checkpoint.get(encoder), dict):  # DINO-style: {'teacher': {'backbone.x': ...}}
        state = {f'{encoder}.{k.removeprefix("module.")}': v
                 for k, v in checkpoint[encoder].items()}
    if not isinstance(state, dict):
        raise CheckpointError(f'{source}: expected a dict with a "state_dict" (this '
                              f'plugin) or a "{encoder}" state dict (DINO/HIPT/SLPD)')
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
