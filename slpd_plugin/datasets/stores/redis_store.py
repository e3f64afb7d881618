"""Region grids in Redis: raw little-endian bytes, one blob per slide, no pickle.

Keys of a store with prefix ``P`` (slides numbered by storage position ``s``)::

    P:manifest       JSON, written last: slides, counts, C, dtype, checksums, complete
    P:journal        list of JSON lines, one per committed slide (resumable ingest)
    P:grids:s:k      part k of slide s: regions [k*R, (k+1)*R) as raw (n, C, G, G) bytes
    P:coords:s       int64 (n, 2) region top-left corners, -1 where unknown
    P:masks:s        uint8 (n, G, G) tissue masks, 1 where a cell holds a patch (absent in
                     stores written before masks existed: those read as all 1)

``R`` (``blob_regions`` in the manifest) keeps every value far below Redis's 512 MB
limit; with 64 MB blobs nearly every slide is one key. A batch of regions is one
pipeline of ``GETRANGE`` commands, i.e. one round trip, whatever slides it touches.
Nothing is ever unpickled: the bytes are interpreted with the manifest's dtype and shape.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import redis

from .base import (
    GRID_SIZE,
    MANIFEST_VERSION,
    FeatureStore,
    RegionIndices,
    SlideRecord,
    StoreError,
    store_dtype,
)
from .journal import JOURNAL_KEY
from .redis_conn import RedisConnection
from .redis_uri import RedisLocation, parse_redis_uri

FORMAT = 'slpd-redis'
BLOB_BYTES = 64 * 2 ** 20


def store_key(prefix: str, *parts: object) -> str:
    """``prefix:part1:part2...``, the name of one key of a store."""
    return ':'.join([prefix, *map(str, parts)])


def blob_regions_for(region_bytes: int, blob_bytes: int = BLOB_BYTES) -> int:
    """Regions per blob key (``R``) for regions of ``region_bytes`` bytes."""
    return max(1, blob_bytes // region_bytes)


def part_sizes(count: int, blob_regions: int) -> list[int]:
    """Region counts of the blob keys of a slide of ``count`` regions."""
    full, rest = divmod(count, blob_regions)
    return [blob_regions] * full + ([rest] if rest else [])


def read_manifest(conn: RedisConnection) -> dict:
    """Load and check a Redis store's manifest.

    Raises:
        StoreError: if there is no store under the prefix, its ingest was interrupted,
            or the key does not hold a complete ``slpd-redis`` manifest.
    """
    loc = conn.location
    key = store_key(loc.prefix, 'manifest')

    def fetch(client: redis.Redis) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        pipe.get(key)
        pipe.llen(store_key(loc.prefix, JOURNAL_KEY))
        return pipe.execute()
    raw, journal_len = conn.call('read the manifest', fetch)
    if raw is None:
        if journal_len:
            raise StoreError(f'feature store {loc} is incomplete: an ingest into it was '
                             f'interrupted after {journal_len} slide(s); re-run the same '
                             f'ingest command to complete it')
        raise StoreError(f'no feature store at {loc}: key {key!r} does not exist (make one '
                         f'with tools/ingest.py)')
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f'{loc}: key {key!r} is not valid JSON ({e})') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT or not meta.get('complete'):
        raise StoreError(f'{loc}: key {key!r} is not a complete {FORMAT} store manifest')
    if meta.get('version') != MANIFEST_VERSION:
        raise StoreError(f'{loc}: manifest version {meta.get("version")}, this code reads '
                         f'version {MANIFEST_VERSION}')
    return meta


class RedisStore(FeatureStore):
    """Read-only view of a store in Redis (it never sends a write command).

    Opening reads the manifest and, with ``check=True``, the length of every blob key in
    one round trip, so a store whose keys were deleted or overwritten fails at once.
    Every read checks the length of what came back as well.

    Args:
        uri: ``redis://`` / ``rediss://`` URI (see :mod:`.redis_uri`) or a parsed
            location.
        check: Check every blob key's length against the manifest on open.
            Defaults to True.

    Examples:
        >>> store = RedisStore('redis://localhost:6379/0?prefix=brca')   # doctest: +SKIP
        >>> store.read([0, 5]).shape                                     # doctest: +SKIP
        (2, 384, 16, 16)
    """

    def __init__(self, uri: str | RedisLocation, check: bool = True) -> None:
        self.loc = uri if isinstance(uri, RedisLocation) else parse_redis_uri(uri)
        self.location = str(self.loc)
        self._conn = RedisConnection(self.loc)
        meta = read_manifest(self._conn)
        self.channels = int(meta['channels'])
        self.grid_size = int(meta.get('grid_size', GRID_SIZE))
        self.dtype = store_dtype(meta['dtype'])
        self.blob_regions = int(meta['blob_regions'])
        self.has_coords = bool(meta.get('has_coords', False))
        self.has_masks = bool(meta.get('has_masks', False))
        self._provenance = meta.get('provenance')
        self.slides = [SlideRecord(**s) for s in meta['slides']]
        counts = np.array([s.count for s in self.slides], dtype=np.int64)
        self._offsets = np.cumsum(counts) - counts
        if not np.array_equal(self._offsets, [s.offset for s in self.slides]):
            raise StoreError(f'{self.location}: manifest slide offsets are not contiguous')
        self.region_bytes = self.channels * self.grid_size ** 2 * self.dtype.itemsize
        if check:
            self._check_keys()

    def _blob_keys(self) -> list[tuple[str, int, int]]:
        """(key, slide position, expected bytes) of every blob."""
        return [(store_key(self.loc.prefix, 'grids', s, k), s, n * self.region_bytes)
                for s, rec in enumerate(self.slides)
                for k, n in enumerate(part_sizes(rec.count, self.blob_regions))]

    def _check_keys(self) -> None:
        blobs = self._blob_keys()

        def lengths(client: redis.Redis) -> list[int]:
            pipe = client.pipeline(transaction=False)
            for key, _, _ in blobs:
                pipe.strlen(key)
            return pipe.execute()
        for (key, s, expected), found in zip(blobs, self._conn.call('check the keys', lengths)):
            if found != expected:
                what = 'is missing' if found == 0 else f'holds {found} bytes'
                raise StoreError(f'{self.location}: key {key!r} of slide '
                                 f'{self.slides[s].slide_id!r} {what}; the manifest '
                                 f'expects {expected} bytes (store deleted or overwritten '
                                 f'since ingest?)')

    def _get_ranges(self, keys: list[str], starts: list[int], length: int,
                    what: str) -> list[bytes]:
        """``length`` bytes of each key from its start, in one pipelined round trip."""
        def fetch(client: redis.Redis) -> list[bytes]:
            pipe = client.pipeline(transaction=False)
            for key, start in zip(keys, starts):
                pipe.getrange(key, start, start + length - 1)
            return pipe.execute()
        return self._conn.call(f'read {len(keys)} {what}', fetch) if keys else []

    def read(self, indices: RegionIndices) -> np.ndarray:
        """Regions by global index in one pipeline of ``GETRANGE``, ``(len(indices), C, G, G)``."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self.num_regions
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f'{self.location}: region index out of range [0, {n}): '
                             f'{idx[(idx < 0) | (idx >= n)][:5].tolist()}')
        slide = np.searchsorted(self._offsets, idx, side='right') - 1
        part, local = np.divmod(idx - self._offsets[slide], self.blob_regions)
        keys = [store_key(self.loc.prefix, 'grids', s, k) for s, k in zip(slide, part)]
        rb = self.region_bytes
        blobs = self._get_ranges(keys, (local * rb).tolist(), rb, 'region(s)')
        out = np.empty((len(idx), self.channels, self.grid_size, self.grid_size), self.dtype)
        view = out.reshape(-1).view(np.uint8).data
        for k, blob in enumerate(blobs):
            if len(blob) != rb:
                raise StoreError(
                    f'{self.location}: key {keys[k]!r} (slide '
                    f'{self.slides[slide[k]].slide_id!r}, region '
                    f'{idx[k] - self._offsets[slide[k]]}) returned {len(blob)} bytes, '
                    f'expected {rb}: key missing or not the data of this manifest')
            view[k * rb:(k + 1) * rb] = blob
        return out

    def read_slide(self, slide: int) -> np.ndarray:
        """All regions of slide ``slide`` in one ``MGET`` of its blobs, ``(n, C, G, G)``."""
        rec = self.slides[slide]
        keys = [store_key(self.loc.prefix, 'grids', slide, k)
                for k in range(len(part_sizes(rec.count, self.blob_regions)))]
        blobs = self._conn.call(f'read slide {rec.slide_id!r}', lambda c: c.mget(keys))
        data = b''.join(b for b in blobs if isinstance(b, bytes))  # None: key missing
        if len(data) != rec.count * self.region_bytes:
            raise StoreError(f'{self.location}: slide {rec.slide_id!r} has {len(data)} bytes '
                             f'in keys {keys}, the manifest expects '
                             f'{rec.count * self.region_bytes}')
        return np.frombuffer(bytearray(data), dtype=self.dtype).reshape(
            rec.count, self.channels, self.grid_size, self.grid_size)

    def coords(self) -> np.ndarray | None:
        """Region corners ``(N, 2)`` int64 from the coords keys, or None if not stored."""
        if not self.has_coords:
            return None
        keys = [store_key(self.loc.prefix, 'coords', s) for s in range(self.num_slides)]
        blobs = self._conn.call('read coords', lambda c: c.mget(keys))
        parts = []
        for key, rec, blob in zip(keys, self.slides, blobs):
            if not isinstance(blob, bytes) or len(blob) != rec.count * 16:
                raise StoreError(f'{self.location}: key {key!r} (coords of slide '
                                 f'{rec.slide_id!r}) is missing or has the wrong size')
            parts.append(np.frombuffer(blob, dtype='<i8').reshape(rec.count, 2))
        return np.concatenate(parts).astype(np.int64)

    def read_masks(self, indices: RegionIndices) -> np.ndarray:
        """Tissue masks ``(len(indices), G, G)`` bool from the masks keys (all True if none)."""
        if not self.has_masks:
            return super().read_masks(indices)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_regions):
            raise IndexError(f'{self.location}: region index out of range '
                             f'[0, {self.num_regions})')
        slide = np.searchsorted(self._offsets, idx, side='right') - 1
        cells = self.grid_size ** 2
        keys = [store_key(self.loc.prefix, 'masks', s) for s in slide]
        blobs = self._get_ranges(keys, ((idx - self._offsets[slide]) * cells).tolist(), cells,
                                 'mask(s)')
        if any(len(b) != cells for b in blobs):
            bad = next(k for k, b in zip(keys, blobs) if len(b) != cells)
            raise StoreError(f'{self.location}: key {bad!r} is missing or shorter than the '
                             f'manifest says (store deleted or overwritten since ingest?)')
        flat = np.frombuffer(b''.join(blobs), dtype=np.uint8)
        return flat.reshape(len(idx), self.grid_size, self.grid_size).astype(bool)

    @property
    def provenance(self) -> dict | None:
        """The manifest's patch-feature provenance, or None."""
        return self._provenance

    def close(self) -> None:
        """Close this process's connections; the next read reconnects."""
        self._conn.close()
