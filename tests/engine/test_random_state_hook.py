"""RandomStateHook and RunLayoutHook: packed RNG states, and a toy mmengine Runner."""
from __future__ import annotations

import random
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from slpd_plugin.engine.hooks import RandomStateHook, RunLayoutHook
from slpd_plugin.engine.hooks.weights_only_checkpoint_hook import WeightsOnlyCheckpointHook
from slpd_plugin.utils.random_states import apply_states, capture_states, pack, unpack


def cuda_state(seed: int, offset: int) -> torch.Tensor:
    """A CUDA (Philox) generator state as ``torch.cuda.get_rng_state`` returns it."""
    return torch.tensor([seed, offset], dtype=torch.int64).view(torch.uint8)


def assert_same_states(a, b):
    assert torch.equal(a.torch_cpu, b.torch_cpu)
    assert a.numpy[0] == b.numpy[0] and np.array_equal(a.numpy[1], b.numpy[1])
    assert a.numpy[2:] == b.numpy[2:]
    assert a.python == b.python
    assert len(a.cuda) == len(b.cuda)
    assert all(torch.equal(x, y) for x, y in zip(a.cuda, b.cuda))


def older_layout(states) -> torch.Tensor:
    """The packing of the previous version: 6 int64 sizes, then the 6 host parts."""
    np_state, py_state = states.numpy, states.python
    parts = [states.torch_cpu,
             torch.from_numpy(np.asarray(np_state[1], dtype='<u4').view(np.uint8).copy()),
             torch.tensor([np_state[2], np_state[3]], dtype=torch.int64).view(torch.uint8),
             torch.tensor(np.float64(np_state[4]).reshape(1)).view(torch.uint8),
             torch.tensor(py_state[1], dtype=torch.int64).view(torch.uint8),
             torch.tensor([np.nan if py_state[2] is None else py_state[2]],
                          dtype=torch.float64).view(torch.uint8)]
    sizes = torch.tensor([len(p) for p in parts], dtype=torch.int64).view(torch.uint8)
    return torch.cat([sizes, *parts])


@pytest.mark.parametrize('num_devices', [0, 1, 2])
def test_packed_states_round_trip_with_and_without_cuda_parts(num_devices):
    np.random.randn()  # a cached Gaussian in numpy's state
    states = replace(capture_states(),
                     cuda=[cuda_state(100 + d, 4 * d) for d in range(num_devices)])
    packed = pack(states)
    assert packed.dtype == torch.uint8 and packed.dim() == 1
    assert_same_states(unpack(packed), states)
    padded = torch.cat([packed, torch.zeros(40, dtype=torch.uint8)])  # as gathered
    assert_same_states(unpack(padded), states)


def test_older_packed_states_without_cuda_still_unpack():
    random.gauss(0, 1)  # Python's cached Gaussian is set
    states = capture_states()
    assert states.python[2] is not None
    assert_same_states(unpack(older_layout(states)), replace(states, cuda=[]))


def test_truncated_packed_states_are_refused():
    with pytest.raises(ValueError, match='truncated'):
        unpack(pack(capture_states())[:-3])


def test_applied_states_repeat_the_draws():
    saved = unpack(pack(capture_states()))
    first = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    assert apply_states(saved) == []
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_generators_are_captured_and_restored():
    torch.rand(1, device='cuda')  # CUDA initialised, as in a GPU run
    states = unpack(pack(capture_states()))
    assert len(states.cuda) == torch.cuda.device_count()
    first = torch.rand(4, device='cuda')
    torch.rand(7, device='cuda')
    assert apply_states(states) == []
    assert torch.equal(torch.rand(4, device='cuda'), first)


# A toy mmengine Runner: the model draws one number per step from the global generator.

class ToyDataset(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, index):
        return dict(inputs=torch.full((2,), float(index)))


class DrawingModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.draws: list[float] = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        noise = torch.rand(())  # like a random crop
        self.draws.append(float(noise))
        return dict(loss=self.linear(inputs).mean() * noise)


@pytest.fixture(autouse=True)
def quick_worker_shutdown(monkeypatch):
    """An in-process Runner's persistent workers are shut down when it is collected, and
    the DataLoader waits up to MP_STATUS_CHECK_INTERVAL (5 s) per worker for them to
    exit; the toy runs need no such patience."""
    monkeypatch.setattr(torch.utils.data._utils, 'MP_STATUS_CHECK_INTERVAL', 0.2)


def toy_runner(work_dir, name, *, workers=0, persistent=False, batch_size=3, epochs=3,
               load_from=None, resume=False) -> Runner:
    loader = dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='default_collate'), batch_size=batch_size,
                  num_workers=workers, persistent_workers=persistent)
    return Runner(model=DrawingModel(), work_dir=str(work_dir), experiment_name=name,
                  train_dataloader=loader,
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                  train_cfg=dict(by_epoch=True, max_epochs=epochs),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                  custom_hooks=[RandomStateHook(), RunLayoutHook(),
                                WeightsOnlyCheckpointHook()],
                  randomness=dict(seed=0), load_from=load_from, resume=resume,
                  log_level='WARNING')


@pytest.mark.parametrize('workers,persistent', [
    (0, False), pytest.param(2, False, marks=pytest.mark.slow),
    pytest.param(2, True, marks=pytest.mark.slow)])
def test_plain_runner_resume_repeats_the_draws(tmp_path, workers, persistent):
    full = toy_runner(tmp_path / 'full', f'full{workers}{persistent}', workers=workers,
                      persistent=persistent)
    full.train()
    per_epoch = len(full.train_dataloader)
    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    shutil.copy(tmp_path / 'full' / 'epoch_1.pth', resumed_dir)
    resumed = toy_runner(resumed_dir, f'resumed{workers}{persistent}', workers=workers,
                         persistent=persistent, load_from=str(resumed_dir / 'epoch_1.pth'),
                         resume=True)
    resumed.train()
    assert resumed.iter == full.iter
    assert resumed.model.draws == full.model.draws[per_epoch:]


@pytest.mark.slow
def test_draws_do_not_depend_on_the_loader_workers(tmp_path):
    runs = []
    for workers, persistent in [(0, False), (2, True)]:
        runner = toy_runner(tmp_path / f'w{workers}', f'indep{workers}', workers=workers,
                            persistent=persistent)
        runner.train()
        runs.append(runner.model.draws)
    assert runs[0] == runs[1]


def test_plain_runner_load_from_keeps_fresh_draws(tmp_path):
    full = toy_runner(tmp_path / 'full', 'lf_full', epochs=2)
    full.train()
    loaded = toy_runner(tmp_path / 'loaded', 'lf_loaded', epochs=1,
                        load_from=str(tmp_path / 'full' / 'epoch_1.pth'))
    loaded.train()
    per_epoch = len(full.train_dataloader)
    assert loaded.iter == per_epoch  # a new run from weights, not a resume
    assert loaded.model.draws == full.model.draws[:per_epoch]


def test_resume_with_another_batch_size_is_refused(tmp_path):
    toy_runner(tmp_path / 'full', 'bs_full', epochs=1).train()
    again = toy_runner(tmp_path / 'again', 'bs_again', batch_size=4,
                       load_from=str(tmp_path / 'full' / 'epoch_1.pth'), resume=True)
    with pytest.raises(RuntimeError, match=r'1 process\(es\) x batch_size 3 = 3 regions per '
                                           r'step, 4 iterations per epoch.*load_from'):
        again.train()
