"""Take the feature width ``D`` of a run from its store.

A store (region store, lattice store or patch-feature folder read in place) records the
width ``C`` of its grid cells (the patch encoder's ``D``); the
model's ``backbone.in_channels`` and the dataset's ``channels`` must both equal it.
:func:`fill_feature_width` reads it from ``train_dataloader.dataset.store`` and writes it
into both keys, so a config trains on a store of any width unchanged. The one key that
pins a width is ``train_dataloader.dataset.channels``: when a config sets it (the paper
configs do, e.g. 1024 for UNI) a store of another width is refused, naming that key.
"""
from __future__ import annotations

import inspect
from typing import Any

from mmengine.config import Config

from slpd_plugin import registry as R
from slpd_plugin.datasets.lattice import open_regions
from slpd_plugin.utils.cli import UserError

from .config_check import ConfigCheckError

PIN_KEY = 'train_dataloader.dataset.channels'
BACKBONE_KEY = 'model.backbone.in_channels'


def store_width(location: Any) -> int | None:
    """The channel count ``C`` of the store at ``location``, or None.

    None when it cannot be opened (building the dataset reports that, naming the store).
    """
    if not isinstance(location, str):
        return None
    try:
        store = open_regions(location)  # a region store, lattice store or TRIDENT folder
    except (UserError, OSError):
        return None
    try:
        return store.channels
    finally:
        store.close()


def _takes_in_channels(backbone: dict) -> bool:
    kind = backbone.get('type')
    target = R.MODELS.get(kind) if isinstance(kind, str) else kind
    if 'in_channels' in backbone or target is None:
        return 'in_channels' in backbone
    try:
        return 'in_channels' in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def fill_feature_width(cfg: Config) -> str | None:
    """Set the backbone's and the dataset's ``channels`` to the training store's width.

    That is ``model.backbone.in_channels`` and ``train_dataloader.dataset.channels``.

    Args:
        cfg: The merged config; changed in place.

    Returns:
        A line saying what changed (e.g. ``model.backbone.in_channels: 32 -> 64 (the
        store's width)``), or None when nothing did or the store cannot be opened.

    Raises:
        ConfigCheckError: if ``train_dataloader.dataset.channels`` pins another width.
    """
    dataset = (cfg.get('train_dataloader') or {}).get('dataset')
    if not isinstance(dataset, dict):
        return None
    width = store_width(dataset.get('store'))
    if width is None:
        return None
    pinned = dataset.get('channels')
    if pinned is not None and pinned != width:
        raise ConfigCheckError(
            f'{PIN_KEY}={pinned}, but the store {dataset["store"]} holds {width}-d '
            f'features: set {PIN_KEY}={width}, or {PIN_KEY}=None to take the width from '
            'the store')
    dataset['channels'] = width
    backbone = (cfg.get('model') or {}).get('backbone')
    if not isinstance(backbone, dict) or not _takes_in_channels(backbone):
        return None
    before = backbone.get('in_channels')
    backbone['in_channels'] = width
    if before == width:
        return None
    return f'{BACKBONE_KEY}: {before} -> {width} (the width of {dataset["store"]})'
