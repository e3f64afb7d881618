"""Models: backbones, heads, losses, token masks, data preprocessors and SLPD."""
from . import algorithms, backbones, data_preprocessors, heads, losses, masking  # noqa: F401
from .algorithms import SLPD
from .backbones import PooledMLP, ViT4K
from .data_preprocessors import GridMultiCropPreprocessor, WindowViewsPreprocessor
from .heads import DINOHead

__all__ = ['SLPD', 'PooledMLP', 'ViT4K', 'GridMultiCropPreprocessor',
           'WindowViewsPreprocessor', 'DINOHead']
