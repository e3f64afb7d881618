# CPU demo: DINO-4K on a small synthetic store (generated on first use by the demo
# dataset, slpd_plugin.demo.SyntheticRegionDataset), a few minutes.
# Shrunk from the paper's settings: 2-block ViT-4K, 4096-d head output, 4 local crops,
# 4 epochs; lr and teacher EMA scaled to this short budget (with the paper's 5e-4 and
# 0.996 -> 1 the teacher barely leaves its initialisation in ~100 iterations); the last
# partial batch is kept (drop_last=False: on ~900 regions it is a few per cent of them).
# The paper configs (dino4k_lung.py) keep everything paper-exact.
_base_ = [
    '_base_/models/dino4k_vit4k_xs.py',
    '_base_/datasets/region_grids.py',
    '_base_/schedules/dino_100e.py',
    '_base_/default_runtime.py',
]
max_epochs = 4
out_dim = 4096

model = dict(
    data_preprocessor=dict(num_local=4),
    backbone=dict(depth=2),
    head=dict(hidden_dims=512, out_channels=out_dim),
    loss=dict(output_dim=out_dim),
)
train_dataloader = dict(
    batch_size=32, num_workers=1, pin_memory=False, drop_last=False,
    dataset=dict(
        type='SyntheticRegionDataset',
        store='data/demo_store',
        generate=dict(num_slides=40, min_regions=6, max_regions=40, channels=384,
                      num_phenotypes=6, phenotypes_per_slide=(1, 3), seed=0)))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
         eta_min_ratio=10.0, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
optim_wrapper = dict(optimizer=dict(lr=4e-3))
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1),
                     teacher_ema=dict(momentum=0.99, end_momentum=0.999))
