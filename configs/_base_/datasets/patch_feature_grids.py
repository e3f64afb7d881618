# Region grids assembled from patch features (TRIDENT, CLAM or STAMP .h5: any patch
# encoder) by `tools/ingest.py SRC --format trident|clam|stamp --store STORE`
# (docs/data.md, "From TRIDENT, CLAM or STAMP features"): grids [D, G, G], the missing
# patches zero-filled and marked in a tissue mask per region. The loader is the one of
# region_grids.py; a config names its store and its encoder's D, e.g. UNI:
#   train_dataloader = dict(dataset=dict(store='data/uni_trident_store', channels=1024))
_base_ = ['region_grids.py']
train_dataloader = dict(dataset=dict(store='data/patch_feature_store', channels=None))
