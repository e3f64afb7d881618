"""A fork-safe Redis connection with retries that end in a clear :class:`StoreError`.

The client (and its connection pool) is created lazily, on the first request of each
process: a DataLoader worker forked from the main process never reuses the parent's
sockets, and pickling drops the client. A request that loses its connection is retried
with exponential backoff; authentication and permission errors are not retried. Every
retry, and the recovery after one, is logged as a warning (logger
``slpd_plugin.datasets.stores.redis_conn``; stderr unless the application configures
logging), naming ``host:port`` and never the password.

Nothing waits without bound: every socket has a connect timeout and a read timeout
(``?timeout=S``, default 30 s). A server that accepts the connection but does not answer
within it (stopped with SIGSTOP, swapping, stuck in a long command) is asked
``SILENT_ATTEMPTS`` times at most, so with the defaults it is reported within about a
minute. The final error says which of three things happened:

- ``cannot connect`` — refused, unknown host, TLS handshake failed, connect timeout;
  retrying helps when the server is restarting, so the message names ``?retries``;
- ``connected, but no reply within N s`` — checked by a fresh TCP connect after the
  timeout; the message names ``?timeout``;
- ``the server answered with an error`` — never retried.

Each message states the real time spent since the first attempt.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoPermissionError,
    RedisError,
    TimeoutError,
)
from redis.retry import Retry

from .base import StoreError
from .redis_uri import RedisLocation

T = TypeVar('T')
MAX_BACKOFF_S = 2.0
SOCKET_READ_BYTES = 2 ** 20  # 1 MiB reads of large replies: 32x fewer syscalls than 32 KiB
SILENT_ATTEMPTS = 2  # a server that accepts and never answers is asked this often
logger = logging.getLogger(__name__)


def retry_delays(retries: int, backoff: float) -> list[float]:
    """Seconds slept before each retry: ``backoff * 2**k``, capped at ``MAX_BACKOFF_S``."""
    return [min(backoff * 2 ** k, MAX_BACKOFF_S) for k in range(retries)]


class RedisConnection:
    """Lazily connected client for one :class:`RedisLocation`.

    Args:
        location: Server, credentials, retry settings.
    """

    def __init__(self, location: RedisLocation) -> None:
        self.location = location
        self._client: redis.Redis | None = None
        self._pid: int | None = None

    def client(self) -> redis.Redis:
        """This process's client; created on first use and again after a fork."""
        if self._client is None or self._pid != os.getpid():
            self._client = redis.Redis(**self.location.client_kwargs(),
                                       retry=Retry(NoBackoff(), 0))
            # a connection option of the pool (redis.Redis() takes it only from 8.0 on)
            self._client.connection_pool.connection_kwargs['socket_read_size'] = \
                SOCKET_READ_BYTES
            self._pid = os.getpid()
        return self._client

    def call(self, what: str, request: Callable[[redis.Redis], T]) -> T:
        """Run ``request(client)``, retrying it when the connection is lost.

        Args:
            what: Names the request in error messages (e.g. ``"read 128 regions"``).
            request: Sends one request (a command or a whole pipeline) and returns the
                reply. Must be safe to run again after a connection error.

        Raises:
            StoreError: naming ``host:port`` (never the password), what was asked and how
                long was spent, when the server cannot be reached, stays silent, refuses
                the credentials or answers with an error.
        """
        loc = self.location
        delays = retry_delays(loc.retries, loc.backoff)
        start = time.monotonic()
        silent = 0
        error: Exception | None = None
        for attempt in range(loc.retries + 1):
            if attempt:
                logger.warning(f'Redis at {loc.address}: {what} failed ({type(error).__name__}: '
                               f'{self._message(error)}); retry {attempt}/{loc.retries} in '
                               f'{delays[attempt - 1]:.2g} s')
                time.sleep(delays[attempt - 1])
            try:
                reply = request(self.client())
            except AuthenticationError as e:
                raise StoreError(
                    f'Redis at {loc.address}: authentication failed for user '
                    f'{loc.username or "default"!r} ({self._message(e)}); check the password '
                    f'(?password_env=VAR or SLPD_REDIS_PASSWORD)') from None
            except (ConnectionError, TimeoutError) as e:
                error = e
                self._drop_connections()
                if isinstance(e, TimeoutError) and self._accepts_connections():
                    silent += 1
                    if silent >= SILENT_ATTEMPTS:
                        raise StoreError(
                            f'Redis at {loc.address}: connected, but no reply to {what} within '
                            f'{loc.timeout:g} s ({silent} attempts, {self._since(start)}); the '
                            f'server is stalled or overloaded (stopped, swapping, a long '
                            f'command): check it with redis-cli -h {loc.host} -p {loc.port} '
                            f'ping; ?timeout=S in the store URI sets the wait') from None
                continue
            except NoPermissionError as e:
                raise StoreError(f'{loc}: {what}: permission denied ({self._message(e)}); '
                                 f'check the user\'s ACL (keys ~{loc.prefix}*, commands): a '
                                 f'read-only user can read a store but not write one'
                                 ) from None
            except RedisError as e:
                raise StoreError(f'Redis at {loc.address}: the server answered {what} with an '
                                 f'error: {type(e).__name__}: {self._message(e)}') from None
            if attempt:
                logger.warning(f'Redis at {loc.address}: {what}: succeeded on retry '
                               f'{attempt}/{loc.retries}')
            return reply
        raise StoreError(f'cannot connect to Redis at {loc.address} to {what} '
                         f'({loc.retries + 1} attempt(s), {self._since(start)}): '
                         f'{type(error).__name__}: {self._message(error)}; is the server '
                         f'running and reachable? To wait longer for a restarting server, '
                         f'raise ?retries=N&backoff=S in the store URI') from None

    def _accepts_connections(self) -> bool:
        """Whether a plain TCP connect to the server succeeds now.

        After a timeout, this tells a silent server from an unreachable one.
        """
        try:
            with socket.create_connection((self.location.host, self.location.port),
                                          timeout=self.location.connect_timeout):
                return True
        except OSError:
            return False

    @staticmethod
    def _since(start: float) -> str:
        return f'{time.monotonic() - start:.1f} s'

    def _message(self, error: Exception | None) -> str:
        return self.location.redact(str(error))

    def _drop_connections(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.connection_pool.disconnect()

    def close(self) -> None:
        """Close this process's connections (a forked child only forgets the parent's)."""
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None
        self._pid = None

    def __getstate__(self) -> dict:
        return dict(location=self.location, _client=None, _pid=None)
