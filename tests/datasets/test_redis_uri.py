"""Store URIs: parsing, the password kept out of every string, dispatch."""
from __future__ import annotations

import pytest

from slpd_plugin.datasets.stores import StoreError, is_redis_uri, parse_redis_uri


def test_parse__full_uri_and_defaults():
    loc = parse_redis_uri('redis://reader@db.lab:6390/3?prefix=tcga_brca&retries=2&backoff=0.1')
    assert (loc.host, loc.port, loc.db, loc.prefix, loc.username) == (
        'db.lab', 6390, 3, 'tcga_brca', 'reader')
    assert (loc.retries, loc.backoff, loc.tls) == (2, 0.1, False)
    default = parse_redis_uri('redis://localhost')
    assert (default.port, default.db, default.prefix, default.password) == (6379, 0, 'slpd', None)


def test_parse__password_from_env_never_shown(monkeypatch):
    monkeypatch.setenv('MY_PW', 's3cret-value')
    loc = parse_redis_uri('redis://u@h:1/0?prefix=p&password_env=MY_PW')
    assert loc.password == 's3cret-value'
    for text in (str(loc), repr(loc), loc.redact('error with s3cret-value inside')):
        assert 's3cret-value' not in text
    assert str(loc) == 'redis://u:***@h:1/0?prefix=p'


def test_parse__default_password_env(monkeypatch):
    monkeypatch.setenv('SLPD_REDIS_PASSWORD', 'from-default-env')
    assert parse_redis_uri('redis://h/0').password == 'from-default-env'


def test_parse__password_in_uri_warns_and_is_redacted():
    with pytest.warns(UserWarning, match='password_env') as record:
        loc = parse_redis_uri('redis://u:hunter2@h:6379/0?prefix=p')
    assert loc.password == 'hunter2'
    assert all('hunter2' not in str(w.message) for w in record)
    assert 'hunter2' not in str(loc)


def test_parse__tls_options():
    loc = parse_redis_uri('rediss://h:6380/0?prefix=p&ca_certs=/etc/ca.pem&check_hostname=false')
    kwargs = loc.client_kwargs()
    assert kwargs['ssl'] is True and kwargs['ssl_ca_certs'] == '/etc/ca.pem'
    assert kwargs['ssl_check_hostname'] is False
    assert str(loc).startswith('rediss://')


@pytest.mark.parametrize('uri, match', [
    ('redis://h/0?prefix=p&colour=red', 'unknown query parameter'),
    ('redis://h/zero', 'database number'),
    ('redis://h:99999/0', 'port'),
    ('redis://h/0?prefix=a b', 'prefix'),
    ('redis://h/0?password_env=NOT_SET_ANYWHERE_42', 'NOT_SET_ANYWHERE_42 is not set'),
    ('redis://h/0?ca_certs=/x', 'TLS option'),
    ('redis://h/0?retries=-1', 'retries must be >= 0'),
    ('redis://:pw-in-error@/0', 'no host'),
])
def test_parse__bad_uri(uri, match):
    with pytest.raises(StoreError, match=match) as err:
        parse_redis_uri(uri)
    assert 'pw-in-error' not in str(err.value)


def test_is_redis_uri():
    assert is_redis_uri('redis://h') and is_redis_uri('rediss://h:1/0')
    assert not is_redis_uri('data/store') and not is_redis_uri('/redis://x')

