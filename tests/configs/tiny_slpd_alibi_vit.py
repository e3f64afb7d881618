# tiny_slpd with the TITAN-style ALiBi ViT as the backbone, by config alone.
_base_ = ['tiny_slpd.py']
model = dict(backbone=dict(_delete_=True, type='ALiBiViT',
                           arch=dict(embed_dims=32, depth=1, num_heads=4), in_channels=32))
