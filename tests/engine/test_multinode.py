"""Two "nodes" on one machine (two torchrun launches, 2 processes each, gloo on loopback)
training SLPD from one shared Redis store."""
import json
import os
import subprocess

import pytest

from slpd_plugin.demo import make_synthetic_store
from tests.conftest import REDIS_PASSWORD_ENV
from tests.utils import ROOT, free_port, logged_scalars
from tests.warm import python_exe

pytestmark = pytest.mark.slow


def test_two_nodes_share_redis_and_hold_one_bank(tmp_path, redis_store_uri):
    local = make_synthetic_store(tmp_path / 'store', num_slides=8, min_regions=4,
                                 max_regions=10, channels=32, num_phenotypes=4,
                                 phenotypes_per_slide=(1, 2), progress=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', PYTHONFAULTHANDLER='1')
    subprocess.run([python_exe(), 'tools/ingest.py', str(local), '--store', redis_store_uri,
                    '--no-progress'], cwd=ROOT, env=env, check=True, capture_output=True)
    work = tmp_path / 'work'
    port = free_port()
    nodes = [subprocess.Popen(
        [python_exe(), '-m', 'torch.distributed.run', '--nnodes=2', f'--node_rank={rank}',
         '--nproc_per_node=2', '--master_addr=127.0.0.1', f'--master_port={port}',
         'tools/train.py', 'tests/configs/tiny_slpd.py', '--launcher', 'pytorch',
         '--work-dir', str(work), '--cfg-options',
         f'train_dataloader.dataset.store={redis_store_uri}',
         'train_dataloader.dataset.generate=None', 'train_cfg.max_epochs=3'],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in (0, 1)]
    try:
        outputs = [n.communicate(timeout=420)[0] for n in nodes]
    finally:
        for n in nodes:
            n.kill()
    assert [n.returncode for n in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert os.environ.get(REDIS_PASSWORD_ENV, '') not in ''.join(outputs)  # never logged

    prints = [json.loads((work / 'consistency' / f'rank{r}.json').read_text())
              for r in range(4)]
    assert all(p == prints[0] for p in prints)  # student, teacher, centres and bank
    assert prints[0]['epoch'] == 3 and 'bank.centroids' in prints[0]['fingerprints']
    log = next(work.glob('*/*.log')).read_text()
    assert log.count('8 slides clustered once each over 4 rank(s)') == 2
    assert any('loss_intra' in r for r in logged_scalars(work))
