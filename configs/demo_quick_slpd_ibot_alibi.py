# SLPD+iBOT-ALiBi of `tools/run_demo.py --quick --compare`: demo_quick_ibot_alibi.py plus
# the prototype terms over windows from the second epoch (as demo_quick_slpd.py); K=2
# prototypes for slides with >= 2 tiles of 20x20.
_base_ = ['demo_quick_ibot_alibi.py']
model = dict(prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter',
                                 assign_from='teacher'))
default_hooks = dict(prototype=dict(type='PrototypeHook', num_clusters=2, min_regions=2,
                                    num_neighbors=1, warm_epochs=1, num_workers=0,
                                    source='pass'))
