# DINO over feature grids with a TITAN-size slide encoder (Ding et al. 2024): ALiBiViT
# 'titan', 768-d, 6 blocks, 12 heads, a 2-D ALiBi attention bias instead of positional
# embeddings (any grid size, missing patches left out of attention), CONCH v1.5 inputs
# (768-d). Multi-crop, DINO head and loss as in dino4k_vit4k_xs.py.
_base_ = ['dino4k_vit4k_xs.py']
model = dict(backbone=dict(_delete_=True, type='ALiBiViT', arch='titan', in_channels=768,
                           drop_path_rate=0.1))
