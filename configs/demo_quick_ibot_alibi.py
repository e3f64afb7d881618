# iBOT-ALiBi of `tools/run_demo.py --quick --compare`: demo_bench_ibot_alibi.py shrunk as
# demo_quick_dino4k.py shrinks DINO-4K (a 1-block encoder, a 128-d head, batches of 16,
# 2 epochs); the feature width follows the TRIDENT files.
_base_ = ['demo_bench_ibot_alibi.py']
out_dim = 128
model = dict(
    backbone=dict(depth=1),
    head=dict(hidden_dims=64, bottleneck_dims=32, out_channels=out_dim),
    loss=dict(output_dim=out_dim),
)
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False)
train_cfg = dict(max_epochs=2)
