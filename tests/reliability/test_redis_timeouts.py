"""No Redis request waits without bound, and each failure says what happened.

A loopback socket that accepts connections and never answers, and a real ``redis-server``
frozen with ``SIGSTOP``, must both end in a :class:`StoreError` within the configured
bound, naming the host, the request (slide or key) and the timeout. Without the socket
timeout both tests hang until pytest-timeout stops them.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
import uuid

import numpy as np
import pytest

from slpd_plugin.datasets.stores import StoreError, open_store, open_writer, parse_redis_uri
from slpd_plugin.datasets.stores.redis_conn import RedisConnection, retry_delays
from tests.conftest import REDIS_PASSWORD_ENV, _need_redis_server, _start_redis, _stop
from tests.reliability.helpers import ingest_cli, tiny_store

TIMEOUT = 0.5
RETRIES = 1


@pytest.fixture
def silent_server():
    """A loopback port that accepts connections and never sends a byte: ``port``."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except (socket.timeout, OSError):
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def frozen_redis(tmp_path, monkeypatch):
    """A private ``redis-server``; ``freeze()`` stops it with SIGSTOP (resumed at the end)."""
    _need_redis_server()
    password = f'pw-{uuid.uuid4().hex}'
    monkeypatch.setenv(REDIS_PASSWORD_ENV, password)
    server = _start_redis(tmp_path, password)

    def freeze():
        os.kill(server.process.pid, signal.SIGSTOP)
    yield server, freeze
    os.kill(server.process.pid, signal.SIGCONT)
    _stop(server)


def _bound(uri: str) -> float:
    """The longest a request may take before failing: every attempt times out."""
    loc = parse_redis_uri(uri)
    return (loc.retries + 1) * loc.timeout + sum(retry_delays(loc.retries, loc.backoff))


def _stated_seconds(message: str) -> float:
    return float(re.search(r'attempt\(s\) over ([0-9.]+) s', message).group(1))


def test_silent_server_fails_within_the_bound_naming_host_request_and_timeout(silent_server):
    uri = (f'redis://127.0.0.1:{silent_server}/0?prefix=x&timeout={TIMEOUT}'
           f'&retries={RETRIES}&backoff=0.01')
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_store(uri)
    took = time.monotonic() - started
    message = str(err.value)
    assert took < _bound(uri) + 2, f'{took:.1f} s, bound {_bound(uri):.1f} s'
    assert f'127.0.0.1:{silent_server} accepted the connection but did not reply ' \
           f'within {TIMEOUT:g} s to read the manifest' in message
    assert f'{RETRIES + 1} attempt(s)' in message
    assert abs(_stated_seconds(message) - took) < 0.5  # the real elapsed time
    assert 'retries=N' not in message  # more retries do not help a stalled server


def test_ingest_tool_reports_a_silent_server_in_one_line_within_the_bound(silent_server,
                                                                        tmp_path):
    uri = (f'redis://127.0.0.1:{silent_server}/0?prefix=x&timeout={TIMEOUT}'
           f'&retries={RETRIES}&backoff=0.01')
    source = str(tiny_store(tmp_path / 'local', num_slides=2))
    proc = ingest_cli(source, '--store', uri, check=False)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith('ingest.py: error:')]
    assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert f'127.0.0.1:{silent_server} accepted the connection but did not reply within ' \
           f'{TIMEOUT:g} s' in lines[0]
    assert _stated_seconds(lines[0]) < _bound(uri) + 2


def test_sigstopped_redis_fails_a_slide_write_and_a_read_within_the_bound(frozen_redis):
    server, freeze = frozen_redis
    uri = server.uri('frozen', timeout=TIMEOUT, retries=RETRIES, backoff=0.01)
    grids = np.random.default_rng(0).standard_normal((3, 4, 16, 16)).astype(np.float32)
    writer = open_writer(uri)
    writer.add_slide('first', grids)
    writer.finalize()
    writer = open_writer(uri.replace('prefix=frozen', 'prefix=frozen2'))  # connected
    store = open_store(uri)
    store.read([0])  # connected
    freeze()
    for action, what in ((lambda: writer.add_slide('second', grids), "write slide 'second'"),
                         (lambda: store.read([1, 2]), 'read 2 region(s)')):
        started = time.monotonic()
        with pytest.raises(StoreError) as err:
            action()
        took = time.monotonic() - started
        assert took < _bound(uri) + 2, f'{what}: {took:.1f} s, bound {_bound(uri):.1f} s'
        assert f'127.0.0.1:{server.port} accepted the connection but did not reply within ' \
               f'{TIMEOUT:g} s to {what}' in str(err.value)
        assert abs(_stated_seconds(str(err.value)) - took) < 0.5


def test_refused_connection_reads_as_cannot_connect_with_retry_advice():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(StoreError) as err:
        open_store(f'redis://127.0.0.1:{port}/0?prefix=x&retries=2&backoff=0.01')
    message = str(err.value)
    assert message.startswith(f'cannot connect to Redis at 127.0.0.1:{port} to read the '
                              f'manifest (3 attempt(s) over ')
    assert 'raise ?retries=N&backoff=S' in message


def test_server_error_reads_as_an_answer_without_retry_advice(redis_store_uri):
    conn = RedisConnection(parse_redis_uri(redis_store_uri))
    with pytest.raises(StoreError) as err:
        conn.call('run a bad command', lambda c: c.execute_command('NO-SUCH-COMMAND'))
    conn.close()
    message = str(err.value)
    assert 'run a bad command: the server answered with an error: ResponseError' in message
    assert 'retries' not in message and 'attempt' not in message


def test_default_settings_report_a_silent_server_within_two_minutes():
    uri = 'redis://127.0.0.1:6379/0?prefix=x'
    loc = parse_redis_uri(uri)
    assert loc.timeout > 0 and loc.connect_timeout > 0
    assert _bound(uri) < 120, f'defaults allow {_bound(uri):.0f} s of silence'
