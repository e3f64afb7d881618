"""Many readers at once against one Redis: 2 DDP ranks x 4 DataLoader workers train from
one store while an ingest writes another prefix. No errors, no retries, no wrong data."""
from __future__ import annotations

import re
import uuid

import numpy as np
import pytest

from slpd_plugin.datasets.stores import MemmapStore, open_store
from tests.reliability.helpers import Training, ingest_cli, tiny_store
from tests.utils import logged_scalars

pytestmark = pytest.mark.slow


def test_ddp_readers_and_a_concurrent_ingest_share_one_server(tmp_path, redis_server,
                                                                monkeypatch):
    monkeypatch.setenv('SLPD_TEST_REDIS_PASSWORD', redis_server.password)
    tag = uuid.uuid4().hex[:8]
    train_uri, other_uri = redis_server.uri(f'load-train-{tag}'), redis_server.uri(f'load-in-{tag}')
    ingest_cli(str(tiny_store(tmp_path / 'train_local', num_slides=16, max_regions=24)),
               '--store', train_uri)
    other_local = tiny_store(tmp_path / 'other_local', num_slides=60, min_regions=10,
                             max_regions=40, seed=1)
    training = Training(tmp_path / 'work', f'train_dataloader.dataset.store={train_uri}',
                        'train_dataloader.dataset.generate=None',
                        'train_dataloader.num_workers=4', 'train_cfg.max_epochs=8', nproc=2)
    try:
        training.wait_for(lambda: re.search(r'Epoch\(train\) \[1\]\[ *\d+/', training.output),
                          'the first logged iteration')
        ingest_cli(str(other_local), '--store', other_uri)  # while both ranks read
        assert training.process.poll() is None, 'ingest finished after training: no overlap'
        assert training.finish() == 0, training.output[-4000:]
    finally:
        training.stop()
    assert 'retry' not in training.output and 'Error' not in training.err_path.read_text()
    iters = [r['iter'] for r in logged_scalars(training.work_dir) if 'loss' in r]
    assert iters == list(range(1, len(iters) + 1)) and len(iters) % 8 == 0  # whole epochs
    for uri in (train_uri, other_uri):
        assert 'every slide matches its checksum' in ingest_cli('--verify', '--store', uri).stdout
    copied, local = open_store(other_uri), MemmapStore(other_local)
    assert copied.slide_ids == local.slide_ids
    everything = np.arange(local.num_regions)
    np.testing.assert_array_equal(copied.read(everything), local.read(everything))
