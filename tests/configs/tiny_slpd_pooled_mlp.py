# tiny_slpd with the ViT-4K swapped for a different registered backbone by config alone.
_base_ = ['tiny_slpd.py']
model = dict(backbone=dict(_delete_=True, type='PooledMLP', in_channels=32, embed_dims=24,
                           hidden_dims=48))
