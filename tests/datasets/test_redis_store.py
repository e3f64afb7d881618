"""The Redis store against a real server: reads, errors, auth, read-only user, retries."""
from __future__ import annotations

import json
import pickle
import socket

import numpy as np
import pytest

from slpd_plugin.datasets.ingest import verify_store
from slpd_plugin.datasets.stores import (
    RedisStore,
    StoreError,
    delete_redis_store,
    open_store,
    open_writer,
    parse_redis_uri,
)


def _grids(n, c=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, 16, 16)).astype(np.float32)


@pytest.fixture
def filled(redis_store_uri):
    """A complete float32 store of three slides (3, 5, 2 regions); returns (uri, grids)."""
    grids = [_grids(n, seed=n) for n in (3, 5, 2)]
    writer = open_writer(redis_store_uri, dtype='float32')
    for i, g in enumerate(grids):
        writer.add_slide(f's{i}', g, coords=np.full((len(g), 2), i))
    writer.finalize()
    return redis_store_uri, np.concatenate(grids)


def _prefix(uri):
    return parse_redis_uri(uri).prefix


def test_read__any_order_and_pickle(filled):
    uri, truth = filled
    store = open_store(uri)
    assert isinstance(store, RedisStore) and len(store) == 10
    idx = [9, 0, 4, 4, 3]
    np.testing.assert_array_equal(store.read(idx), truth[idx])
    assert store.read(idx).flags.writeable
    clone = pickle.loads(pickle.dumps(store))  # as sent to a DataLoader worker
    np.testing.assert_array_equal(clone.read([1, 8]), truth[[1, 8]])
    np.testing.assert_array_equal(store.coords()[:, 0], [0] * 3 + [1] * 5 + [2] * 2)
    with pytest.raises(IndexError, match=r'out of range \[0, 10\)'):
        store.read([10])


