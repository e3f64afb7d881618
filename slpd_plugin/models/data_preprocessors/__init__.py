"""Data preprocessors: device transfer and batched multi-crop of feature grids."""
from .grid_multicrop import GridMultiCropPreprocessor, center_crop, random_crops

__all__ = ['GridMultiCropPreprocessor', 'center_crop', 'random_crops']
