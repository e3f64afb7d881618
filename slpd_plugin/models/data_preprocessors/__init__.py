"""Data preprocessors: device transfer, batched multi-crop of grids, window-view batches."""
from .grid_multicrop import (
    CROP_TRIES,
    GridMultiCropPreprocessor,
    center_crop,
    gather_cells,
    random_crop_maps,
    random_crops,
)
from .window_views import WindowViewsPreprocessor

__all__ = ['CROP_TRIES', 'GridMultiCropPreprocessor', 'center_crop', 'gather_cells',
           'random_crop_maps', 'random_crops', 'WindowViewsPreprocessor']
