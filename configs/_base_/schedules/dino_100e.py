# DINO/HIPT schedule (docs/algorithm.md, Optimisation): AdamW, lr 5e-4 x global_batch/256
# with 10 warm-up epochs then cosine to 1e-6, weight decay cosine 0.04 -> 0.4 (0 on biases
# and norms), per-tensor gradient clipping 3.0, last layer frozen in epoch 0. (Teacher EMA
# 0.996 -> 1 and the teacher temperature are hooks in default_runtime.py.)
max_epochs = 100
warmup_epochs = 10

optim_wrapper = dict(
    type='DINOOptimWrapper',
    constructor='SLPDOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.04, betas=(0.9, 0.999), fused=True),
    clip_per_tensor=3.0,
    freeze_last_layer_epochs=1,
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
         eta_min_ratio=10.0, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=256, enable=True)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
