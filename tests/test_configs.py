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
        built = HOOKS.build(dict(hook))
        args = {k: v for k, v in hook.items() if k != 'type'}
        assert type(built).__name__ == hook.type.split('.')[-1], name
        assert {k: getattr(built, k, '<missing>') for k in args} == args, name
    check_slide_batch_size(cfg.train_dataloader)
    if 'prototype' in cfg.default_hooks:
        assert model.prototype_head is not None


def _leaves(cfg: dict, prefix: str = '') -> dict:
    """Every value of a nested config by its dotted key."""
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def _differ(a: str, b: str) -> set:
    """Dotted keys whose values differ between two shipped configs."""
    la, lb = (_leaves(Config.fromfile(CONFIGS[0].parent / n).to_dict()) for n in (a, b))
    return {k for k in la.keys() | lb.keys() if la.get(k, '<unset>') != lb.get(k, '<unset>')}


def _under(keys: set, *prefixes: str) -> bool:
    return bool(keys) and all(k.startswith(prefixes) for k in keys)


def test_paper_configs_differ_only_where_the_experiment_does():
    # SLPD vs its DINO-4K baseline: the prototype head and hook, nothing else
    assert _under(_differ('dino4k_lung.py', 'slpd_lung.py'),
                  'model.prototype_head', 'default_hooks.prototype')
    # BRCA vs NSCLC: the store and the per-cohort prototype settings
    assert _differ('slpd_lung.py', 'slpd_brca.py') == {
        'train_dataloader.dataset.store', 'default_hooks.prototype.num_clusters',
        'default_hooks.prototype.min_regions'}
    for ablation in ('slpd_lung_intra.py', 'slpd_lung_inter.py'):
        assert _differ('slpd_lung.py', ablation) == {'model.prototype_head.loss_type'}
    assert _under(_differ('slpd_lung.py', 'slpd_lung_slidebatch.py'),
                  'train_dataloader.sampler', 'slides_per_batch', 'regions_per_slide')
    brca, lung = (Config.fromfile(CONFIGS[0].parent / n).default_hooks.prototype
                  for n in ('slpd_brca.py', 'slpd_lung.py'))
    # BRCA slides get fewer prototypes than NSCLC ones, and so need fewer regions
    assert brca.num_clusters < lung.num_clusters and brca.min_regions < lung.min_regions
    for proto in (brca, lung):
        assert proto.min_regions >= proto.num_clusters  # k-means needs K regions at least


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_schedules_fit_the_training_length(path):
    cfg = Config.fromfile(path)
    epochs = cfg.train_cfg.max_epochs
    schedulers = sorted(cfg.param_scheduler, key=lambda s: s.begin)
    lr = [s for s in schedulers if s.get('param_name', 'lr') == 'lr']
    assert lr[0].begin == 0 and lr[-1].end == epochs  # the lr is scheduled throughout
    assert all(a.end == b.begin for a, b in zip(lr, lr[1:]))  # warm-up then cosine
    assert all(s.end <= epochs for s in schedulers)
    if 'prototype' in cfg.default_hooks:  # prototype losses start during training
        assert 0 < cfg.default_hooks.prototype.warm_epochs < epochs
    if 'auto_scale_lr' in cfg:  # lr is given per base_batch_size and scaled to the batch
        assert cfg.auto_scale_lr.enable
