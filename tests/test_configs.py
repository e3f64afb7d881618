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
            'slpd_lung_inter.py', 'demo_dino4k.py', 'demo_slpd.py', 'slpd_uni_trident.py',
            'slpd_conch15_8k.py'} <= names


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
    # patch-feature stores: the encoder's D, the store, and for CONCH v1.5 the backbone
    assert _differ('slpd_lung.py', 'slpd_uni_trident.py') == {
        'model.backbone.in_channels', 'train_dataloader.dataset.store',
        'train_dataloader.dataset.channels'}
    assert _under(_differ('slpd_lung.py', 'slpd_conch15_8k.py'),
                  'model.backbone', 'train_dataloader.dataset.store',
                  'train_dataloader.dataset.channels')
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
    if path.name.startswith('demo_quick_'):
        pytest.skip('the quick demo (tests only) stops the demo schedule after 2 epochs')
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


PAPER_CONFIGS = [p for p in CONFIGS if not p.name.startswith('demo_')]


def test_paper_configs_are_the_non_demo_ones():
    assert {p.name for p in PAPER_CONFIGS} >= {'dino4k_lung.py', 'slpd_lung.py',
                                                'slpd_brca.py'}


#: The original's default (main_SLPD.py: ``--warm_epoch 20``) and its condition for
#: clustering and training the prototype terms in 0-based epoch ``epoch``.
UPSTREAM_WARM_EPOCH = 20


def upstream_prototypes_on(epoch: int) -> bool:
    return epoch > UPSTREAM_WARM_EPOCH


@pytest.mark.parametrize('path', [p for p in PAPER_CONFIGS if 'prototype' in
                                  Config.fromfile(p).default_hooks], ids=lambda p: p.name)
def test_paper_configs_start_the_prototypes_when_upstream_does(path):
    """The epochs with a prototype bank (the hook's own test, with a real run, checks that
    the first refresh happens at the first epoch it names) are upstream's epochs."""
    cfg = Config.fromfile(path)
    hook = HOOKS.build(cfg.default_hooks.prototype)
    epochs = range(cfg.train_cfg.max_epochs)
    ours = [e for e in epochs if hook.refreshes_at(e)]
    assert ours == [e for e in epochs if upstream_prototypes_on(e)]


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
    channels = model.teacher.backbone.in_channels
    grids = torch.randn(3, channels, 14, 14, generator=torch.Generator().manual_seed(0))
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
