# HIPT's DINO-4K baseline on TCGA-NSCLC region grids, paper settings:
# 4 GPUs x 128 regions, 100 epochs, fp16/bf16 autocast (tools/train.py --amp).
#   tools/dist_train.sh configs/dino4k_lung.py 4 --amp
_base_ = [
    '_base_/models/dino4k_vit4k_xs.py',
    '_base_/datasets/region_grids.py',
    '_base_/schedules/dino_100e.py',
    '_base_/default_runtime.py',
]
train_dataloader = dict(dataset=dict(store='data/tcga_lung_store'))
