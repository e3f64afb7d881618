# SLPD with the paper's settings (as configs/slpd_lung.py) on TITAN's input: TRIDENT
# patch features of CONCH v1.5 (D=768) on 512-px patches at 20x, G=16 patches per side =
# 8192-px regions, encoded by the TITAN-size ALiBi ViT (768-d, 6 blocks, 12 heads; no
# positional embedding, so the 14x14 and 6x6 crops need no interpolation).
#   python tools/ingest.py trident_job/20x_512px_0px_overlap/features_conch_v15 \
#       --format trident --store data/conch15_8k_store
#   tools/dist_train.sh configs/slpd_conch15_8k.py 4 --amp
# min_regions counts regions, and an 8192-px region covers four 4096-px ones: 32 regions
# here need as much tissue as 128 of HIPT's. If the bank's valid-slide count (logged after
# each refresh) is low, lower it, e.g. --cfg-options default_hooks.prototype.min_regions=8
# (the tissue of the paper's 32 regions of 4096 px).
_base_ = [
    '_base_/models/dino_alibi_vit_titan.py',
    '_base_/datasets/patch_feature_grids.py',
    '_base_/schedules/dino_100e.py',
    '_base_/default_runtime.py',
]
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter',
                                 intra_weight=1.0, inter_weight=1.0))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=4, min_regions=32,
                                    num_neighbors=1, warm_epochs=21))
train_dataloader = dict(dataset=dict(store='data/conch15_8k_store', channels=768))
