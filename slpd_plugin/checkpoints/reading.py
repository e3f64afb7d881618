"""Read what the tools need from a training checkpoint, with errors that say what to do.

A checkpoint of ``tools/train.py`` loads with ``torch.load(weights_only=True)`` (through
:func:`~slpd_plugin.utils.weights.load_weights_only`, the package's one loader) and
holds ``state_dict`` (student, teacher, centres), ``meta`` (``cfg`` as text,
``dataset_meta`` with the ``store`` it was trained on) and, once the first prototype
refresh has run, the bank under :data:`~slpd_plugin.prototypes.bank.CKPT_KEY` (its
tensors plus the ``epoch`` it was built for).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from slpd_plugin.models.backbones.special_tokens import fit_special_tokens
from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.prototypes.bank import CKPT_KEY, bank_from_checkpoint
from slpd_plugin.prototypes.settings import REFRESH_DEFAULTS, RefreshSettings
from slpd_plugin.registry import MODELS
from slpd_plugin.utils.weights import CheckpointError, encoder_state, load_weights_only

__all__ = ['BankCheckpoint', 'build_model', 'checkpoint_config', 'checkpoint_store',
           'load_bank', 'load_checkpoint', 'load_encoder', 'prototype_settings']


@dataclass
class BankCheckpoint:
    """A prototype bank read from a checkpoint.

    Attributes:
        bank: The bank, on the CPU.
        epoch: The 0-based epoch the bank was built for (at that epoch's start).
        path: The checkpoint file.
    """

    bank: PrototypeBank
    epoch: int
    path: Path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint of ``tools/train.py`` on the CPU, weights-only.

    Args:
        path: A ``.pth`` file, e.g. ``work_dirs/demo_slpd/epoch_4.pth``.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If the file is not a weights-only checkpoint with a ``state_dict``
            (:class:`~slpd_plugin.utils.weights.CheckpointError`).
    """
    ckpt = load_weights_only(path, 'checkpoint')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise CheckpointError(f'{path} is not a training checkpoint of tools/train.py '
                              f'(expected a dict with a "state_dict" key)')
    return ckpt


def load_bank(ckpt: dict, path: str | os.PathLike) -> BankCheckpoint:
    """The prototype bank saved in a checkpoint.

    Args:
        ckpt: Output of :func:`load_checkpoint`.
        path: The checkpoint's file, for messages.

    Returns:
        BankCheckpoint: The bank and the epoch it was built for.

    Raises:
        ValueError: If the checkpoint has no (or a malformed) prototype bank.
    """
    try:
        loaded = bank_from_checkpoint(ckpt)
    except ValueError as err:
        raise ValueError(f'{path}: malformed prototype bank: {err}') from None
    if loaded is None:
        raise ValueError(
            f'{path} has no prototype bank (checkpoint key {CKPT_KEY!r}): it was saved '
            f'before the first prototype refresh (epoch < warm_epochs) or by a DINO-only '
            f'config; use a checkpoint of an SLPD run from after its warm-up epochs')
    bank, epoch = loaded
    return BankCheckpoint(bank.to('cpu'), epoch, Path(path))


def checkpoint_config(ckpt: dict, path: str | os.PathLike) -> Config:
    """The training config saved in the checkpoint's ``meta['cfg']``.

    Raises:
        ValueError: If the checkpoint has no config text.
    """
    text = (ckpt.get('meta') or {}).get('cfg')
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'{path} has no training config (meta["cfg"]); expected a '
                         f'checkpoint written by tools/train.py')
    return Config.fromstring(text, '.py')


def prototype_settings(ckpt: dict, path: str | os.PathLike) -> RefreshSettings:
    """The prototype hook's settings the bank was built with.

    Returns:
        RefreshSettings: What the config's ``default_hooks.prototype`` sets, and the
        hook's defaults (:data:`~slpd_plugin.prototypes.settings.REFRESH_DEFAULTS`) for
        the rest.
    """
    hook = checkpoint_config(ckpt, path).get('default_hooks', {}).get('prototype') or {}
    names = [f.name for f in dataclasses.fields(RefreshSettings)]
    return dataclasses.replace(REFRESH_DEFAULTS, **{k: hook[k] for k in names if k in hook})


