"""Losses. lightly's :class:`DINOLoss` is registered as is (teacher views first)."""
from lightly.loss import DINOLoss

from slpd_plugin.registry import MODELS

from .prototype_loss import prototype_cross_entropy, update_center

MODELS.register_module('DINOLoss', module=DINOLoss)

__all__ = ['DINOLoss', 'prototype_cross_entropy', 'update_center']
