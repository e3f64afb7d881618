# DINO-4K of `tools/run_demo.py --quick`: a 1-block ViT-4K on the tiny benchmark (C=32),
# 2 epochs, so the demo's test takes about a minute. The feature width follows the store
# (tools/train.py fills model.backbone.in_channels and the dataset's channels from it).
_base_ = ['demo_bench_dino4k.py']
out_dim = 128
model = dict(
    data_preprocessor=dict(num_local=2),
    backbone=dict(in_channels=32, depth=1),
    head=dict(hidden_dims=64, bottleneck_dims=32, out_channels=out_dim),
    loss=dict(output_dim=out_dim),
)
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                        dataset=dict(channels=None))
train_cfg = dict(max_epochs=2)
