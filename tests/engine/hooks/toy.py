"""The toy model, dataset and Runner of the hook unit tests (see conftest.py)."""
from __future__ import annotations

import itertools
from pathlib import Path

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

NUM_REGIONS = 8
BATCH_SIZE = 2
ITERS_PER_EPOCH = NUM_REGIONS // BATCH_SIZE
_runs = itertools.count()


class ToyRegions(Dataset):
    """``NUM_REGIONS`` fixed 2-d inputs, one per slide ``slide-00``, ``slide-01``, ...

    Items look like the package's region samples: ``dict(inputs=(2,),
    data_samples=dict(slide_index=int))``. The inputs listed in ``nan_at`` are NaN.
    """

    def __init__(self, nan_at: tuple[int, ...] = ()) -> None:
        self.inputs = torch.randn(NUM_REGIONS, 2, generator=torch.Generator().manual_seed(0))
        self.inputs[list(nan_at)] = float('nan')
        self.slide_ids = [f'slide-{i:02d}' for i in range(NUM_REGIONS)]

    def __len__(self) -> int:
        return NUM_REGIONS

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.inputs[i], data_samples=dict(slide_index=i))


class ToyModel(BaseModel):
    """``linear(norm(x))`` with two loss terms; records ``teacher_temp`` at each step.

    The norm's parameters come first, so the first optimizer groups are the ones that
    ``paramwise_cfg`` exempts from weight decay.
    """

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(2)
        self.linear = nn.Linear(2, 1)
        self.teacher_temp = None
        self.seen_temps: list = []

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        out = self.linear(self.norm(inputs))  # (B, 1)
        if mode != 'loss':
            return out
        self.seen_temps.append(self.teacher_temp)
        return dict(loss_a=out.pow(2).mean(), loss_b=out.abs().mean())


def make_runner(work_root: Path, runner_cls: type = Runner, dataset: Dataset | None = None,
                max_epochs: int = 2, log_interval: int = 3,
                default_hooks: dict | None = None, **runner_kwargs) -> Runner:
    """A Runner of :class:`ToyModel` on :class:`ToyRegions` (batches of ``BATCH_SIZE``, in
    order), SGD, scope ``slpd_plugin``, its own work dir under ``work_root``; no
    checkpoints unless ``default_hooks`` asks for them."""
    name = f'run{next(_runs)}'
    torch.manual_seed(0)
    kwargs = dict(
        model=ToyModel(),
        work_dir=str(work_root / name),
        experiment_name=f'{work_root.name}-{name}',  # mmengine keeps singletons by name
        train_dataloader=dict(dataset=dataset or ToyRegions(), batch_size=BATCH_SIZE,
                              num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks={'logger': dict(type='LoggerHook', interval=log_interval),
                       'checkpoint': None, **(default_hooks or {})},
        default_scope='slpd_plugin',
        randomness=dict(seed=0),
        log_level='WARNING')
    kwargs.update(runner_kwargs)
    return runner_cls(**kwargs)


def logged(runner: Runner, key: str) -> list[float]:
    """Every value of ``key`` in the runner's message hub, oldest first."""
    return runner.message_hub.get_scalar(key).data[0].tolist()
