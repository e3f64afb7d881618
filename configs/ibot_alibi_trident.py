# MOOZY's stage-1 recipe (MOOZY, ECCV 2026; every value below is a default of
# docs/stage_1.md in github.com/AtlasAnalyticsLab/MOOZY unless a comment says otherwise)
# on TRIDENT patch features read in place as slide lattices (docs/data.md, "Slide
# lattices: regions of any size, windows anywhere"; docs/algorithm.md, "The slide-encoder
# recipe"):
# - DINO on the CLS token and iBOT on the cell tokens of block-masked global windows;
# - 2 global 20x20 and 4 local 12x12 windows drawn anywhere in each slide (tissue >= 25 %,
#   3 draws), each flipped and rotated with its mask;
# - an ALiBi ViT of 768 dims, 6 blocks, 12 heads ('titan' = MOOZY's base_half_depth) with
#   4 register tokens, drop-path 0.1; a head of 8192 prototypes, 2048 hidden, 256-d
#   bottleneck; slide embeddings of the whole slide (tools/extract_embeddings.py
#   --level slide).
# Features: UNI (D=1024) at 20x, 256 px; MOOZY used 384-d Lunit ViT-S/8 features: change
# the store path and `train_dataloader.dataset.channels` (the backbone's width follows).
#   tools/dist_train.sh configs/ibot_alibi_trident.py 8 --amp
# Deviations from MOOZY, each marked "deviation" below: no dropout inside the MLPs (MOOZY:
# 0.1), a rotation on 3 of 4 views (MOOZY: on half of them), DINO's weight-decay groups.
_base_ = [
    '_base_/datasets/region_grids.py',
    '_base_/schedules/dino_100e.py',
    '_base_/default_runtime.py',
]

max_epochs = 200
warmup_epochs = 5
out_dim = 8192

model = dict(
    type='SLPD',
    data_preprocessor=dict(type='WindowViewsPreprocessor'),
    # deviation: our blocks have no dropout inside the MLP (MOOZY --dropout 0.1)
    backbone=dict(type='ALiBiViT', arch='titan', in_channels=1024, drop_path_rate=0.1,
                  num_registers=4),
    head=dict(type='DINOHead', hidden_dims=2048, bottleneck_dims=256, out_channels=out_dim),
    loss=dict(type='DINOLoss', output_dim=out_dim, student_temp=0.1, center_momentum=0.9),
    # iBOT on the cells of masked global windows; the DINO head scores them (shared head)
    patch_loss=dict(type='IBOTPatchLoss', student_temp=0.1, center_momentum=0.9),
    mask_generator=dict(type='BlockMaskGenerator', mask_probability=0.5, min_ratio=0.1,
                        max_ratio=0.5, min_num_patches=4, min_aspect=0.3),
)

# Micro batch 64 slides per GPU (the loader of region_grids.py otherwise); windows as
# MOOZY's --global_crop_size 20, --local_crop_size 12, --min_window_patch_ratio 0.25,
# --crop_resample_attempts 3.
# deviation: rot90=True turns each view by 0/90/180/270 degrees uniformly (MOOZY: 90/180/270
# with --rotate_prob 0.5).
train_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='SlideWindowViewsDataset',
                 store='trident_job/20x_256px_0px_overlap/features_uni_v1',
                 num_global=2, global_size=20, num_local=4, local_size=12,
                 min_tissue=0.25, max_tries=3, hflip_prob=0.5, vflip_prob=0.5, rot90=True,
                 channels=1024),
)

# AdamW, lr 5e-4 x global batch / 256, 5 warm-up epochs then cosine to 2e-6, weight decay
# cosine 0.04 -> 0.4 (0 on biases and norms), per-tensor gradient clipping 0.3, the last
# head layer frozen for 3 epochs.
optim_wrapper = dict(clip_per_tensor=0.3, freeze_last_layer_epochs=3)  # else dino_100e.py's
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=2e-6, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
         eta_min_ratio=10.0, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)

# Teacher EMA 0.996 -> 1 (cosine); teacher temperatures 0.04 -> 0.07 over 30 epochs for
# the CLS and the patch loss alike.
default_hooks = dict(
    teacher_ema=dict(type='TeacherEMAHook', momentum=0.996, end_momentum=1.0),
    teacher_temp=dict(type='TeacherTempHook', temp=0.07, warmup_temp=0.04, warmup_epochs=30,
                      patch_temp=0.07, patch_warmup_temp=0.04),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
)
