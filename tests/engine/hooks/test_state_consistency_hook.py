"""StateConsistencyHook: per-rank fingerprint files, and a real 2-process gloo run where
one rank's weights drift stops with an error naming the tensor."""
import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.hooks import Hook

from slpd_plugin.engine.hooks.state_consistency_hook import state_fingerprints
from tests.engine.hooks.toy import make_runner
from tests.utils import free_port


def test_dumps_the_fingerprints_of_every_tensor_every_interval_epochs(toy_runner):
    runner = toy_runner(max_epochs=3, custom_hooks=[
        dict(type='StateConsistencyHook', interval=2, dump=True)])
    runner.train()
    dump = json.loads(Path(runner.work_dir, 'consistency', 'rank0.json').read_text())
    assert dump['epoch'] == 2  # written after epoch 2, not after epoch 3
    assert set(dump['fingerprints']) == set(runner.model.state_dict())


def test_fingerprints_tell_equal_tensors_from_different_ones():
    a = torch.arange(6.0).reshape(2, 3)
    prints = state_fingerprints(dict(a=a, same=a.clone(), moved=a + 1e-6,
                                     other_dtype=a.double()))
    assert prints['a'] == prints['same']
    assert len({prints['a'], prints['moved'], prints['other_dtype']}) == 3


class DriftOnRank1(Hook):
    """In epoch ``epoch`` (0-based), rank 1 changes its copy of ``linear.bias``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.epoch == self.epoch and batch_idx == 0 and runner.rank == 1:
            with torch.no_grad():
                runner.model.module.linear.bias += 1.0


def _train_two_ranks(rank: int, port: int, work: str) -> None:
    # forked from a process whose OpenMP pool may be busy: one thread, as DataLoader
    # workers do (a forked child that waits on the parent's pool hangs)
    torch.set_num_threads(1)
    os.environ['LOCAL_RANK'] = str(rank)  # as torchrun sets it; mmengine's DDP wrapper reads it
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    runner = make_runner(Path(work), max_epochs=2, launcher='pytorch',
                         env_cfg=dict(dist_cfg=dict(backend='gloo')),
                         cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                                         device_ids=None)),
                         custom_hooks=[dict(type='StateConsistencyHook'), DriftOnRank1(1)])
    try:
        runner.train()
        outcome = 'finished'
    except RuntimeError as e:
        outcome = f'{runner.epoch} {e}'
    Path(work, f'rank{rank}.txt').write_text(outcome)
    dist.destroy_process_group()


@pytest.mark.slow  # two processes
def test_a_rank_that_drifts_stops_training_naming_the_tensor(tmp_path):
    # fork: the workers start with this process's imports instead of importing them again
    mp.start_processes(_train_two_ranks, args=(free_port(), str(tmp_path)), nprocs=2,
                       start_method='fork')
    for rank in (0, 1):
        outcome = (tmp_path / f'rank{rank}.txt').read_text()
        epoch, message = outcome.split(' ', 1)
        assert epoch == '1', outcome  # epoch 0 was consistent, epoch 1 was not
        assert 'differs across ranks after epoch 2 in 1 tensors' in message
        assert "['linear.bias']" in message
