# tiny_dino4k with SLPD's prototype terms from the second epoch.
_base_ = ['tiny_dino4k.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter'))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=2, min_regions=4,
                                    num_neighbors=1, warm_epochs=1, num_workers=0,
                                    batch_size=16))
