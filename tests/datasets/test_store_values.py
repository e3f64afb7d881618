"""Multi-dimensional arrays of every stored dtype reach the server and the disk as flat
bytes, and come back exactly (grids fp16/fp32, bool masks with holes, int64 coords).

The Redis cases run against whatever redis-py is installed; `.ci/run` installs the
newest one `setup.cfg` allows, and docs/data.md says how the oldest allowed one was
checked. A client that frames a value by ``len()`` of a multi-dimensional memoryview
sends a wrong bulk length: these tests then time out or read back other bytes.
"""
from __future__ import annotations

import numpy as np
import pytest

from slpd_plugin.datasets.stores import (
    RedisStoreWriter,
    open_store,
    open_writer,
    parse_redis_uri,
)
from slpd_plugin.datasets.stores.base import flat_bytes, slide_checksum


def _slides(dtype: str, seed: int = 0):
    """Three slides: grids of odd sizes, masks with holes, coords beyond int32."""
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate((3, 7, 2)):
        grids = rng.standard_normal((n, 5, 16, 16)).astype(dtype)
        masks = rng.random((n, 16, 16)) > 0.3
        coords = rng.integers(0, 2 ** 40, size=(n, 2), dtype=np.int64)
        out.append((f'slide-{i}', grids, masks, coords))
    return out


@pytest.mark.parametrize('dtype', ['float16', 'float32', 'bool', 'int64', 'uint8'])
def test_flat_bytes_is_one_dimensional_bytes_in_c_order(dtype):
    a = (np.arange(2 * 3 * 4 * 5) % 7).astype(dtype).reshape(2, 3, 4, 5)
    for arr in (a, a.transpose(0, 2, 1, 3)):  # C-contiguous and not
        view = flat_bytes(arr)
        assert view.ndim == 1 and view.format == 'B'
        assert len(view) == arr.nbytes
        assert bytes(view) == np.ascontiguousarray(arr).tobytes()
    assert slide_checksum(a.transpose(1, 0, 2, 3)) != slide_checksum(a.reshape(3, 2, 4, 5))


def _write_and_check(location, slides, writer):
    for slide_id, grids, masks, coords in slides:
        writer.add_slide(slide_id, grids, coords=coords, masks=masks)
    writer.finalize()
    store = open_store(location)
    every = np.arange(store.num_regions)
    np.testing.assert_array_equal(store.read(every), np.concatenate([s[1] for s in slides]))
    np.testing.assert_array_equal(store.read_masks(every),
                                  np.concatenate([s[2] for s in slides]))
    np.testing.assert_array_equal(store.coords(), np.concatenate([s[3] for s in slides]))
    assert store.verify() == []
    return store


@pytest.mark.parametrize('dtype', ['float16', 'float32'])
def test_memmap_round_trip_is_exact(tmp_path, dtype):
    location = str(tmp_path / 'store')
    _write_and_check(location, _slides(dtype), open_writer(location, dtype=dtype))


@pytest.mark.parametrize('dtype', ['float16', 'float32'])
@pytest.mark.parametrize('streamed', [False, True], ids=['one-blob', 'streamed'])
def test_redis_round_trip_is_exact(redis_store_uri, redis_server, dtype, streamed):
    slides = _slides(dtype, seed=1)
    # streamed: blobs of 2 regions, so the slide of 7 is written in 4 keys, 3 before EXEC
    blob_bytes = 2 * slides[0][1][0].nbytes if streamed else 2 ** 26
    writer = RedisStoreWriter(redis_store_uri, dtype=dtype, blob_bytes=blob_bytes)
    store = _write_and_check(redis_store_uri, slides, writer)
    # what the server holds: every value's length is its array's byte count
    prefix = parse_redis_uri(redis_store_uri).prefix
    client = redis_server.client()
    for s, (_, grids, masks, coords) in enumerate(slides):
        assert client.strlen(f'{prefix}:coords:{s}') == coords.nbytes
        assert client.strlen(f'{prefix}:masks:{s}') == masks.astype(np.uint8).nbytes
        keys = client.keys(f'{prefix}:grids:{s}:*')
        assert sum(client.strlen(k) for k in keys) == grids.nbytes
    store.close()
