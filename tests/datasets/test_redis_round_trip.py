"""Every stored dtype through a real Redis store and back, bit for bit.

Values reach Redis as flat byte buffers whatever the array's shape: a client that takes
``len()`` of a multi-dimensional buffer as its byte count (redis-py 8.2.0 does) would
otherwise send malformed commands. Run this file against the newest redis-py that
``setup.cfg`` allows and against the oldest (``redis>=5``); see ``docs/data.md``.
"""
from __future__ import annotations

import numpy as np
import pytest

from slpd_plugin.datasets.stores import open_store
from slpd_plugin.datasets.stores.flat_bytes import flat_bytes
from slpd_plugin.datasets.stores.redis_writer import RedisStoreWriter

G = 16


def _slide(n: int, c: int, seed: int):
    """Random grids ``(n, c, G, G)``, int coords ``(n, 2)`` and bool masks with holes."""
    rng = np.random.default_rng(seed)
    grids = rng.standard_normal((n, c, G, G)).astype(np.float32) * 100
    coords = rng.integers(-2 ** 40, 2 ** 40, size=(n, 2))
    masks = rng.random((n, G, G)) > 0.3
    return grids, coords, masks


@pytest.mark.parametrize('shape,dtype', [((10, 100), np.float16), ((3, 4, 5), np.float32),
                                         ((7, 16, 16), np.bool_), ((9, 2), np.int64),
                                         ((2, 3, 16, 16), np.float16)])
def test_flat_bytes_of_a_multi_dim_array_is_its_bytes(shape, dtype, redis_server):
    array = np.asarray(np.random.default_rng(0).standard_normal(shape) * 50).astype(dtype)
    view = flat_bytes(array)
    assert (view.ndim, view.format, len(view)) == (1, 'B', array.nbytes)
    assert view.tobytes() == array.tobytes()
    client = redis_server.client()
    pipe = client.pipeline(transaction=True)  # the MULTI/EXEC path the writer commits with
    pipe.set('flat-bytes-test', view)
    assert pipe.execute() == [True]
    assert client.get('flat-bytes-test') == array.tobytes()
    client.delete('flat-bytes-test')


def test_flat_bytes_of_a_non_contiguous_array_is_its_c_order_bytes():
    array = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    assert flat_bytes(array).tobytes() == np.ascontiguousarray(array).tobytes()


@pytest.mark.parametrize('dtype', ['float16', 'float32'])
@pytest.mark.parametrize('blob_bytes', [None, 3 * 8 * G * G * 4])  # one blob / streamed
def test_store_round_trip_of_every_stored_dtype(redis_store_uri, dtype, blob_bytes):
    slides = [_slide(n, 8, seed) for seed, n in enumerate((5, 1, 12))]
    kwargs = {} if blob_bytes is None else dict(blob_bytes=blob_bytes)
    writer = RedisStoreWriter(redis_store_uri, dtype=dtype, **kwargs)
    for s, (grids, coords, masks) in enumerate(slides):
        halves = [(grids[:2], coords[:2], masks[:2]), (grids[2:], coords[2:], masks[2:])]
        writer.add_slide_parts(f'slide-{s}', [p for p in halves if len(p[0])])
    writer.finalize()
    store = open_store(redis_store_uri)
    want = np.concatenate([g for g, _, _ in slides]).astype(dtype)
    got = store.read(np.arange(len(want)))
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # bit for bit, NaN-safe
    for s, (grids, _, _) in enumerate(slides):
        assert store.read_slide(s).tobytes() == grids.astype(dtype).tobytes()
    np.testing.assert_array_equal(store.coords(), np.concatenate([c for _, c, _ in slides]))
    masks = store.read_masks(np.arange(len(want)))
    assert masks.dtype == np.bool_
    np.testing.assert_array_equal(masks, np.concatenate([m for _, _, m in slides]))
    assert store.verify() == []
