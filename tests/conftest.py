"""Shared pytest fixtures.

Redis: ``redis_server`` starts a real ``redis-server`` (password, no persistence, a free
loopback port, data dir under pytest's tmp) once per session and stops it afterwards;
``redis_store_uri`` gives each test its own key prefix; ``redis_tls_server`` is a second
server that only speaks TLS (self-signed certificate made with ``openssl``). Tests that
use them are skipped when ``redis-server`` (Debian: ``apt-get install redis-server``) or,
for TLS, ``openssl`` is not installed.

Threads: one intra-op thread per process (``OMP_NUM_THREADS=1`` unless set, inherited by
the processes tests start). Most tests run tiny models, often in 2-3 processes at once
(DDP ranks, loader workers, redis-server): more threads than cores there made tiny ops
10x slower (a toy MIL fit: 3.3 s on one thread, 35 s on two on a busy 2-core machine).

Timeouts: every test fails after 300 s (``timeout`` in ``setup.cfg``, pytest-timeout's
``signal`` method: the test raises, its fixtures clean up, an xdist worker goes on with
the next test), so a hung request fails in minutes; tests marked ``slow`` get
``SLOW_TEST_TIMEOUT_S`` unless they carry their own ``@pytest.mark.timeout(...)``.

Devices: tests run on the CPU whatever the host has. Unless a test is marked
``@pytest.mark.cuda`` (or ``cuda(2)`` for two GPUs), it sees no GPU: processes it
starts get ``CUDA_VISIBLE_DEVICES=''`` and mmengine's runners built in this process
stay on the CPU. Marked tests are skipped, with the reason, on hosts with fewer GPUs.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass

import mmengine.device.utils
import pytest
import torch
from mmengine.registry import DefaultScope

REDIS_PASSWORD_ENV = 'SLPD_TEST_REDIS_PASSWORD'
SLOW_TEST_TIMEOUT_S = 900  # trainings in subprocesses, on a busy 2-core machine


def pytest_configure(config) -> None:
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))


def pytest_collection_modifyitems(config, items) -> None:
    start_longest_files_first(items)
    found = torch.cuda.device_count()  # NVML count: does not initialise CUDA
    for item in items:
        if item.get_closest_marker('slow') and not item.get_closest_marker('timeout'):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))
        marker = item.get_closest_marker('cuda')
        needed = (marker.args[0] if marker.args else 1) if marker else 0
        if found < needed:
            item.add_marker(pytest.mark.skip(
                reason=f'needs {needed} CUDA device(s), this host has {found}'))


def start_longest_files_first(items: list) -> None:
    """Order the files so that the longest start first: a file with a test that declares
    a longer ``timeout`` first, then files with a ``slow`` test, then the rest; collection
    order otherwise. ``make test`` hands whole files to workers in this order
    (``--dist loadfile --no-loadscope-reorder``), so that the short files fill the gaps at
    the end instead of one long file starting last."""
    rank: dict[str, tuple[float, int]] = {}
    for item in items:
        timeout = item.get_closest_marker('timeout')
        seconds = float(timeout.args[0]) if timeout and timeout.args else 0.0
        slow = item.get_closest_marker('slow') is not None
        worst = rank.get(item.location[0], (0.0, 0))
        rank[item.location[0]] = (max(worst[0], seconds), max(worst[1], int(slow)))
    items.sort(key=lambda item: tuple(-v for v in rank[item.location[0]]))


@pytest.fixture(autouse=True)
def cpu_unless_marked_cuda(request, monkeypatch):
    """Pin tests without the ``cuda`` marker to the CPU (see the module docstring)."""
    if request.node.get_closest_marker('cuda') is None:
        monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
        monkeypatch.setattr(mmengine.device.utils, 'DEVICE', 'cpu')  # get_device() reads it


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Give each test the default scope the previous one started with.

    Building a runner makes its scope the process's current one (a plain mmengine
    ``Runner`` makes it ``'mmengine'``), and it stays after the runner is gone.
    """
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict = saved


