# SLPD with the paper's settings (as configs/slpd_lung.py: K=4 prototypes per slide for
# slides with >= 32 regions, 1 neighbour slide, prototype losses from 0-based epoch 21,
# as upstream's warm_epoch=20) on region
# grids made from TRIDENT patch features of UNI (D=1024) on 256-px patches at 20x:
# G=16 patches per side gives HIPT's 4096-px regions. ViT-4K-XS with a 1024-d input.
#   python tools/ingest.py trident_job/20x_256px_0px_overlap/features_uni_v1 \
#       --format trident --store data/uni_trident_store
#   tools/dist_train.sh configs/slpd_uni_trident.py 4 --amp
_base_ = [
    '_base_/models/dino4k_vit4k_xs.py',
    '_base_/datasets/patch_feature_grids.py',
    '_base_/schedules/dino_100e.py',
    '_base_/default_runtime.py',
]
model = dict(backbone=dict(in_channels=1024),
             prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter',
                                 intra_weight=1.0, inter_weight=1.0))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=4, min_regions=32,
                                    num_neighbors=1, warm_epochs=21))
train_dataloader = dict(dataset=dict(store='data/uni_trident_store', channels=1024))
