# tiny_slpd on a store of region grids with holes (tissue masks): masks travel to the
# ViT-4K, crops ask for half their cells present. The store is given by --cfg-options.
_base_ = ['tiny_slpd.py']
model = dict(data_preprocessor=dict(min_tissue=0.5))
train_dataloader = dict(dataset=dict(_delete_=True, type='RegionFeatureDataset',
                                     store='data/holey_store', channels=32))
