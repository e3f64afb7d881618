"""Losses. lightly's :class:`DINOLoss` is registered as is (teacher views first)."""
from lightly.loss import DINOLoss

from slpd_plugin.registry import MODELS

MODELS.register_module('DINOLoss', module=DINOLoss)

__all__ = ['DINOLoss']
