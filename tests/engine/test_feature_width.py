"""The feature width D of a run comes from its store: tools/train.py's config
preparation fills ``model.backbone.in_channels`` and ``train_dataloader.dataset.channels``
from it, a config that pins another width is refused naming the key, and every width
error names the key that fixes it."""
from __future__ import annotations

import pytest
import torch

from slpd_plugin.datasets import RegionFeatureDataset
from slpd_plugin.datasets.stores import StoreError
from slpd_plugin.demo.synthetic import make_synthetic_store
from slpd_plugin.engine.config_check import ConfigCheckError
from slpd_plugin.engine.launch import prepare_config
from slpd_plugin.registry import MODELS
from tests.utils import ROOT

CONFIG = str(ROOT / 'configs' / 'demo_quick_slpd.py')  # in_channels=32 in the config


@pytest.fixture(scope='module')
def store12(tmp_path_factory):
    path = tmp_path_factory.mktemp('width') / 'store'
    make_synthetic_store(path, num_slides=3, min_regions=2, max_regions=3, channels=12,
                         num_phenotypes=2, phenotypes_per_slide=(1, 1), progress=False)
    return str(path)


def test_width_is_taken_from_the_store(store12, tmp_path, capsys):
    cfg = prepare_config(CONFIG, work_dir=str(tmp_path / 'run'),
                         cfg_options={'train_dataloader.dataset.store': store12})
    assert cfg.model.backbone.in_channels == 12
    assert cfg.train_dataloader.dataset.channels == 12
    assert 'model.backbone.in_channels: 32 -> 12' in capsys.readouterr().out
    backbone = MODELS.build(cfg.model.backbone)  # the model now takes the store's grids
    assert backbone(torch.zeros(1, 12, 16, 16)) is not None


def test_a_pinned_width_is_checked_and_named(store12, tmp_path):
    options = {'train_dataloader.dataset.store': store12,
               'train_dataloader.dataset.channels': 32}
    with pytest.raises(ConfigCheckError, match=r'train_dataloader\.dataset\.channels=32, '
                       r'but the store .* holds 12-d features: set '
                       r'train_dataloader\.dataset\.channels=12'):
        prepare_config(CONFIG, work_dir=str(tmp_path / 'run'), cfg_options=options)


def test_width_errors_name_their_key(store12):
    with pytest.raises(StoreError, match=r'C=12 channels, but the config expects C=32 '
                       r'\(train_dataloader\.dataset\.channels\)'):
        RegionFeatureDataset(store12, channels=32)
    vit = MODELS.build(dict(type='ViT4K', arch='xs', depth=1, in_channels=32))
    with pytest.raises(ValueError, match=r'expects grids of shape \(B, 32, H, W\), got '
                       r'\(2, 12, 16, 16\): set model\.backbone\.in_channels'):
        vit(torch.zeros(2, 12, 16, 16))
