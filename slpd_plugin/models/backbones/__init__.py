"""Region encoders: ``(B, C, H, W)`` feature grids -> ``(B, E)`` embeddings."""
from .alibi_vit import ALiBiViT
from .masks import accepts_masks
from .pooled_mlp import PooledMLP
from .slide_encoding import encode_slide, supports_whole_slide
from .vit4k import ARCHS, ViT4K

__all__ = ['ALiBiViT', 'ARCHS', 'PooledMLP', 'ViT4K', 'accepts_masks', 'encode_slide',
           'supports_whole_slide']
