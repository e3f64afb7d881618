"""Data: feature stores, the region dataset, samplers and HIPT label tables."""
from . import samplers  # noqa: F401  (registers samplers)
from .lattice import SlideLatticeDataset, SlideWindowViewsDataset  # noqa: F401  (registers)
from .region_dataset import RegionFeatureDataset
from .stores import FeatureStore, StoreError, open_store, open_writer

__all__ = ['RegionFeatureDataset', 'FeatureStore', 'StoreError', 'open_store',
           'open_writer']
