"""A fork-safe Redis connection with retries that end in a clear :class:`StoreError`.

The client (and its connection pool) is created lazily, on the first request of each
process: a DataLoader worker forked from the main process never reuses the parent's
sockets, and pickling drops the client. A request that loses its connection is retried
with exponential backoff; authentication and permission errors are not retried. Every
retry, and the recovery after one, is logged as a warning (logger
``slpd_plugin.datasets.stores.redis_conn``; stderr unless the application configures
logging), naming ``host:port`` and never the password.
"""
from __future__ import annotations

import logging
import os
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
            # the pool's connection options (redis.Redis() takes this one only from 8.x)
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
            StoreError: naming ``host:port`` (never the password) when the server stays
                unreachable, refuses the credentials or the command.
        """
        loc = self.location
        error: Exception | None = None
        delays = retry_delays(loc.retries, loc.backoff)
        started = time.monotonic()
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
                continue
            except NoPermissionError as e:
                raise StoreError(f'{loc}: {what}: permission denied ({self._message(e)}); '
                                 f'check the user\'s ACL (keys ~{loc.prefix}*, commands): a '
                                 f'read-only user can read a store but not write one'
                                 ) from None
            except RedisError as e:
                raise StoreError(f'{loc}: {what}: the server answered with an error: '
                                 f'{type(e).__name__}: {self._message(e)}') from None
            if attempt:
                logger.warning(f'Redis at {loc.address}: {what}: succeeded on retry '
                               f'{attempt}/{loc.retries}')
            return reply
        raise StoreError(self._failure(what, error, time.monotonic() - started)) from None

    def _failure(self, what: str, error: Exception, elapsed: float) -> str:
        """The message for a request whose every attempt lost or never got a connection."""
        loc = self.location
        tries = f'{loc.retries + 1} attempt(s) over {elapsed:.1f} s'
        cause = f'{type(error).__name__}: {self._message(error)}'
        if 'connecting' in str(error):  # redis-py: "Error N connecting to", "Timeout connecting"
            return (f'cannot connect to Redis at {loc.address} to {what} ({tries}; connect '
                    f'timeout {loc.connect_timeout:g} s): {cause}; check the host, port and '
                    f'TLS settings, or, if the server is restarting, raise '
                    f'?retries=N&backoff=S in the store URI')
        if isinstance(error, TimeoutError):
            return (f'Redis at {loc.address} accepted the connection but did not reply within '
                    f'{loc.timeout:g} s to {what} ({tries}): {cause}; the server is stalled or '
                    f'overloaded (if it is only slow, raise ?timeout=S in the store URI)')
        return (f'Redis at {loc.address} closed the connection to {what} ({tries}): {cause}; '
                f'if the server is restarting, raise ?retries=N&backoff=S in the store URI')

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
