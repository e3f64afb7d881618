# configs/ibot_alibi_trident.py (MOOZY's stage-1 recipe) plus SLPD's slide-level
# prototype terms (SLPD, MICCAI 2023, Sec. 2.2-2.3) over windows (docs/algorithm.md,
# "SLPD over windows"): per slide, K=4 prototypes clustered from the teacher's
# embeddings of the slide's fixed 20x20 window tiling, 1 neighbour slide, intra- and
# inter-slide terms with weight 1 as in configs/slpd_lung.py.
#   tools/dist_train.sh configs/slpd_ibot_alibi_trident.py 8 --amp
# Choices over windows (no paper value exists for them):
# - each training sample's prototype is the one of its slide nearest the teacher's
#   embedding of its global windows (assign_from='teacher'): a window drawn anywhere is
#   not one of the tiles the prototypes were clustered from;
# - min_regions=20 tiles of 20x20 cover about the area of the paper's 32 regions of 16x16;
# - the prototype terms start at 0-based epoch 21 as in SLPD's 100-epoch schedule (its
#   warm-up lets the teacher separate tissue first; it is not scaled with the 200 epochs).
_base_ = ['ibot_alibi_trident.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter',
                                 intra_weight=1.0, inter_weight=1.0,
                                 assign_from='teacher'))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=4, min_regions=20,
                                    num_neighbors=1, warm_epochs=21, source='pass'))
