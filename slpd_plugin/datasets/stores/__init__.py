"""Feature stores: where region grids live (embedded memmap folder or Redis)."""
from .base import (
                   FeatureStore,
                   SlideRecord,
                   StoreError,
                   StoreWriter,
                   check_grids,
                   slide_checksum,
                   store_dtype,
)
from .memmap_store import MemmapStore, MemmapStoreWriter
from .redis_store import RedisStore
from .redis_uri import RedisLocation, is_redis_uri, parse_redis_uri
from .redis_writer import RedisStoreWriter, delete_redis_store
from .uri import open_store, open_writer

__all__ = ['FeatureStore', 'SlideRecord', 'StoreError', 'StoreWriter', 'check_grids',
           'slide_checksum', 'store_dtype', 'MemmapStore', 'MemmapStoreWriter',
           'RedisStore', 'RedisStoreWriter', 'RedisLocation', 'delete_redis_store',
           'is_redis_uri', 'parse_redis_uri', 'open_store', 'open_writer']
