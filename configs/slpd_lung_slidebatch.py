# SLPD on TCGA-NSCLC with slide-aware batches: each batch of 128 regions holds 4 slides x
# 32 regions (read contiguously from the store; slides sharded disjointly over ranks).
_base_ = ['slpd_lung.py']
slides_per_batch, regions_per_slide = 4, 32
train_dataloader = dict(
    batch_size=slides_per_batch * regions_per_slide,
    sampler=dict(_delete_=True, type='SlideAwareSampler', slides_per_batch=slides_per_batch,
                 regions_per_slide=regions_per_slide))
