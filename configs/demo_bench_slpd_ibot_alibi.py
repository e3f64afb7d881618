# SLPD+iBOT-ALiBi of `tools/run_demo.py --compare`: demo_bench_ibot_alibi.py plus SLPD's
# prototype terms over windows (configs/slpd_ibot_alibi_trident.py) with the settings of
# demo_bench_slpd.py: K=2 prototypes, 1 neighbour slide, terms from the third epoch;
# slides need >= 4 tiles of 20x20 (demo_bench_slpd.py: >= 6 regions of 16x16).
_base_ = ['demo_bench_ibot_alibi.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter',
                                 assign_from='teacher'))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=2, min_regions=4,
                                    num_neighbors=1, warm_epochs=2, num_workers=0,
                                    source='pass'))
