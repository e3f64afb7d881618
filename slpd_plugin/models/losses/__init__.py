"""Losses, in strict fp32 (autocast and TF32 off), from one shared student log-softmax.

The students' log-softmax is made once per step (:func:`student_log_probs`); the losses'
EMA centres share one all-reduce per step inside :func:`merged_center_updates`.
``DINOLoss`` is lightly's (teacher views first) with those changes, ``IBOTPatchLoss``
lightly's iBOT patch loss with them.
"""
from .center_sync import merged_center_updates, reduce_then
from .dino_loss import TEACHER_TEMP, DINOLoss
from .ibot_loss import IBOTPatchLoss
from .log_probs import student_log_probs
from .prototype_loss import prototype_cross_entropy, update_center

__all__ = ['DINOLoss', 'IBOTPatchLoss', 'TEACHER_TEMP', 'merged_center_updates',
           'prototype_cross_entropy', 'reduce_then', 'student_log_probs', 'update_center']
