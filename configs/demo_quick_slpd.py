# SLPD of `tools/run_demo.py --quick`: demo_quick_dino4k.py plus the prototype terms from
# the second epoch; K=2 prototypes for slides with >= 4 regions.
_base_ = ['demo_quick_dino4k.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter'))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=2, min_regions=4,
                                    num_neighbors=1, warm_epochs=1, num_workers=0))
