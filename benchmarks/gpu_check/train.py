"""The training step at paper size, on synthetic grids already on the device.

Paper settings (HIPT's DINO-4K and SLPD): batch 128 regions per GPU, a 65,536-d DINO
head, 2 global 14x14 + 8 local 6x6 crops of 16x16 grids, the intra and inter prototype
terms. Two backbones: ViT4K-XS on 384-d HIPT grids, and the TITAN-size ALiBiViT on
768-d CONCH v1.5 grids (16 patches of 512 px: 8192-px regions, as
``configs/slpd_conch15_8k.py``). The dry run keeps the plumbing at toy sizes.

Example:
    >>> setup = TrainSetup.for_mode('gpu', 'alibi')
    >>> model, optim = build(setup, 'bf16', torch.device('cuda'))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from slpd_plugin.engine.launch import set_tf32
from slpd_plugin.engine.optimizers import DINOOptimWrapper, dino_param_groups
from slpd_plugin.models.losses import TEACHER_TEMP
from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.registry import MODELS

BACKBONES = {
    'vit4k': dict(type='ViT4K', arch='xs', in_channels=384),
    'alibi': dict(type='ALiBiViT', arch='titan', in_channels=768),
}
PRECISIONS = {'bf16': 'bfloat16', 'tf32': None, 'fp32': None}  # -> autocast dtype


@dataclass(frozen=True)
class TrainSetup:
    """Sizes of one measured step: ``batch`` regions of ``grid`` x ``grid`` cells of
    ``channels``, an ``out_dim`` head, ``slides`` slides with ``k`` prototypes each."""

    backbone: str
    batch: int
    out_dim: int
    grid: int
    steps: int
    warmup: int
    slides: int = 64
    k: int = 4

    @property
    def channels(self) -> int:
        return BACKBONES[self.backbone]['in_channels']

    @classmethod
    def for_mode(cls, mode: str, backbone: str) -> 'TrainSetup':
        if mode == 'gpu':
            return cls(backbone, batch=128, out_dim=65536, grid=16, steps=10, warmup=3)
        return cls(backbone, batch=2, out_dim=1024, grid=16, steps=1, warmup=1, slides=2)


def backbone_cfg(setup: TrainSetup, mode: str) -> dict:
    cfg = dict(BACKBONES[setup.backbone])
    if mode == 'dry':  # the same code at toy size: one block, ALiBiViT at 'xs' width
        cfg['depth'] = 1
        if setup.backbone == 'alibi':
            cfg['arch'] = 'xs'
    return cfg


def random_bank(setup: TrainSetup, device: torch.device, z: int = 256) -> PrototypeBank:
    """A bank where every region of the batch has an intra and an inter target."""
    g = torch.Generator().manual_seed(0)
    s, k = setup.slides, setup.k
    centroids = torch.nn.functional.normalize(torch.randn(s, k, z, generator=g), dim=-1)
    return PrototypeBank(
        centroids=centroids, valid=torch.ones(s, dtype=torch.bool),
        assignments=torch.randint(0, k, (setup.batch,), generator=g),
        neighbors=((torch.arange(s) + 1) % s)[:, None],
        matched=torch.randint(0, k, (s, k, 1), generator=g),
        neighbor_similarity=torch.zeros(s, 1), inertia=torch.zeros(s),
        cluster_sizes=torch.ones(s, k, dtype=torch.long)).to(device)


def build(setup: TrainSetup, precision: str, device: torch.device, mode: str = 'gpu'):
    """SLPD with DINO head, loss and prototype head at ``setup``'s size, its bank, and
    its optimizer wrapper; TF32 on (the runs' default) except for ``'fp32'``."""
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SLPD', backbone=backbone_cfg(setup, mode),
        head=dict(type='DINOHead', out_channels=setup.out_dim),
        loss=dict(type='DINOLoss', output_dim=setup.out_dim),
        prototype_head=dict(type='PrototypeDistillHead'))).to(device).train()
    model.bank = random_bank(setup, device)
    model.teacher_temp = TEACHER_TEMP
    if device.type == 'cuda':
        set_tf32(precision != 'fp32')
    optim = DINOOptimWrapper(
        optimizer=torch.optim.AdamW(dino_param_groups(model.student), lr=1e-4,
                                    fused=device.type == 'cuda'),
        autocast_dtype=PRECISIONS[precision])
    return model, optim


def synthetic_batch(setup: TrainSetup, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(1)
    grids = torch.randn(setup.batch, setup.channels, setup.grid, setup.grid, generator=g)
    index = torch.arange(setup.batch)
    return dict(inputs=grids.to(device), data_samples=dict(
        index=index.to(device), region_index=index.to(device),
        slide_index=(index % setup.slides).to(device)))


def losses_of(model, optim, batch: dict) -> dict[str, Tensor]:
    """The step's losses (crops cut on the device by the data preprocessor)."""
    out = model.data_preprocessor(batch, training=True)
    with optim.optim_context(model):
        return model.loss(out['inputs'], out['data_samples'], out.get('masks'))


def train_step(model, optim, batch: dict) -> Tensor:
    """One full step: crops, forward, losses, backward, update; the loss (no sync)."""
    loss = sum(losses_of(model, optim, batch).values())
    optim.update_params(loss)
    return loss.detach()


def step_flops(model, optim, batch: dict) -> float:
    """Model FLOPs (forward + backward) of one step, counted by torch."""
    with FlopCounterMode(display=False) as counter:
        train_step(model, optim, batch)
    return float(counter.get_total_flops())
