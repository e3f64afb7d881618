# Region feature grids from a store (folder path or redis:// URI), batch per process.
train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='RegionFeatureDataset', store='data/tcga_lung_store', channels=384),
)