def checkpoint_store(ckpt: dict) -> str | None:
    """The store the checkpoint's model was trained on (``dataset_meta['store']``) or None."""
    store = ((ckpt.get('meta') or {}).get('dataset_meta') or {}).get('store')
    return str(store) if store else None


def build_model(ckpt: dict, path: str | os.PathLike, config: Config | None = None,
                encoder: str | None = None) -> nn.Module:
    """Build the SLPD model of a config and load a checkpoint's weights into it.

    Args:
        ckpt: Output of :func:`load_checkpoint`.
        path: The checkpoint's file, for messages.
        config: The model's config; None for the one saved in the checkpoint.
            Defaults to None.
        encoder: None to load every weight (student, teacher, centres); ``'teacher'`` or
            ``'student'`` to load only that encoder's backbone (strictly). Defaults to
            None.

    Returns:
        nn.Module: The :class:`~slpd_plugin.models.SLPD` model in eval mode, on the CPU.

    Raises:
        ValueError: If the config has no model or the weights do not fit it
            (:class:`~slpd_plugin.utils.weights.CheckpointError`).
    """
    own = config is None
    cfg = checkpoint_config(ckpt, path) if own else config
    # The config's scope, not whichever scope an earlier runner in this process left
    # current (a plain mmengine Runner leaves 'mmengine', where our types do not resolve).
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'slpd_plugin'):
        model = MODELS.build(cfg.model)
    of = 'its own config' if own else f'{cfg.filename or "the given config"}'
    if encoder is None:
        missing, unexpected = model.load_state_dict(ckpt['state_dict'], strict=False)
        if missing or unexpected:
            raise CheckpointError(f'{path}: weights do not fit the model of {of} '
                                  f'(missing {missing[:3]}, unexpected {unexpected[:3]})')
        return model.eval()
    backbone = getattr(model, encoder).backbone
    state, _ = fit_special_tokens(encoder_state(ckpt, encoder, 'backbone', source=str(path)),
                                  backbone)
    try:
        backbone.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = ' '.join(str(err).split())[:400]
        raise CheckpointError(f'{path} does not fit the model of {of} (pass the config '
                              f'the run was trained with): {detail}') from None
    return model.eval()


def load_encoder(config: str | os.PathLike, checkpoint: str | os.PathLike,
                 encoder: str = 'teacher', cfg_options: dict | None = None) -> nn.Module:
    """Build the model of a config file and load one encoder's backbone from a checkpoint.

    Args:
        config: The training config (or the copy the run saved in its work dir).
        checkpoint: A checkpoint of this plugin's runner, or a DINO-style training
            checkpoint of HIPT (``vit4k_xs_dino.pth``) or SLPD (``main_SLPD.py``), loaded
            weights-only.
        encoder: ``'teacher'`` or ``'student'``. Defaults to 'teacher'.
        cfg_options: Overrides merged into the config, as ``--cfg-options`` of training.
            Defaults to None.

    Returns:
        The :class:`~slpd_plugin.models.SLPD` model in eval mode; only
        ``{encoder}.backbone`` carries trained weights.

    Raises:
        FileNotFoundError: if there is no such checkpoint.
        ValueError: if it cannot be loaded weights-only, lacks the encoder or does not
            fit the config (:class:`~slpd_plugin.utils.weights.CheckpointError`).
    """
    cfg = Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    ckpt = load_weights_only(checkpoint, 'checkpoint')
    if not isinstance(ckpt, dict) or ('state_dict' not in ckpt and encoder not in ckpt):
        raise CheckpointError(f'{checkpoint}: expected a training checkpoint of '
                              f'tools/train.py (a "state_dict" key) or a DINO-style one '
                              f'of HIPT/SLPD (a "{encoder}" key)')
    return build_model(ckpt, checkpoint, cfg, encoder)
