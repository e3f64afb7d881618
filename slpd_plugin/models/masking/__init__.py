"""Token masks for masked feature modelling (iBOT) on feature grids."""
from .block_mask import BlockMaskGenerator

__all__ = ['BlockMaskGenerator']
