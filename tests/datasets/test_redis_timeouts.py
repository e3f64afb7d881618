"""No Redis request waits without bound, and each failure says what happened.

Two real kinds of silence: a loopback socket that accepts connections and never
answers, and a real ``redis-server`` stopped with SIGSTOP (the kernel still accepts its
connections). Both must end in a ``StoreError`` naming the host, the request and the
timeout, within the configured bound. Without the socket timeout these tests hang until
pytest-timeout fails them.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import replace

import numpy as np
import pytest
from torch.utils.data import DataLoader, Dataset

from slpd_plugin.datasets.stores import StoreError, open_store, open_writer, parse_redis_uri
from slpd_plugin.datasets.stores.redis_conn import RedisConnection
from tests.conftest import REDIS_PASSWORD_ENV, _need_redis_server, _start_redis, _stop
from tests.utils import ROOT
from tests.warm import python_exe

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 0.5  # ?timeout= of the URIs below


class SilentServer:
    """Accepts every connection on a loopback port and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def own_server(tmp_path, monkeypatch):
    """A private redis-server (SIGSTOP must not freeze the session's shared one)."""
    _need_redis_server()
    password = f'pw-{uuid.uuid4().hex}'
    monkeypatch.setenv(REDIS_PASSWORD_ENV, password)
    server = _start_redis(tmp_path, password)
    yield server
    os.kill(server.process.pid, signal.SIGCONT)
    _stop(server)


NO_REPLY = (r'Redis at 127\.0\.0\.1:{port}: connected, but no reply to {what} within '
            r'0\.5 s \(2 attempts, (\d+\.\d) s\)')


def _assert_no_reply(error: str, port: int, what: str, took: float) -> None:
    match = re.search(NO_REPLY.format(port=port, what=what), error)
    assert match, error
    assert float(match.group(1)) <= took + 0.1  # the stated time is the real one
    assert 2 * TIMEOUT <= took < 10 * TIMEOUT  # two silent attempts, then the error
    assert 'retries' not in error  # retrying a stalled server does not help


def test_silent_socket_reader_and_writer_fail_within_the_bound(silent):
    uri = f'redis://127.0.0.1:{silent.port}/0?prefix=x&timeout={TIMEOUT}&backoff=0.01'
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_store(uri)
    _assert_no_reply(str(err.value), silent.port, 'read the manifest',
                     time.monotonic() - start)
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_writer(uri)
    _assert_no_reply(str(err.value), silent.port, 'read the journal',
                     time.monotonic() - start)


def _stopped(server):
    os.kill(server.process.pid, signal.SIGSTOP)
    return time.monotonic()


def test_stopped_server_fails_a_slide_write_and_loses_nothing(own_server):
    uri = own_server.uri('stop', timeout=TIMEOUT, backoff=0.01)
    grids = np.random.default_rng(0).standard_normal((3, 4, 16, 16)).astype(np.float32)
    writer = open_writer(uri, dtype='float32')
    writer.add_slide('a', grids)
    start = _stopped(own_server)
    with pytest.raises(StoreError) as err:
        writer.add_slide('b', grids + 1)
    _assert_no_reply(str(err.value), own_server.port, "write slide 'b'",
                     time.monotonic() - start)
    os.kill(own_server.process.pid, signal.SIGCONT)
    again = open_writer(uri, dtype='float32')  # resumes after the committed slide
    assert again.written_slides() == ['a']
    again.add_slide('b', grids + 1)
    again.finalize()
    np.testing.assert_array_equal(open_store(uri).read(range(6)),
                                  np.concatenate([grids, grids + 1]))


class _Regions(Dataset):
    def __init__(self, store) -> None:
        self.store = store

    def __len__(self) -> int:
        return self.store.num_regions

    def __getitem__(self, i: int) -> np.ndarray:
        return self.store.read([i])[0]


def test_stopped_server_fails_a_dataloader_worker_read(own_server):
    uri = own_server.uri('stop', timeout=TIMEOUT, backoff=0.01)
    writer = open_writer(uri)
    writer.add_slide('a', np.zeros((4, 4, 16, 16), np.float32))
    writer.finalize()
    loader = DataLoader(_Regions(open_store(uri)), batch_size=2, num_workers=1)
    start = _stopped(own_server)
    with pytest.raises(StoreError) as err:
        next(iter(loader))
    took = time.monotonic() - start
    assert re.search(NO_REPLY.format(port=own_server.port, what=r'read 1 region\(s\)'),
                     str(err.value)), str(err.value)
    assert took < 10 * TIMEOUT + 10  # + the worker's start


def test_ingest_cli_reports_a_silent_server_in_one_line(silent, tmp_path):
    from tests.reliability.helpers import tiny_store
    source = tiny_store(tmp_path / 'local')
    uri = f'redis://127.0.0.1:{silent.port}/0?prefix=x&timeout=1'
    start = time.monotonic()
    proc = subprocess.run([python_exe(), 'tools/ingest.py', str(source), '--store', uri,
                           '--no-progress'], cwd=ROOT, capture_output=True, text=True,
                          timeout=100, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    took = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    assert 'connected, but no reply to read the journal within 1 s' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert took < 60


def test_unreachable_server_is_told_apart_and_names_the_retries():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_store(f'redis://127.0.0.1:{port}/0?prefix=x&retries=3&backoff=0.1')
    took = time.monotonic() - start
    match = re.search(rf'cannot connect to Redis at 127\.0\.0\.1:{port} to read the manifest '
                      rf'\(4 attempt\(s\), (\d+\.\d) s\)', str(err.value))
    assert match, str(err.value)
    assert 0.7 <= float(match.group(1)) <= took + 0.1  # 0.1 + 0.2 + 0.4 s of backoff
    assert '?retries=N' in str(err.value) and 'no reply' not in str(err.value)


def test_server_error_reply_is_not_called_unreachable(redis_server):
    key = f'list-{uuid.uuid4().hex[:8]}'
    redis_server.client().lpush(key, 'x')
    uri = f'redis://127.0.0.1:{redis_server.port}/0?prefix=x'
    conn = RedisConnection(replace(parse_redis_uri(uri), password=redis_server.password))
    with pytest.raises(StoreError) as err:
        conn.call('read a list as a string', lambda c: c.get(key))
    text = str(err.value)
    assert (f'Redis at 127.0.0.1:{redis_server.port}: the server answered read a list as a '
            f'string with an error: ResponseError: WRONGTYPE') in text
    assert 'retries' not in text and 'cannot connect' not in text


def test_default_settings_report_a_silent_server_within_two_minutes():
    from slpd_plugin.datasets.stores.redis_conn import SILENT_ATTEMPTS, retry_delays
    loc = parse_redis_uri('redis://127.0.0.1:6379/0')
    worst = (SILENT_ATTEMPTS * (loc.timeout + loc.connect_timeout)  # each + its TCP probe
             + sum(retry_delays(loc.retries, loc.backoff)[:SILENT_ATTEMPTS - 1]))
    assert worst < 120, worst
