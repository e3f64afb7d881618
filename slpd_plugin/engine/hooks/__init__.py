"""Hooks: teacher EMA and temperature, logging, consistency checks, prototypes."""
from .deferred_scalars_hook import DeferredRuntimeInfoHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .prototype_hook import PrototypeHook
from .random_state_hook import RandomStateHook
from .run_layout_hook import RunLayoutHook
from .schedule_check_hook import ScheduleCheckHook
from .state_consistency_hook import StateConsistencyHook
from .teacher_ema_hook import TeacherEMAHook
from .teacher_temp_hook import TeacherTempHook
from .weight_decay_log_hook import WeightDecayLogHook

__all__ = ['DeferredRuntimeInfoHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'PrototypeHook',
           'RandomStateHook', 'RunLayoutHook', 'ScheduleCheckHook', 'StateConsistencyHook',
           'TeacherEMAHook', 'TeacherTempHook', 'WeightDecayLogHook']
