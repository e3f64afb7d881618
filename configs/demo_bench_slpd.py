# SLPD of tools/run_demo.py: demo_bench_dino4k.py plus the prototype terms; K=2 prototypes
# for slides with >= 6 regions (the benchmark's slides are smaller than the demo store's).
_base_ = ['demo_bench_dino4k.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter'))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=2, min_regions=6,
                                    num_neighbors=1, warm_epochs=2, num_workers=0))
