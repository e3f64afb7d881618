"""Losses, computed in fp32 under autocast; their EMA centres share one all-reduce per
step inside :func:`merged_center_updates`. ``DINOLoss`` is lightly's (teacher views
first) with those two changes."""
from .center_sync import merged_center_updates, reduce_then
from .dino_loss import TEACHER_TEMP, DINOLoss
from .prototype_loss import prototype_cross_entropy, update_center

__all__ = ['DINOLoss', 'TEACHER_TEMP', 'merged_center_updates', 'prototype_cross_entropy',
           'reduce_then', 'update_center']
