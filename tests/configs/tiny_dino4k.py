# The CPU demo shrunk further so that a training test takes seconds.
_base_ = ['../../configs/demo_dino4k.py']
out_dim = 128
model = dict(
    data_preprocessor=dict(num_local=2),
    backbone=dict(in_channels=32, depth=1),
    head=dict(hidden_dims=64, bottleneck_dims=32, out_channels=out_dim),
    loss=dict(output_dim=out_dim),
)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(channels=32, generate=dict(num_slides=8, min_regions=4, max_regions=10,
                                            channels=32, num_phenotypes=4,
                                            phenotypes_per_slide=(1, 2), seed=0)))
train_cfg = dict(max_epochs=2)
default_hooks = dict(
    logger=dict(interval=1),
    teacher_temp=dict(warmup_temp=0.02, warmup_epochs=1),
    state_consistency=dict(dump=True))