def test_small_blobs_split_slides(redis_store_uri, redis_server):
    from slpd_plugin.datasets.stores import RedisStoreWriter
    truth = _grids(7)
    writer = RedisStoreWriter(redis_store_uri, blob_bytes=3 * truth[0].nbytes // 2)
    writer.add_slide('long', truth)  # float16: 3 regions per key, so keys of 3, 3 and 1
    writer.finalize()
    store = open_store(redis_store_uri)
    assert store.blob_regions == 3
    np.testing.assert_array_equal(store.read([6, 0, 3, 2]),
                                  truth[[6, 0, 3, 2]].astype(np.float16))
    np.testing.assert_array_equal(store.read_slide(0), truth.astype(np.float16))
    assert delete_redis_store(redis_store_uri) == 2 + 3 + 2  # manifest+journal, grids, coords+masks
    assert redis_server.client().keys(f'{_prefix(redis_store_uri)}:*') == []


def test_password_never_in_location_or_repr(filled, redis_server):
    store = open_store(filled[0])
    for text in (store.location, repr(store), str(store.loc), repr(store.loc)):
        assert redis_server.password not in text


def test_error__unreachable():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(StoreError, match=rf'cannot connect to Redis at 127\.0\.0\.1:{port} to '
                                         r'read the manifest \(3 attempt\(s\) over'):
        open_store(f'redis://127.0.0.1:{port}/0?prefix=x&retries=2&backoff=0.01')


def test_error__wrong_password(redis_server, monkeypatch):
    monkeypatch.setenv('WRONG_PW', 'not-the-password')
    uri = f'redis://127.0.0.1:{redis_server.port}/0?prefix=x&password_env=WRONG_PW'
    with pytest.raises(StoreError, match=rf'127\.0\.0\.1:{redis_server.port}: authentication '
                                         r"failed for user 'default'") as err:
        open_store(uri)
    assert 'not-the-password' not in str(err.value)


def test_error__no_password(redis_server, monkeypatch):
    monkeypatch.delenv('SLPD_REDIS_PASSWORD', raising=False)
    with pytest.raises(StoreError, match='authentication failed'):
        open_store(f'redis://127.0.0.1:{redis_server.port}/0?prefix=x')


def test_error__no_store(redis_store_uri):
    with pytest.raises(StoreError, match=r"no feature store at .*key 'test-\w+:manifest' does "
                                         r'not exist'):
        open_store(redis_store_uri)


def test_error__incomplete_store(redis_store_uri):
    writer = open_writer(redis_store_uri)
    writer.add_slide('only', _grids(2))
    with pytest.raises(StoreError, match=r'incomplete: an ingest into it was interrupted after '
                                         r'1 slide'):
        open_store(redis_store_uri)


def test_error__missing_key_on_open(filled, redis_server):
    uri, _ = filled
    redis_server.client().delete(f'{_prefix(uri)}:grids:1:0')
    with pytest.raises(StoreError, match=r"key 'test-\w+:grids:1:0' of slide 's1' is missing; "
                                         r'the manifest expects 40960 bytes'):
        open_store(uri)


def test_error__missing_key_at_read_time(filled, redis_server):
    uri, _ = filled
    store = open_store(uri)
    store.read([0])
    redis_server.client().delete(f'{_prefix(uri)}:grids:1:0')
    with pytest.raises(StoreError, match=r"key 'test-\w+:grids:1:0' \(slide 's1', region 2\) "
                                         r'returned 0 bytes, expected 8192'):
        store.read([0, 5])


def test_error__manifest_mismatch(filled, redis_server):
    uri, _ = filled
    client, key = redis_server.client(), f'{_prefix(uri)}:manifest'
    meta = json.loads(client.get(key))
    meta['slides'][2]['count'] = 3  # the manifest now promises a region that is not there
    client.set(key, json.dumps(meta))
    with pytest.raises(StoreError, match=r"key 'test-\w+:grids:2:0' of slide 's2' holds 16384 "
                                         r'bytes; the manifest expects 24576'):
        open_store(uri)


def test_error__corrupt_bytes_caught_by_verify(filled, redis_server):
    uri, _ = filled
    redis_server.client().setrange(f'{_prefix(uri)}:grids:2:0', 100, b'\x7f')
    with pytest.raises(StoreError, match=r"1 slide\(s\) do not match their checksum: \['s2'\]"):
        verify_store(uri, progress=False)


def test_read_only_user_reads_but_cannot_write(filled, redis_server, monkeypatch):
    uri, truth = filled
    prefix = _prefix(uri)
    admin = redis_server.client()
    admin.acl_setuser('reader', enabled=True, passwords=['+reader-pw'], keys=[f'{prefix}:*'],
                      commands=['+@read', '+@connection'])
    monkeypatch.setenv('READER_PW', 'reader-pw')
    ro = f'redis://reader@127.0.0.1:{redis_server.port}/0?prefix={prefix}&password_env=READER_PW'
    np.testing.assert_array_equal(open_store(ro).read([2, 7]), truth[[2, 7]])
    with pytest.raises(StoreError, match='permission denied'):
        open_writer(ro, dtype='float32').add_slide('more', _grids(1))
    np.testing.assert_array_equal(open_store(uri).read([2, 7]), truth[[2, 7]])


def test_reconnects_after_connection_loss(filled, redis_server):
    uri, truth = filled
    store = open_store(uri)
    store.read([0])
    admin = redis_server.client()
    killed = admin.client_kill_filter(_type='normal', skipme=True)
    assert killed >= 1
    np.testing.assert_array_equal(store.read([1, 9]), truth[[1, 9]])


def test_tls(redis_tls_server, monkeypatch):
    monkeypatch.setenv('SLPD_TEST_REDIS_PASSWORD', redis_tls_server.password)
    uri = redis_tls_server.uri('tls', ca_certs=redis_tls_server.ca_file)
    assert uri.startswith('rediss://')
    writer = open_writer(uri, dtype='float32')
    writer.add_slide('a', _grids(2))
    writer.finalize()
    np.testing.assert_array_equal(open_store(uri).read([1]), _grids(2)[[1]])
    with pytest.raises(StoreError, match='certificate verify failed'):
        open_store(redis_tls_server.uri('tls', retries=0))  # CA not given
    with pytest.raises(StoreError, match='Redis at .* closed the connection|cannot connect'):
        open_store(redis_tls_server.uri('tls', retries=0).replace('rediss://', 'redis://'))
