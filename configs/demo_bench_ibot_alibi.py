# iBOT-ALiBi of `tools/run_demo.py --compare`: MOOZY's stage-1 recipe
# (configs/ibot_alibi_trident.py) at the budget of demo_bench_dino4k.py, on the synthetic
# WSI benchmark's slides written as a TRIDENT folder and read in place as lattices
# (run_demo.py sets the folder under --out and the seed). As in demo_dino4k.py: 4 epochs,
# lr 4e-3, teacher EMA 0.99 -> 0.999, the teacher temperature at 0.04 throughout, a
# 2-block 192-d encoder and a 4096-d head (512 hidden), batches of 32, the last partial
# batch kept. Budget: the same epochs, batches and schedules; a sample per 20x20 tile of
# each slide per epoch (12 batches per epoch on the full benchmark, DINO-4K 16), each of
# 2.6 times the cells of a DINO-4K sample (2 x 20² + 4 x 12² against 2 x 14² + 4 x 6²).
_base_ = ['ibot_alibi_trident.py']
max_epochs = 4
out_dim = 4096
model = dict(
    backbone=dict(arch='xs', depth=2, in_channels=384),
    head=dict(hidden_dims=512, out_channels=out_dim),
    loss=dict(output_dim=out_dim),
)
train_dataloader = dict(
    batch_size=32, num_workers=1, pin_memory=False, drop_last=False,
    dataset=dict(store='work_dirs/demo/benchmark/trident', channels=None))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
         eta_min_ratio=10.0, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
optim_wrapper = dict(optimizer=dict(lr=4e-3), clip_per_tensor=3.0, freeze_last_layer_epochs=1)
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1),
                     teacher_ema=dict(momentum=0.99, end_momentum=0.999),
                     teacher_temp=dict(temp=0.04, warmup_temp=0.04, warmup_epochs=0,
                                       patch_temp=0.04, patch_warmup_temp=0.04))
