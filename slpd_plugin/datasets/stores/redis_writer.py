"""Append slides to a Redis store resumably; the manifest key is written last.

Each slide is committed in one ``MULTI``/``EXEC`` transaction (its blobs, its coords,
its journal line, and the removal of any manifest), so a killed ingest leaves whole
slides only and a re-run continues after the last one. See :mod:`.redis_store` for the
key layout.
"""
from __future__ import annotations

import json

import numpy as np

from .base import (GRID_SIZE, MANIFEST_VERSION, SlideRecord, StoreError, StoreWriter,
                   slide_checksum, store_dtype)
from .redis_conn import RedisConnection
from .redis_store import BLOB_BYTES, FORMAT, blob_regions_for, part_sizes, store_key
from .redis_uri import RedisLocation, parse_redis_uri


class RedisStoreWriter(StoreWriter):
    """Write slides into a Redis store under the URI's prefix (created if missing).

    Opening a prefix that holds an interrupted or complete store continues it (the
    journal lists the committed slides). Only one writer per prefix at a time: a
    commit that finds another writer's slides in the journal fails.

    Args:
        uri: ``redis://`` / ``rediss://`` URI or a parsed location; the user needs
            write access to the prefix's keys.
        channels: Expected ``C``; None takes it from the first slide (or the journal).
        dtype: ``'float16'`` (default, half the bytes) or ``'float32'`` (exact).
        blob_bytes: Largest value written to one key. Defaults to 64 MiB.
    """

    def __init__(self, uri: str | RedisLocation, channels: int | None = None,
                 dtype: str = 'float16', blob_bytes: int = BLOB_BYTES) -> None:
        self.loc = uri if isinstance(uri, RedisLocation) else parse_redis_uri(uri)
        self.location = str(self.loc)
        self.dtype = store_dtype(dtype)
        self.channels = channels
        self.blob_bytes = blob_bytes
        self.blob_regions: int | None = None
        self.records: list[SlideRecord] = []
        self.has_coords = False
        self._conn = RedisConnection(self.loc)
        self._recover()

    def _key(self, *parts: object) -> str:
        return store_key(self.loc.prefix, *parts)

    def _recover(self) -> None:
        lines = self._conn.call('read the journal',
                                lambda c: c.lrange(self._key('journal'), 0, -1))
        for line in lines:
            entry = json.loads(line)
            if entry['dtype'] != self.dtype.name:
                raise StoreError(f'{self.location}: store holds {entry["dtype"]} grids, '
                                 f'writer asked for {self.dtype.name}')
            if self.channels not in (None, entry['channels']):
                raise StoreError(f'{self.location}: store holds C={entry["channels"]}, '
                                 f'writer asked for C={self.channels}')
            self.channels = entry['channels']
            self.blob_regions = entry['blob_regions']
            self.has_coords |= entry['has_coords']
            self.records.append(SlideRecord(**entry['record']))

    def add_slide(self, slide_id: str, grids: np.ndarray,
                  coords: np.ndarray | None = None) -> SlideRecord:
        data, coords = self.prepare_slide(slide_id, grids, coords)
        if self.blob_regions is None:
            self.blob_regions = blob_regions_for(data[0].nbytes, self.blob_bytes)
        position = len(self.records)
        record = SlideRecord(slide_id, sum(r.count for r in self.records), len(data),
                             slide_checksum(data))
        entry = json.dumps(dict(record=record.to_json(), channels=self.channels,
                                dtype=self.dtype.name, has_coords=self.has_coords,
                                blob_regions=self.blob_regions))
        starts = np.cumsum([0] + part_sizes(len(data), self.blob_regions))

        def commit(client) -> None:
            committed = client.llen(self._key('journal'))
            if committed == position + 1:  # a retry after EXEC went through
                return
            if committed != position:
                raise StoreError(f'{self.location}: the journal holds {committed} slides, '
                                 f'this writer expected {position}: another writer is '
                                 f'using this prefix')
            pipe = client.pipeline(transaction=True)
            pipe.delete(self._key('manifest'))
            for k in range(len(starts) - 1):
                pipe.set(self._key('grids', position, k), data[starts[k]:starts[k + 1]].data)
            pipe.set(self._key('coords', position), coords.data)
            pipe.rpush(self._key('journal'), entry)
            pipe.execute()
        self._conn.call(f'write slide {slide_id!r}', commit)
        self.records.append(record)
        return record

    def finalize(self) -> None:
        if not self.records:
            raise StoreError(f'{self.location}: refusing to finalise an empty store '
                             f'(no slides were written)')
        manifest = json.dumps(dict(
            format=FORMAT, version=MANIFEST_VERSION, complete=True,
            channels=self.channels, dtype=self.dtype.name, grid_size=GRID_SIZE,
            blob_regions=self.blob_regions, has_coords=self.has_coords,
            num_regions=sum(r.count for r in self.records),
            slides=[r.to_json() for r in self.records]))
        self._conn.call('write the manifest', lambda c: c.set(self._key('manifest'), manifest))
        self._conn.close()


def delete_redis_store(uri: str | RedisLocation) -> int:
    """Delete every key of the store under the URI's prefix (complete or not).

    The key names come from the store's journal, so nothing else on the server is
    touched (not even prefixes that merely start with the same text).

    Returns:
        The number of keys deleted.
    """
    loc = uri if isinstance(uri, RedisLocation) else parse_redis_uri(uri)
    conn = RedisConnection(loc)

    def delete(client) -> int:
        keys = [store_key(loc.prefix, name) for name in ('manifest', 'journal')]
        for s, line in enumerate(client.lrange(keys[1], 0, -1)):
            entry = json.loads(line)
            parts = part_sizes(entry['record']['count'], entry['blob_regions'])
            keys += [store_key(loc.prefix, 'grids', s, k) for k in range(len(parts))]
            keys.append(store_key(loc.prefix, 'coords', s))
        return sum(client.unlink(*keys[i:i + 1000]) for i in range(0, len(keys), 1000))
    try:
        return conn.call('delete the store', delete)
    finally:
        conn.close()
