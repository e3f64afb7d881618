# tiny_slpd_masks with the TITAN-style ALiBi ViT as the backbone, by config alone: the
# masks of a store with holes go to it as they go to ViT-4K.
_base_ = ['tiny_slpd_masks.py']
model = dict(backbone=dict(_delete_=True, type='ALiBiViT',
                           arch=dict(embed_dims=32, depth=1, num_heads=4), in_channels=32))
