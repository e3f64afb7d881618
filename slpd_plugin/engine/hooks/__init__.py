"""Hooks: teacher EMA and temperature, logging, consistency checks, prototypes."""
from .state_consistency_hook import StateConsistencyHook
from .teacher_ema_hook import TeacherEMAHook
from .teacher_temp_hook import TeacherTempHook
from .weight_decay_log_hook import WeightDecayLogHook

__all__ = ['StateConsistencyHook', 'TeacherEMAHook', 'TeacherTempHook',
           'WeightDecayLogHook']
