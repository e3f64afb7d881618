"""The slide-encoder recipe configs (configs/ibot_alibi_trident.py and
configs/slpd_ibot_alibi_trident.py) build as written and train one tiny epoch on a TRIDENT
folder read in place: every term of the recipe is logged, finite and trained."""
from __future__ import annotations

import math

import pytest
import torch

from slpd_plugin.cli.train import configure
from slpd_plugin.engine.launch import build_runner
from slpd_plugin.models.backbones import ALiBiViT
from slpd_plugin.utils.model import unwrap
from tests.engine.test_window_prototypes import lattice_job
from tests.utils import ROOT, logged_scalars

TINY = ('model.backbone.arch=xs', 'model.backbone.depth=1', 'model.head.hidden_dims=64',
        'model.head.bottleneck_dims=32', 'model.head.out_channels=128',
        'model.loss.output_dim=128', 'train_dataloader.batch_size=4',
        'train_dataloader.num_workers=2',  # loader workers, persistent, as the configs
        'train_dataloader.pin_memory=False', 'train_dataloader.dataset.channels=None',
        'train_dataloader.dataset.samples_per_slide=3', 'train_cfg.max_epochs=1',
        'auto_scale_lr.enable=False', 'optim_wrapper.optimizer.fused=False',
        'default_hooks.logger.interval=1')


@pytest.mark.parametrize('config,terms', [
    ('ibot_alibi_trident.py', ('loss_dino', 'loss_ibot')),
    ('slpd_ibot_alibi_trident.py', ('loss_dino', 'loss_ibot', 'loss_intra', 'loss_inter'))])
def test_recipe_config_trains_one_tiny_epoch(tmp_path, config, terms):
    job = lattice_job(tmp_path, num_slides=4)
    options = [*TINY, f'train_dataloader.dataset.store={job}']
    if config.startswith('slpd'):  # prototypes from the first (only) epoch
        options += ['default_hooks.prototype.warm_epochs=0',
                    'default_hooks.prototype.min_regions=1']
    cfg = configure([str(ROOT / 'configs' / config), '--work-dir', str(tmp_path / 'work'),
                     '--cfg-options', *options])
    runner = build_runner(cfg)
    model = unwrap(runner.model)
    backbone = model.student.backbone
    assert isinstance(backbone, ALiBiViT) and backbone.num_registers == 4
    assert backbone.in_channels == 32  # the width of the TRIDENT files, not the config's
    assert backbone.mask_token is not None  # the iBOT term masks global windows
    before = backbone.mask_token.detach().clone()
    runner.train()
    rows = [r for r in logged_scalars(tmp_path / 'work') if 'loss' in r]
    assert rows
    for term in terms:
        values = [r[term] for r in rows if term in r]
        assert values and all(math.isfinite(v) for v in values), term
    assert any(r['loss_ibot'] > 0 for r in rows)  # some steps mask cells (p = 0.5 per view)
    assert not torch.equal(before, backbone.mask_token.detach())
