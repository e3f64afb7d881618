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


PAPER_CONFIGS = [p for p in CONFIGS if not p.name.startswith('demo_')]


def test_paper_configs_are_the_non_demo_ones():
    assert {p.name for p in PAPER_CONFIGS} >= {'dino4k_lung.py', 'slpd_lung.py',
                                                'slpd_brca.py'}


@pytest.mark.parametrize('path', PAPER_CONFIGS, ids=lambda p: p.name)
def test_paper_config_model_has_no_dropout_and_a_deterministic_teacher(path):
    """HIPT's/SLPD's vit4k_xs: drop_rate 0 everywhere; stochastic depth only in the
    student (0.1); the training-mode teacher gives the same output twice."""
    import torch
    from torch import nn

    from slpd_plugin.models.backbones.vit_blocks import DropPath
    model = MODELS.build(Config.fromfile(path).model).train()
    dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    assert dropouts and all(m.p == 0.0 for m in dropouts)
    assert all(m.p == 0.0 for m in model.teacher.modules() if isinstance(m, DropPath))
    student_rates = [m.p for m in model.student.modules() if isinstance(m, DropPath)]
    assert max(student_rates) == pytest.approx(0.1)
    grids = torch.randn(3, 384, 14, 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = model.teacher.head(model.teacher.backbone(grids))
        assert torch.equal(first, model.teacher.head(model.teacher.backbone(grids)))


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_paper_configs_drop_the_last_partial_batch(path):
    drop_last = Config.fromfile(path).train_dataloader.get('drop_last', False)
    assert drop_last is (path in PAPER_CONFIGS)  # the demos keep it (a small store)


def test_prototypes_of_cls_embeddings_with_a_prototype_head_are_refused():
    from slpd_plugin.engine.config_check import ConfigCheckError, check_config
    cfg = Config.fromfile(next(p for p in CONFIGS if p.name == 'slpd_lung.py'))
    check_config(cfg)
    cfg.default_hooks.prototype.embedding = 'cls'
    with pytest.raises(ConfigCheckError, match=r"default_hooks\.prototype\.embedding='cls': "
                                               r".*teacher's last layer.*embedding='z'"):
        check_config(cfg)
    cfg.model.prototype_head = None  # a 'cls' bank without distillation is allowed
    check_config(cfg)
