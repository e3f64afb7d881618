# SLPD on TCGA-NSCLC region grids, paper settings (docs/algorithm.md, Optimisation):
# DINO-4K plus intra- and inter-slide prototype distillation, K=4 prototypes per slide
# (slides with >= 32 regions), 1 neighbour slide, prototype losses from 0-based epoch 21:
# upstream's `epoch > warm_epoch` with warm_epoch=20, i.e. 21 epochs of plain DINO
# (warm_epochs=21).
#   tools/dist_train.sh configs/slpd_lung.py 4 --amp
_base_ = ['dino4k_lung.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter',
                                 intra_weight=1.0, inter_weight=1.0))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=4, min_regions=32,
                                    num_neighbors=1, warm_epochs=21))
