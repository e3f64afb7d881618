"""Append slides to a Redis store resumably; the manifest key is written last.

Each slide is committed in one ``MULTI``/``EXEC`` transaction (its last blob, its
coords, masks, journal line, and the removal of any manifest), so a killed ingest leaves
whole slides only and a re-run continues after the last one. A slide larger than one
blob (64 MiB) is streamed: its full blobs are written before the transaction, under the
keys of the slide's position, which no journal line lists until the commit (a re-run
overwrites them). See :mod:`.redis_store` for the key layout.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable

import numpy as np
import redis

from . import journal
from .base import (
    GRID_SIZE,
    MANIFEST_VERSION,
    SlidePart,
    SlideRecord,
    StoreError,
    StoreWriter,
    flat_bytes,
    slide_checksum,
    store_dtype,
)
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
        grid_size: ``G``; must match the store's. Defaults to 16.
    """

    def __init__(self, uri: str | RedisLocation, channels: int | None = None,
                 dtype: str = 'float16', blob_bytes: int = BLOB_BYTES,
                 grid_size: int = GRID_SIZE) -> None:
        self.loc = uri if isinstance(uri, RedisLocation) else parse_redis_uri(uri)
        self.location = str(self.loc)
        self.dtype = store_dtype(dtype)
        self.channels = channels
        self.grid_size = grid_size
        self.provenance = None
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
                                lambda c: c.lrange(self._key(journal.JOURNAL_KEY), 0, -1))
        entries = journal.resume_writer(self, lines)
        # positions of slides from before masks existed
        self._unmasked = {i for i, e in enumerate(entries) if not e.get('has_masks')}
        if entries:
            self.blob_regions = entries[-1]['blob_regions']

    def _stream_blobs(self, slide_id: str, position: int, parts: Iterable[SlidePart]
                      ) -> tuple[int, str, np.ndarray, int, np.ndarray, np.ndarray]:
        """Write every full blob of a streamed slide; return what the commit needs.

        Returns:
            ``(count, sha256, last blob, its part number, coords, masks)``; the caller
            takes the masks' checksum from the whole ``masks``.
        """
        digest, count, blob, k = hashlib.sha256(), 0, [], 0
        coords: list[np.ndarray] = []
        masks: list[np.ndarray] = []
        for grids, xy, mask in parts:
            data, xy, mask = self.prepare_part(slide_id, grids, xy, mask)
            if self.blob_regions is None:
                self.blob_regions = blob_regions_for(data[0].nbytes, self.blob_bytes)
            digest.update(flat_bytes(data))
            count += len(data)
            coords.append(xy)
            masks.append(mask)
            blob.append(data)
            while sum(len(b) for b in blob) > self.blob_regions:
                joined = np.concatenate(blob)
                key = self._key('grids', position, k)
                self._conn.call(f'write slide {slide_id!r}',
                                lambda c: c.set(key, flat_bytes(joined[:self.blob_regions])))
                blob, k = [joined[self.blob_regions:]], k + 1
        if count == 0:
            raise StoreError(f'slide {slide_id!r}: slide has no regions')
        last = np.ascontiguousarray(np.concatenate(blob))
        return (count, digest.hexdigest(), last, k, np.concatenate(coords),
                np.concatenate(masks))

    def add_slide_parts(self, slide_id: str, parts: Iterable[SlidePart],
                        source: dict | None = None) -> SlideRecord:
        """Stream a slide's full blobs, then commit the rest in one transaction."""
        self.check_new_slide(slide_id)
        position = len(self.records)
        state = self.channels, self.has_coords, self.blob_regions
        try:
            count, sha, last, k, coords, masks = self._stream_blobs(slide_id, position, parts)
        except BaseException:
            self.channels, self.has_coords, self.blob_regions = state
            raise
        assert self.channels is not None  # set by prepare_part
        record = SlideRecord(slide_id, sum(r.count for r in self.records), count, sha,
                             source, slide_checksum(masks))
        entry = journal.encode_entry(record, channels=self.channels, dtype=self.dtype,
                                     has_coords=self.has_coords, grid_size=self.grid_size,
                                     provenance=self.provenance,
                                     blob_regions=self.blob_regions)

        def commit(client: redis.Redis) -> None:
            committed = client.llen(self._key(journal.JOURNAL_KEY))
            if committed == position + 1:  # a retry after EXEC went through
                return
            if committed != position:
                raise StoreError(f'{self.location}: the journal holds {committed} slides, '
                                 f'this writer expected {position}: another writer is '
                                 f'using this prefix')
            pipe = client.pipeline(transaction=True)
            pipe.delete(self._key('manifest'))
            pipe.set(self._key('grids', position, k), flat_bytes(last))
            pipe.set(self._key('coords', position), flat_bytes(coords))
            pipe.set(self._key('masks', position), flat_bytes(masks))
            pipe.rpush(self._key(journal.JOURNAL_KEY), entry)
            pipe.execute()
        self._conn.call(f'write slide {slide_id!r}', commit)
        self.records.append(record)
        return record

    def finalize(self) -> None:
        """Write the manifest key (and all-tissue masks of old slides); refuses an empty store."""
        if not self.records:
            raise StoreError(f'{self.location}: refusing to finalise an empty store '
                             f'(no slides were written)')
        cells = self.grid_size ** 2
        ones = {self._key('masks', s): flat_bytes(np.ones(self.records[s].count * cells, np.uint8))
                for s in sorted(self._unmasked)}  # slides from before masks: all tissue
        manifest = json.dumps(dict(
            format=FORMAT, version=MANIFEST_VERSION, complete=True,
            **self.manifest(blob_regions=self.blob_regions)))

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            for key, value in ones.items():
                pipe.set(key, value)
            pipe.set(self._key('manifest'), manifest)
            pipe.execute()
        self._conn.call('write the manifest', write)
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

    def delete(client: redis.Redis) -> int:
        keys = [store_key(loc.prefix, name) for name in ('manifest', journal.JOURNAL_KEY)]
        entries = journal.parse_lines(client.lrange(keys[1], 0, -1), str(loc))
        for s, entry in enumerate(entries):
            parts = part_sizes(entry['record']['count'], entry['blob_regions'])
            keys += [store_key(loc.prefix, 'grids', s, k) for k in range(len(parts))]
            keys += [store_key(loc.prefix, 'coords', s), store_key(loc.prefix, 'masks', s)]
        return sum(client.unlink(*keys[i:i + 1000]) for i in range(0, len(keys), 1000))
    try:
        return conn.call('delete the store', delete)
    finally:
        conn.close()
