# Runtime shared by every config: registry scope, hooks, logging, environment.
default_scope = 'slpd_plugin'
custom_imports = dict(imports=['slpd_plugin'], allow_failed_imports=False)
runner_type = 'slpd_plugin.SLPDRunner'

default_hooks = dict(
    runtime_info=dict(type='DeferredRuntimeInfoHook'),  # no host sync per step
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # DINO/SLPD hooks, named so that one value can be overridden by key, e.g.
    # --cfg-options default_hooks.teacher_temp.warmup_epochs=30
    teacher_ema=dict(type='TeacherEMAHook', momentum=0.996, end_momentum=1.0),
    teacher_temp=dict(type='TeacherTempHook', temp=0.04, warmup_temp=0.04, warmup_epochs=0),
    weight_decay_log=dict(type='WeightDecayLogHook'),
    state_consistency=dict(type='StateConsistencyHook', interval=1),  # no-op without DDP
    random_state=dict(type='RandomStateHook'),  # resumed runs repeat the same draws
    run_layout=dict(type='RunLayoutHook'),  # refuse a resume that would shift schedules
    non_finite_loss=dict(type='NonFiniteLossHook'),  # stop after NaN/Inf, name step+slides
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py uses gloo when CUDA is unavailable
)
tf32 = True  # fp32 matmuls/convs on Ampere+ GPUs in TF32 (docs/distributed.md); False: exact

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True, window_size=10)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
