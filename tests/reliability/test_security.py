"""Security: nothing from outside is unpickled, secrets stay out of the work dir, and key
prefixes keep stores apart. (TLS, the read-only ACL user and wrong passwords are tested
against real servers in ``tests/datasets/test_redis_store.py``.)"""
from __future__ import annotations

import ast
import functools
import http.server
import os
import threading
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from slpd_plugin.datasets.ingest import verify_store
from slpd_plugin.datasets.stores import StoreError, delete_redis_store, open_store, open_writer
from slpd_plugin.datasets.stores.redis_uri import move_password_to_env, parse_redis_uri
from tests.reliability.helpers import ingest_cli, tiny_store
from tests.utils import ROOT, run_train

SCANNED = ('slpd_plugin', 'tools', 'benchmarks', 'configs')
PICKLE_ALLOWED = ROOT / 'benchmarks' / 'baselines'  # reproduces the original code on purpose
UNSAFE_MODULES = {'pickle', 'cPickle', '_pickle', 'dill', 'cloudpickle', 'marshal', 'shelve',
                  'joblib'}


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else '<expr>'
    return None


def unsafe_loads(source: str) -> list[str]:
    """Unpickling calls in ``source``: imports of pickle-like modules, ``torch.load``
    without ``weights_only=True``, ``np.load(allow_pickle=True)``, ``read_pickle``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f'import {a.name}' for a in node.names
                      if a.name.split('.')[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split('.')[0] in UNSAFE_MODULES:
                found.append(f'from {node.module} import ...')
            elif node.module == 'torch' and any(a.name == 'load' for a in node.names):
                found.append('from torch import load')
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            call = f'{owner}.{node.func.attr}(...) line {node.lineno}'
            if node.func.attr == 'load' and owner == 'torch' and _keyword(
                    node, 'weights_only') is not True:
                found.append(call)
            elif node.func.attr == 'load' and owner in ('np', 'numpy') and _keyword(
                    node, 'allow_pickle') not in (None, False):
                found.append(call)
            elif node.func.attr in ('read_pickle', 'unsafe_load'):
                found.append(call)
    return found


def test_unsafe_loads_are_found():
    assert unsafe_loads('import pickle\nx = torch.load(p)\ny = np.load(p, allow_pickle=True)'
                        '\nz = torch.load(p, weights_only=False)') == [
        'import pickle', 'torch.load(...) line 2', 'np.load(...) line 3',
        'torch.load(...) line 4']
    assert unsafe_loads('torch.load(p, map_location="cpu", weights_only=True)\nnp.load(p)') == []


def test_no_unpickling_in_the_package_tools_or_benchmarks():
    files = [p for folder in SCANNED for p in (ROOT / folder).rglob('*.py')
             if PICKLE_ALLOWED not in p.parents]
    assert len(files) > 50
    found = {str(p.relative_to(ROOT)): bad for p in files
             if (bad := unsafe_loads(p.read_text()))}
    assert found == {}


def _secret_in_work_dir(work: Path, secret: str) -> list[str]:
    """Files under ``work`` whose bytes contain ``secret`` (logs, configs, checkpoints)."""
    files = [p for p in work.rglob('*') if p.is_file()]
    assert any(p.suffix == '.pth' for p in files) and any(p.suffix == '.log' for p in files)
    assert any(p.suffix == '.py' for p in files)  # the dumped config
    return [str(p.relative_to(work)) for p in files if secret.encode() in p.read_bytes()]


@pytest.fixture
def redis_tiny(tmp_path, redis_store_uri):
    """The tiny training store ingested into the shared server; returns its URI."""
    ingest_cli(str(tiny_store(tmp_path / 'local')), '--store', redis_store_uri)
    return redis_store_uri


def _train_one_epoch(work: Path, uri: str):
    return run_train(work, f'train_dataloader.dataset.store={uri}',
                     'train_dataloader.dataset.generate=None', 'train_cfg.max_epochs=1')


@pytest.mark.slow
def test_password_from_env_never_reaches_the_work_dir(tmp_path, redis_tiny, redis_server):
    assert 'password_env=' in redis_tiny and redis_server.password not in redis_tiny
    proc = _train_one_epoch(tmp_path / 'work', redis_tiny)
    assert redis_server.password not in proc.stdout + proc.stderr
    assert _secret_in_work_dir(tmp_path / 'work', redis_server.password) == []


@pytest.mark.slow
def test_password_inline_in_the_uri_never_reaches_the_work_dir(tmp_path, redis_tiny,
                                                               redis_server, monkeypatch):
    loc = parse_redis_uri(redis_tiny)
    monkeypatch.delenv('SLPD_TEST_REDIS_PASSWORD')
    inline = f'redis://:{redis_server.password}@{loc.host}:{loc.port}/0?prefix={loc.prefix}'
    proc = _train_one_epoch(tmp_path / 'work', inline)
    assert redis_server.password not in proc.stdout + proc.stderr
    assert _secret_in_work_dir(tmp_path / 'work', redis_server.password) == []


def test_move_password_to_env_gives_a_working_uri_without_the_secret(redis_server,
                                                                     monkeypatch):
    prefix = f'sec-{uuid.uuid4().hex[:8]}'
    inline = f'redis://:{redis_server.password}@127.0.0.1:{redis_server.port}/0?prefix={prefix}'
    with pytest.warns(UserWarning, match='password is written in the store URI'):
        writer = open_writer(inline, dtype='float32')
    writer.add_slide('a', np.ones((2, 4, 16, 16), np.float32))
    writer.finalize()
    moved = move_password_to_env(inline)
    env = parse_qs(urlsplit(moved).query)['password_env'][0]
    try:
        assert os.environ[env] == redis_server.password
        assert redis_server.password not in moved and moved.startswith('redis://127.0.0.1:')
        assert move_password_to_env(moved) == moved  # nothing left to move
        assert open_store(moved).read([1]).sum() == 4 * 256
    finally:
        del os.environ[env]
    monkeypatch.setenv('OTHER_PW', 'another-password')
    both = inline + '&password_env=OTHER_PW'
    with pytest.raises(StoreError, match='whose value differs') as err:
        move_password_to_env(both)
    assert redis_server.password not in str(err.value)
    assert move_password_to_env('data/brca_store') == 'data/brca_store'


def test_prefixes_keep_stores_apart(redis_server, monkeypatch):
    monkeypatch.setenv('SLPD_TEST_REDIS_PASSWORD', redis_server.password)
    tag = uuid.uuid4().hex[:8]
    uris = [redis_server.uri(f'tcga{tag}'), redis_server.uri(f'tcga{tag}_brca')]
    truth = [np.full((3, 4, 16, 16), k + 1, np.float32) for k in range(2)]
    for uri, grids in zip(uris, truth):
        writer = open_writer(uri, dtype='float32')
        writer.add_slide('same-slide-id', grids)
        writer.finalize()
    for uri, grids in zip(uris, truth):
        np.testing.assert_array_equal(open_store(uri).read([0, 1, 2]), grids)
    assert delete_redis_store(uris[0]) > 0
    with pytest.raises(StoreError, match='no feature store'):
        open_store(uris[0])
    assert verify_store(uris[1], progress=False) == 3
    assert delete_redis_store(uris[1]) > 0


class Exploit:
    """Unpickling this runs code (creates a folder); weights-only loading refuses it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.mark.slow
def test_checkpoint_url_is_never_unpickled(tmp_path, monkeypatch):
    import torch

    from slpd_plugin.engine.launch import build_runner, prepare_config
    served, exploited = tmp_path / 'served', tmp_path / 'exploited'
    served.mkdir()
    torch.save({'state_dict': {}, 'meta': Exploit(str(exploited))}, served / 'evil.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))  # the download cache
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runner = build_runner(prepare_config(
            str(ROOT / 'tests' / 'configs' / 'tiny_dino4k.py'), work_dir=str(tmp_path / 'work'),
            cfg_options={'train_dataloader.dataset.store': str(tmp_path / 'store')}))
        with pytest.raises(FileNotFoundError, match='URLs are not fetched'):
            runner.load_checkpoint(f'http://127.0.0.1:{server.server_port}/evil.pth')
    finally:
        server.shutdown()
        assert not exploited.exists(), 'loading the checkpoint URL ran pickled code'