@dataclass(frozen=True)
class RedisServer:
    """A running test server: loopback host, port, password and its process."""

    host: str
    port: int
    password: str
    process: subprocess.Popen
    ca_file: str | None = None

    def client(self, **kwargs):
        import redis
        tls = dict(ssl=True, ssl_ca_certs=self.ca_file) if self.ca_file else {}
        return redis.Redis(host=self.host, port=self.port, password=self.password,
                           **tls, **kwargs)

    def uri(self, prefix: str, **query: object) -> str:
        """Store URI with the password passed through ``REDIS_PASSWORD_ENV``."""
        params = '&'.join(f'{k}={v}' for k, v in dict(
            prefix=prefix, password_env=REDIS_PASSWORD_ENV, **query).items())
        scheme = 'rediss' if self.ca_file else 'redis'
        return f'{scheme}://{self.host}:{self.port}/0?{params}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _start_redis(tmp_dir, password: str, tls_files: tuple[str, str] | None = None,
                 port: int | None = None, extra_args: tuple[str, ...] = ()) -> RedisServer:
    """Start ``redis-server`` on ``port`` (default: a free one); ``extra_args`` override
    the defaults (e.g. ``('--appendonly', 'yes')`` to persist data across a restart)."""
    import redis
    exe = shutil.which('redis-server')
    fixed_port = port
    for _ in range(3):  # another process may grab the free port before redis binds it
        port = fixed_port or _free_port()
        listen = ['--port', str(port)]
        if tls_files:
            cert, key = tls_files
            listen = ['--port', '0', '--tls-port', str(port), '--tls-cert-file', cert,
                      '--tls-key-file', key, '--tls-ca-cert-file', cert,
                      '--tls-auth-clients', 'no']
        proc = subprocess.Popen(
            [exe, *listen, '--bind', '127.0.0.1', '--requirepass', password,
             '--save', '', '--appendonly', 'no', '--dir', str(tmp_dir),
             '--protected-mode', 'yes', '--loglevel', 'warning', *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        server = RedisServer('127.0.0.1', port, password, proc,
                             tls_files[0] if tls_files else None)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                server.client(socket_connect_timeout=0.2).ping()
                return server
            except redis.ConnectionError:
                time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise RuntimeError('could not start redis-server on a free loopback port')


def _stop(server: RedisServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _need_redis_server() -> None:
    if shutil.which('redis-server') is None:
        pytest.skip('redis-server is not installed (Debian/Ubuntu: apt-get install '
                    'redis-server); Redis store tests need a real server')


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory):
    """A password-protected ``redis-server`` on a free loopback port for the session."""
    _need_redis_server()
    server = _start_redis(tmp_path_factory.mktemp('redis'), f'pw-{uuid.uuid4().hex}')
    yield server
    _stop(server)


@pytest.fixture(scope='session')
def redis_tls_server(tmp_path_factory):
    """A ``redis-server`` that only accepts TLS, with a self-signed loopback certificate."""
    _need_redis_server()
    if shutil.which('openssl') is None:
        pytest.skip('openssl is not installed; needed to make a test TLS certificate')
    tmp = tmp_path_factory.mktemp('redis_tls')
    cert, key = str(tmp / 'cert.pem'), str(tmp / 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-keyout', key, '-out', cert, '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
                   check=True, capture_output=True)
    server = _start_redis(tmp, f'pw-{uuid.uuid4().hex}', (cert, key))
    yield server
    _stop(server)


@pytest.fixture
def redis_store_uri(redis_server, monkeypatch) -> str:
    """URI of an empty store with a fresh prefix; the password travels in an env var."""
    monkeypatch.setenv(REDIS_PASSWORD_ENV, redis_server.password)
    return redis_server.uri(f'test-{uuid.uuid4().hex[:12]}')
