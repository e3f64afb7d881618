# Region feature grids from a store (folder path or redis:// URI), batch per process.
# drop_last=True as in HIPT's and SLPD's training scripts: every step has a full batch.
train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='RegionFeatureDataset', store='data/tcga_lung_store', channels=384),
)
