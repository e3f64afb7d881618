"""Parse ``redis://`` / ``rediss://`` store URIs; keep the password out of every string.

Form::

    redis[s]://[user[:password]@]host[:port][/db][?prefix=NAME&password_env=VAR&...]

Query parameters:

- ``prefix``: key namespace of the store (default ``slpd``), so several datasets share
  one server. Letters, digits and ``_-.:/`` only.
- ``password_env``: name of an environment variable holding the password. Without it
  and without a password in the URI, ``SLPD_REDIS_PASSWORD`` is used when set.
- ``retries`` (default 5) and ``backoff`` (seconds, default 0.05): on a lost connection a
  request is retried after ``backoff * 2**k`` seconds (capped at 2 s), ``retries`` times.
- ``timeout``: seconds to wait for a reply (socket timeout, default 30); connecting
  waits at most ``min(timeout, 10)`` s. A server that accepts but stays silent is asked
  twice, then reported (about a minute with the defaults).
- TLS (``rediss://`` only): ``ca_certs`` (CA bundle path), ``certfile`` and ``keyfile``
  (client certificate), ``check_hostname`` (``true``/``false``, default true).

A password written into the URI works but lands in configs that mmengine dumps to the
work dir; prefer ``password_env`` (a warning says so). :func:`move_password_to_env`
takes it out of a URI; call it before the config is logged or dumped.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from .base import StoreError

SCHEMES = ('redis', 'rediss')
PASSWORD_ENV = 'SLPD_REDIS_PASSWORD'
DEFAULT_PREFIX = 'slpd'
Number = TypeVar('Number', int, float)
_PREFIX_RE = re.compile(r'^[A-Za-z0-9_.:/-]+$')
_OPTIONS = ('prefix', 'password_env', 'retries', 'backoff', 'timeout', 'ca_certs',
            'certfile', 'keyfile', 'check_hostname')


def is_redis_uri(uri: object) -> bool:
    """Whether ``uri`` is a string naming a Redis store."""
    return isinstance(uri, str) and uri.split('://', 1)[0].lower() in SCHEMES and '://' in uri


@dataclass(frozen=True)
class RedisLocation:
    """Where a Redis store lives and how to log in; ``str()`` never shows the password.

    Attributes:
        host: Server host name or address.
        port: Server port.
        db: Database number.
        prefix: Key namespace of the store.
        username: ACL user name, or None for the default user.
        password: The password (kept out of ``repr``/``str``), or None.
        tls: Whether to connect with TLS (``rediss://``).
        retries: Retries of a request after a lost connection.
        backoff: First retry delay in seconds; doubles each retry.
        timeout: Socket timeout in seconds.
        tls_options: ``ssl_*`` keyword arguments for :class:`redis.Redis`.
    """

    host: str
    port: int
    db: int
    prefix: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    retries: int = 5
    backoff: float = 0.05
    timeout: float = 30.0
    tls_options: tuple[tuple[str, object], ...] = ()

    @property
    def connect_timeout(self) -> float:
        """Seconds a TCP/TLS connect may take."""
        return min(self.timeout, 10.0)

    @property
    def address(self) -> str:
        """``host:port``, for error messages."""
        return f'{self.host}:{self.port}'

    def __str__(self) -> str:
        user = ''
        if self.username or self.password:
            user = (self.username or '') + (':***' if self.password else '') + '@'
        scheme = 'rediss' if self.tls else 'redis'
        return f'{scheme}://{user}{self.address}/{self.db}?prefix={self.prefix}'

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the password replaced by ``***``."""
        return text.replace(self.password, '***') if self.password else text

    def client_kwargs(self) -> dict:
        """Keyword arguments for :class:`redis.Redis` (retries are done by the caller)."""
        kwargs = dict(host=self.host, port=self.port, db=self.db, username=self.username,
                      password=self.password, socket_timeout=self.timeout,
                      socket_connect_timeout=self.connect_timeout, ssl=self.tls)
        kwargs.update(dict(self.tls_options))
        return kwargs


def redact_uri(uri: str) -> str:
    """``uri`` with an inline password replaced by ``***``."""
    password = urlsplit(uri).password
    return uri if password is None else uri.replace(f':{password}@', ':***@')


def _one(query: dict[str, list[str]], key: str, uri: str) -> str | None:
    values = query.get(key)
    if values is None:
        return None
    if len(values) != 1:
        raise StoreError(f'{uri}: query parameter {key!r} given {len(values)} times')
    return values[0]


def _number(text: str | None, kind: type[Number], default: Number, key: str, uri: str
            ) -> Number:
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise StoreError(f'{uri}: {key}={text!r} is not a {kind.__name__}') from None
    if value < 0:
        raise StoreError(f'{uri}: {key} must be >= 0, got {value}')
    return value


def parse_redis_uri(uri: str) -> RedisLocation:
    """Parse a store URI (see the module docstring).

    Raises:
        StoreError: for a malformed URI, an unknown query parameter or a missing
            password environment variable. Messages never contain the password.
    """
    parts = urlsplit(uri)
    safe = redact_uri(uri)
    if parts.scheme.lower() not in SCHEMES:
        raise StoreError(f'{safe}: expected a redis:// or rediss:// URI')
    try:
        host, port = parts.hostname, parts.port or 6379
    except ValueError:
        raise StoreError(f'{safe}: the port is not a number in 0..65535') from None
    if not host:
        raise StoreError(f'{safe}: no host (expected redis://[user:password@]host:port/db)')
    path = parts.path.strip('/')
    if path and not path.isdigit():
        raise StoreError(f'{safe}: the path must be a database number, got {path!r}')
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise StoreError(f'{safe}: unknown query parameter(s) {unknown}; valid: {_OPTIONS}')
    prefix = _one(query, 'prefix', safe) or DEFAULT_PREFIX
    if not _PREFIX_RE.match(prefix):
        raise StoreError(f'{safe}: prefix {prefix!r} may only contain letters, digits '
                         f'and _-.:/')
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None:
        warnings.warn(f'{safe}: the Redis password is written in the store URI, so it '
                      f'ends up in dumped configs; use ?password_env=VAR or the '
                      f'{PASSWORD_ENV} environment variable instead', stacklevel=3)
    env = _one(query, 'password_env', safe)
    if env is not None:
        if env not in os.environ:
            raise StoreError(f'{safe}: password_env={env}, but the environment variable '
                             f'{env} is not set')
        password = os.environ[env]
    elif password is None:
        password = os.environ.get(PASSWORD_ENV) or None
    timeout = _number(_one(query, 'timeout', safe), float, 30.0, 'timeout', safe)
    if timeout == 0:
        raise StoreError(f'{safe}: timeout must be > 0 seconds')
    tls = parts.scheme.lower() == 'rediss'
    tls_options: list[tuple[str, object]] = []
    for key in ('ca_certs', 'certfile', 'keyfile', 'check_hostname'):
        value = _one(query, key, safe)
        if value is None:
            continue
        if not tls:
            raise StoreError(f'{safe}: {key} is a TLS option; use rediss://')
        option: object = value
        if key == 'check_hostname':
            option = value.lower() not in ('0', 'false', 'no')
        tls_options.append((f'ssl_{key}', option))
    return RedisLocation(
        host=host, port=port, db=int(path or 0), prefix=prefix,
        username=unquote(parts.username) if parts.username else None, password=password,
        tls=tls, retries=_number(_one(query, 'retries', safe), int, 5, 'retries', safe),
        backoff=_number(_one(query, 'backoff', safe), float, 0.05, 'backoff', safe),
        timeout=timeout,
        tls_options=tuple(tls_options))


def move_password_to_env(uri: str) -> str:
    """Take an inline password out of a store URI and pass it through the environment.

    The password of ``redis://user:PASSWORD@host:port/db?...`` is put into an environment
    variable of this process (named from user, host and port, so every DDP rank picks the
    same name; forked DataLoader workers inherit it), and the URI comes back as
    ``redis://user@host:port/db?...&password_env=VAR``: nothing secret is left in the
    config that mmengine logs, dumps to the work dir and stores in checkpoints. A URI
    without an inline password, or any other string, is returned unchanged.

    Args:
        uri: A store location (folder path or ``redis://``/``rediss://`` URI).

    Returns:
        The URI without its password.

    Raises:
        StoreError: if the URI also names ``password_env`` and that variable holds a
            different password (the message shows neither).
    """
    if not is_redis_uri(uri):
        return uri
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    userinfo, host = parts.netloc.rsplit('@', 1)
    user = userinfo.split(':', 1)[0]
    env = _one(parse_qs(parts.query, keep_blank_values=True), 'password_env', redact_uri(uri))
    query = parts.query
    if env is None:
        digest = hashlib.sha256(f'{unquote(user)}@{host.lower()}'.encode()).hexdigest()[:8]
        env = f'{PASSWORD_ENV}_{digest.upper()}'
        query = '&'.join(filter(None, [query, f'password_env={env}']))
    password = unquote(parts.password)
    if os.environ.get(env, password) != password:
        raise StoreError(f'{redact_uri(uri)}: the URI holds a password and also names '
                         f'password_env={env}, whose value differs; give only one')
    os.environ[env] = password
    netloc = f'{user}@{host}' if user else host
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
