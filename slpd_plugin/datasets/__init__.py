"""Data: feature stores, the region dataset, samplers and synthetic data."""
from . import samplers  # noqa: F401  (registers samplers)
from .region_dataset import RegionFeatureDataset
from .stores import FeatureStore, StoreError, open_store, open_writer
from .synthetic import ensure_synthetic_store, make_synthetic_store

__all__ = ['RegionFeatureDataset', 'FeatureStore', 'StoreError', 'open_store',
           'open_writer', 'ensure_synthetic_store', 'make_synthetic_store']
