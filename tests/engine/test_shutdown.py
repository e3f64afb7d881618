"""A distributed run ends with no collective threads left for interpreter shutdown.

A gloo worker thread still alive at exit may release a finished collective's tensors
while the interpreter finalises, and the process aborts ("terminate called without an
active exception"); ``shutdown_distributed`` must join those threads.
"""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from slpd_plugin.engine.launch import shutdown_distributed
from tests.utils import free_port


def threads() -> int:
    return len(os.listdir('/proc/self/task'))


def _worker(rank: int, port: int, out: str) -> None:
    before = threads()
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    model = nn.parallel.DistributedDataParallel(nn.Linear(4, 2))
    model(torch.randn(3, 4)).sum().backward()
    during = threads()
    del model
    shutdown_distributed()
    with open(f'{out}{rank}', 'w') as f:
        f.write(f'{before} {during} {threads()} {int(dist.is_initialized())}')


def test_shutdown_joins_the_collective_threads(tmp_path):
    mp.spawn(_worker, args=(free_port(), str(tmp_path / 'rank')), nprocs=2)
    for rank in range(2):
        before, during, after, initialized = map(
            int, (tmp_path / f'rank{rank}').read_text().split())
        assert during > before  # gloo started its threads...
        assert after == before and not initialized  # ...and they are gone
