"""Read what the tools need from a training checkpoint, with errors that say what to do.

A checkpoint of ``tools/train.py`` loads with ``torch.load(weights_only=True)`` and
holds ``state_dict`` (student, teacher, centres), ``meta`` (``cfg`` as text,
``dataset_meta`` with the ``store`` it was trained on) and, once the first prototype
refresh has run, ``prototype_bank`` (the bank's tensors plus the ``epoch`` it was built
for).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.config import Config

from slpd_plugin.engine.hooks.prototype_hook import CKPT_KEY
from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.registry import MODELS

#: Prototype-hook settings used when a config does not set them (PrototypeHook defaults).
HOOK_DEFAULTS = dict(embedding='z', crop=14, num_clusters=4, min_regions=32, num_neighbors=1)


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
        ValueError: If the file is not a weights-only checkpoint with a ``state_dict``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path} (expected a .pth file '
                                f'written by tools/train.py, e.g. work_dirs/NAME/epoch_N.pth)')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch.load on arbitrary bytes can raise nearly anything
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f'{path} is not a checkpoint loadable with torch.load('
                         f'weights_only=True): {reason}') from None
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise ValueError(f'{path} is not a training checkpoint of tools/train.py (expected a '
                         f'dict with a "state_dict" key)')
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
    state = dict(ckpt.get(CKPT_KEY) or {})
    if not state:
        raise ValueError(
            f'{path} has no prototype bank (checkpoint key {CKPT_KEY!r}): it was saved '
            f'before the first prototype refresh (epoch < warm_epochs) or by a DINO-only '
            f'config; use a checkpoint of an SLPD run from after its warm-up epochs')
    epoch = int(state.pop('epoch', -1))
    try:
        bank = PrototypeBank.from_state_dict(state)
    except ValueError as err:
        raise ValueError(f'{path}: malformed prototype bank: {err}') from None
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


def prototype_settings(ckpt: dict, path: str | os.PathLike) -> dict:
    """The prototype hook's settings the bank was built with.

    Returns:
        dict: ``embedding`` (``'z'`` or ``'cls'``), ``crop``, ``num_clusters``,
        ``min_regions`` and ``num_neighbors``; the hook's defaults where the config
        does not set them.
    """
    hook = checkpoint_config(ckpt, path).get('default_hooks', {}).get('prototype') or {}
    return {key: hook.get(key, default) for key, default in HOOK_DEFAULTS.items()}


def checkpoint_store(ckpt: dict) -> str | None:
    """The store the checkpoint's model was trained on (``dataset_meta['store']``) or None."""
    store = ((ckpt.get('meta') or {}).get('dataset_meta') or {}).get('store')
    return str(store) if store else None


def build_model(ckpt: dict, path: str | os.PathLike) -> torch.nn.Module:
    """Build the SLPD model of a checkpoint from its saved config and load its weights.

    Args:
        ckpt: Output of :func:`load_checkpoint`.
        path: The checkpoint's file, for messages.

    Returns:
        torch.nn.Module: The :class:`~slpd_plugin.models.SLPD` model in eval mode, on the
        CPU, with the checkpoint's student and teacher.

    Raises:
        ValueError: If the config or the weights do not fit.
    """
    cfg = checkpoint_config(ckpt, path)
    model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(ckpt['state_dict'], strict=False)
    if missing or unexpected:
        raise ValueError(f'{path}: weights do not fit the model of its own config '
                         f'(missing {missing[:3]}, unexpected {unexpected[:3]})')
    return model.eval()
