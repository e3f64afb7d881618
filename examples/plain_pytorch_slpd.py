"""SLPD in a plain PyTorch loop: no mmengine Runner, no config, no hooks.

The pieces of the plugin used directly: the ViT-4K region encoder, the DINO head,
lightly's DINOLoss, SLPD's PrototypeDistillHead (intra- and inter-slide losses), and
build_bank, which refreshes the prototype bank at the start of every epoch after the
warm-up. Multi-crop cuts 2 global 14x14 and 4 local 6x6 views of each 16x16 grid.

It trains for a few seconds on CPU on a small synthetic store (created at
$SLPD_EXAMPLE_STORE, default data/example_store). The settings are NOT the paper's
(configs/slpd_lung.py has those): a 1-block, 64-d ViT-4K (the paper: arch='xs', 6 blocks
of 192-d), 32-d input features (HIPT: 384), 512 head outputs (65536), 4 local views (8).

    python examples/plain_pytorch_slpd.py
"""
import math
import os

import torch
from lightly.loss import DINOLoss
from lightly.models.utils import update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn
from torch.utils.data import DataLoader

from slpd_plugin.datasets import RegionFeatureDataset
from slpd_plugin.demo import ensure_synthetic_store
from slpd_plugin.models.backbones import ViT4K
from slpd_plugin.models.data_preprocessors import center_crop, random_crops
from slpd_plugin.models.heads import DINOHead, PrototypeDistillHead
from slpd_plugin.prototypes import build_bank

CHANNELS, OUT_DIM, EPOCHS, WARM_EPOCHS, BATCH_SIZE = 32, 512, 3, 1, 16
NUM_CLUSTERS, MIN_REGIONS, TEACHER_TEMP = 2, 8, 0.04
torch.manual_seed(0)

# ============ data: every region of a store, one (C, 16, 16) grid per sample ============
store = os.environ.get('SLPD_EXAMPLE_STORE', 'data/example_store')
ensure_synthetic_store(store, num_slides=10, min_regions=6, max_regions=20,
                       channels=CHANNELS, num_phenotypes=4, phenotypes_per_slide=(1, 3),
                       seed=0, progress=False)
dataset = RegionFeatureDataset(store)  # samples: dict(inputs=grid, data_samples=ids)
loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, drop_last=True)
in_order = DataLoader(dataset, batch_size=64, shuffle=False)
slide_index = torch.as_tensor(dataset.slide_index)  # (N,) slide of every region


# ============ student and teacher: ViT-4K + DINO head ============
class Encoder(nn.Module):
    """Region grid -> backbone embedding -> DINO logits (the teacher head maps prototypes)."""

    def __init__(self, drop_path_rate: float) -> None:
        super().__init__()
        self.backbone = ViT4K(arch=dict(embed_dims=64, depth=1, num_heads=4),
                              in_channels=CHANNELS, drop_path_rate=drop_path_rate)
        self.head = DINOHead(in_channels=64, hidden_dims=256, bottleneck_dims=64,
                             out_channels=OUT_DIM)

    def forward(self, grids: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(grids))


student, teacher = Encoder(drop_path_rate=0.1), Encoder(drop_path_rate=0.0)
teacher.load_state_dict(student.state_dict())
teacher.requires_grad_(False)
dino_loss = DINOLoss(output_dim=OUT_DIM, teacher_temp=TEACHER_TEMP)
prototype_head = PrototypeDistillHead(out_channels=OUT_DIM, loss_type='intra_inter')
optimizer = torch.optim.AdamW(student.parameters(), lr=5e-4, weight_decay=0.04)
total_steps, step = EPOCHS * len(loader), 0

for epoch in range(EPOCHS):
    # ============ prototype refresh: teacher embeds every region's centre crop ============
    bank = None
    if epoch >= WARM_EPOCHS:
        teacher.eval()
        with torch.no_grad():
            z = torch.cat([teacher.head.bottleneck(teacher.backbone(
                center_crop(batch['inputs'].float(), 14))) for batch in in_order])  # (N, Z)
        teacher.train()
        bank = build_bank(z, slide_index, NUM_CLUSTERS, MIN_REGIONS, num_neighbors=1,
                          num_slides=dataset.num_slides)
        print(f'epoch {epoch}: bank with {int(bank.valid.sum())}/{dataset.num_slides} '
              f'slides with prototypes, {bank.summary()["neighbor_similarity_mean"]:.3f} '
              f'mean neighbour similarity')
    # ============ one epoch of DINO + prototype distillation ============
    sums: dict[str, float] = {}
    for batch in loader:
        grids = batch['inputs'].float()  # (B, C, 16, 16), stored as float16
        views = ([random_crops(grids, 14) for _ in range(2)]
                 + [random_crops(grids, 6) for _ in range(4)])
        with torch.no_grad():
            teacher_out = [teacher(v) for v in views[:2]]  # global views only
        student_out = [student(v) for v in views]
        losses = dict(loss_dino=dino_loss(teacher_out, student_out, teacher_temp=TEACHER_TEMP))
        losses.update(prototype_head.loss(student_out, teacher, bank, batch['data_samples'],
                                          teacher_temp=TEACHER_TEMP))
        loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            raise RuntimeError(f'non-finite loss at epoch {epoch}: {losses}')
        optimizer.zero_grad()
        loss.backward()
        if epoch == 0:  # DINO: the last layer learns from the second epoch on
            for p in student.head.projection.last_layer.parameters():
                p.grad = None
        for p in student.parameters():  # DINO-style clipping, per parameter tensor
            if p.grad is not None:
                torch.nn.utils.clip_grad_norm_(p, 3.0)
        optimizer.step()
        update_momentum(student, teacher, cosine_schedule(step, total_steps, 0.996, 1.0))
        step += 1
        for name, value in dict(losses, loss=loss).items():
            sums[name] = sums.get(name, 0.0) + value.item() / len(loader)
    print(f'epoch {epoch}: ' + ', '.join(f'{k} {v:.4f}' for k, v in sorted(sums.items())))
