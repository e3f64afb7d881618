# CPU demo of SLPD: the DINO-4K demo plus prototypes from epoch 2 (0-based) on the same
# synthetic store (K=3 prototypes for slides with >= 12 regions).
_base_ = ['demo_dino4k.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter'))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=3, min_regions=12,
                                    num_neighbors=1, warm_epochs=2, num_workers=0))
