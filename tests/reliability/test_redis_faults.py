"""Redis faults during real training: the server restarted, and the server gone for good.

Each test starts its own ``redis-server`` (append-only file, so data survives a restart)
on a free loopback port, ingests a tiny store, starts ``tools/train.py`` reading it with
2 DataLoader workers, and stops the server (SIGTERM) while training runs.
"""
from __future__ import annotations

import hashlib
import re
import time
import uuid

import pytest
import torch

from tests.conftest import REDIS_PASSWORD_ENV, _need_redis_server, _start_redis, _stop
from tests.reliability.helpers import Training, ingest_cli, tiny_store
from tests.utils import logged_scalars

pytestmark = pytest.mark.slow
PERSIST = ('--appendonly', 'yes', '--appendfsync', 'always')
EPOCHS = 10


@pytest.fixture
def own_redis(tmp_path, monkeypatch):
    """Start/stop control over a private persistent server: ``(start, servers)``."""
    _need_redis_server()
    password = f'pw-{uuid.uuid4().hex}'
    monkeypatch.setenv(REDIS_PASSWORD_ENV, password)
    data_dir = tmp_path / 'redis'
    data_dir.mkdir()
    servers = []

    def start(port: int | None = None):
        servers.append(_start_redis(data_dir, password, port=port, extra_args=PERSIST))
        return servers[-1]
    yield start
    for server in servers:
        if server.process.poll() is None:
            _stop(server)


def start_training(tmp_path, uri: str) -> Training:
    return Training(tmp_path / 'work', f'train_dataloader.dataset.store={uri}',
                    'train_dataloader.dataset.generate=None',
                    'train_dataloader.num_workers=2', f'train_cfg.max_epochs={EPOCHS}')


def ingested(tmp_path, server, **query) -> str:
    uri = server.uri('faults', **query)
    ingest_cli(str(tiny_store(tmp_path / 'local')), '--store', uri)
    return uri


def test_server_restarted_mid_training_is_retried_and_nothing_is_lost(tmp_path, own_redis):
    server = own_redis()
    uri = ingested(tmp_path, server, retries=12, backoff=0.1)  # waits up to 17.1 s
    training = start_training(tmp_path, uri)
    try:
        training.wait_for(lambda: re.search(r'Epoch\(train\) +\[2\]', training.output),
                          'epoch 2')
        _stop(server)  # SIGTERM: the server flushes its append-only file and exits
        # Restart only once a request has met the outage: a fixed pause can fall
        # entirely inside a prototype refresh on a slow machine, and nothing is retried.
        training.wait_for(lambda: 'retry 1/12' in training.err_path.read_text(),
                          'a retried request', timeout=120)
        restarted = own_redis(port=server.port)
        assert restarted.client().dbsize() > 0  # the data came back from disk
        assert training.finish() == 0, training.output[-4000:]
    finally:
        training.stop()
    err = training.err_path.read_text()
    assert f'Redis at 127.0.0.1:{server.port}: read ' in err
    assert 'succeeded on retry' in err
    assert server.password not in training.output
    rows = [r for r in logged_scalars(training.work_dir) if 'loss' in r]
    iters = [r['iter'] for r in rows]
    assert iters == list(range(1, len(iters) + 1)) and len(iters) % EPOCHS == 0  # none lost
    assert (training.work_dir / f'epoch_{EPOCHS}.pth').is_file()


def test_server_gone_exits_with_store_error_and_keeps_the_last_checkpoint(tmp_path, own_redis):
    server = own_redis()
    uri = ingested(tmp_path, server, retries=3, backoff=0.2)  # waits up to 1.4 s
    training = start_training(tmp_path, uri)
    work = training.work_dir
    try:
        training.wait_for(lambda: (work / 'epoch_2.pth').is_file(), 'checkpoint epoch_2.pth')
        _stop(server)
        stopped = time.monotonic()
        before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in work.glob('epoch_*.pth')}
        code = training.finish(timeout=120)
        took = time.monotonic() - stopped
    finally:
        training.stop()
    err = training.err_path.read_text()
    assert code != 0
    assert 'StoreError' in err and f'Redis at 127.0.0.1:{server.port}' in err
    stated = re.search(r'\(4 attempt\(s\) over ([0-9.]+) s', err)
    assert stated and 1.4 <= float(stated.group(1)) < 60, err  # the real time, >= the backoff
    assert server.password not in training.output
    assert took < 60, f'training took {took:.0f} s to give up after the server stopped'
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in work.glob('epoch_*.pth')}
    assert {k: after[k] for k in before} == before  # untouched
    assert not list(work.glob('.*.tmp'))  # no half-written checkpoint
    last = max(after, key=lambda name: int(name[6:-4]))
    ckpt = torch.load(work / last, map_location='cpu', weights_only=True)
    assert ckpt['meta']['epoch'] == int(last[6:-4]) and ckpt['state_dict']
