"""Every shipped config parses, and its model, hooks and sampler build."""
from pathlib import Path

import pytest
from mmengine.config import Config

import slpd_plugin  # noqa: F401  (registers everything)
from slpd_plugin.datasets.samplers import check_slide_batch_size
from slpd_plugin.registry import HOOKS, MODELS

CONFIGS = sorted(p for p in (Path(__file__).parents[1] / 'configs').glob('*.py'))


def test_the_documented_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {'dino4k_lung.py', 'slpd_lung.py', 'slpd_brca.py', 'slpd_lung_intra.py',
            'slpd_lung_inter.py', 'demo_dino4k.py', 'demo_slpd.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'slpd_plugin'
    model = MODELS.build(cfg.model)
    assert model.student.head.out_channels == cfg.model.loss.output_dim
    for name, hook in cfg.default_hooks.items():
        assert HOOKS.build(dict(hook)) is not None, name
    check_slide_batch_size(cfg.train_dataloader)
    if 'prototype' in cfg.default_hooks:
        assert model.prototype_head is not None


def test_paper_settings_are_paper_exact():
    brca, lung = (Config.fromfile(p) for p in CONFIGS
                  if p.name in ('slpd_lung.py', 'slpd_brca.py'))
    assert (lung.default_hooks.prototype.num_clusters, lung.default_hooks.prototype.min_regions) == (4, 32)
    assert (brca.default_hooks.prototype.num_clusters, brca.default_hooks.prototype.min_regions) == (2, 16)
    assert lung.train_cfg.max_epochs == 100 and lung.default_hooks.prototype.warm_epochs == 20
    assert lung.train_dataloader.batch_size == 128 and lung.model.loss.output_dim == 65536
    assert lung.optim_wrapper.optimizer.lr == 5e-4 and lung.auto_scale_lr.base_batch_size == 256
