"""One string picks the store backend: a local path, or a ``redis://`` URI.

- ``data/brca_store`` (any path): the embedded memmap store folder (the default).
- ``redis://[user[:password]@]host:port/db?prefix=NAME`` or ``rediss://...`` (TLS): a
  Redis store; see :mod:`.redis_uri` for the query parameters and how to pass the
  password through an environment variable.
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import GRID_SIZE, FeatureStore, StoreError, StoreWriter
from .memmap_store import MemmapStore, MemmapStoreWriter
from .redis_store import RedisStore
from .redis_uri import is_redis_uri, parse_redis_uri
from .redis_writer import RedisStoreWriter


def open_store(uri: str | os.PathLike) -> FeatureStore:
    """Open a complete store for reading.

    Args:
        uri: A folder path (embedded memmap store) or a ``redis://``/``rediss://`` URI.

    Raises:
        StoreError: if the store is missing, incomplete or inconsistent, or the server
            cannot be reached.
    """
    if is_redis_uri(uri):
        return RedisStore(str(uri))
    return MemmapStore(uri)


def open_writer(uri: str | os.PathLike, channels: int | None = None,
                dtype: str = 'float16', grid_size: int = GRID_SIZE) -> StoreWriter:
    """Open (or create) a store for appending slides; see :class:`StoreWriter`."""
    if is_redis_uri(uri):
        return RedisStoreWriter(str(uri), channels=channels, dtype=dtype,
                                grid_size=grid_size)
    return MemmapStoreWriter(uri, channels=channels, dtype=dtype, grid_size=grid_size)


def store_location_problem(location: str) -> str | None:
    """Why ``location`` cannot name a store, or None; for tools to check before work.

    A ``redis://`` URI must parse; anything else must be an existing folder.
    """
    if is_redis_uri(location):
        try:
            parse_redis_uri(location)
        except StoreError as err:
            return str(err)
        return None
    if not Path(location).is_dir():
        return (f'no store folder at {location} (expected a folder made by tools/ingest.py, '
                f'or a redis:// URI)')
    return None
