"""Models: backbones, heads, losses, data preprocessors and the SLPD algorithm."""
from . import algorithms, backbones, data_preprocessors, heads, losses  # noqa: F401
from .algorithms import SLPD
from .backbones import PooledMLP, ViT4K
from .data_preprocessors import GridMultiCropPreprocessor, WindowViewsPreprocessor
from .heads import DINOHead

__all__ = ['SLPD', 'PooledMLP', 'ViT4K', 'GridMultiCropPreprocessor',
           'WindowViewsPreprocessor', 'DINOHead']
