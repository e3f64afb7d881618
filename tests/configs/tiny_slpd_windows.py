# tiny_slpd over window views of a slide lattice ("SLPD over windows", docs/algorithm.md):
# the ALiBi ViT on 2 global 20x20 and 4 local 12x12 windows drawn anywhere in each slide,
# flipped and rotated with their masks; prototypes from each slide's fixed 20x20 tiling,
# each sample's prototype picked by the teacher. The lattice is given by --cfg-options.
_base_ = ['tiny_slpd.py']
model = dict(
    data_preprocessor=dict(_delete_=True, type='WindowViewsPreprocessor'),
    backbone=dict(_delete_=True, type='ALiBiViT',
                  arch=dict(embed_dims=32, depth=1, num_heads=4), in_channels=32),
    prototype_head=dict(assign_from='teacher'))
train_dataloader = dict(dataset=dict(_delete_=True, type='SlideWindowViewsDataset',
                                     store='data/lattice', channels=32))
