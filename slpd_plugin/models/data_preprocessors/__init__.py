"""Data preprocessors: device transfer and batched multi-crop of feature grids."""
from .grid_multicrop import (
    CROP_TRIES,
    GridMultiCropPreprocessor,
    center_crop,
    gather_cells,
    random_crop_maps,
    random_crops,
)

__all__ = ['CROP_TRIES', 'GridMultiCropPreprocessor', 'center_crop', 'gather_cells',
           'random_crop_maps', 'random_crops']
