"""Training honours tissue masks end to end: a store with holes trains with ViT-4K and
with the ALiBi ViT (the prototype refresh included), on 1 process and on 2 gloo processes,
the values in missing cells change nothing, and the config check refuses such a store for
a backbone that cannot take masks."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import Tensor, nn

import slpd_plugin  # noqa: F401  (registers everything)
from slpd_plugin.engine.config_check import ConfigCheckError, check_config
from slpd_plugin.registry import MODELS
from tests.mask_stores import holey_slides, write_holey_store
from tests.utils import ROOT, logged_scalars, run_train

MASKS_CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd_masks.py'
# the two backbones that take masks, each in tiny_slpd_masks (the second by config alone)
BACKBONES = {'ViT4K': MASKS_CONFIG,
             'ALiBiViT': ROOT / 'tests' / 'configs' / 'tiny_slpd_masks_alibi_vit.py'}


@MODELS.register_module(force=True)
class GridMeanNoMasks(nn.Module):
    """A user's backbone that knows nothing of masks (no ``accepts_masks``)."""

    def __init__(self, in_channels: int = 32, embed_dims: int = 16) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.proj = nn.Linear(in_channels, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.mean(dim=(2, 3)))


def masks_cfg(store: str, **options) -> Config:
    cfg = Config.fromfile(MASKS_CONFIG)
    cfg.merge_from_dict({'train_dataloader.dataset.store': store, **options})
    return cfg


def test_config_check_refuses_holes_for_a_backbone_without_masks(tmp_path):
    holey = write_holey_store(tmp_path / 'holey', holey_slides(channels=32))
    full = write_holey_store(tmp_path / 'full', holey_slides(channels=32, keep=1.1))
    user_backbone = {'model.backbone': dict(_delete_=True, type='GridMeanNoMasks')}
    with pytest.raises(ConfigCheckError) as err:
        check_config(masks_cfg(holey, **user_backbone))
    message = str(err.value)
    assert f'train_dataloader.dataset.store: {holey} has holes' in message
    assert 'GridMeanNoMasks does not accept masks' in message
    assert 'accepts_masks = True' in message and '--min-tissue 1' in message
    check_config(masks_cfg(full, **user_backbone))  # no holes: nothing to refuse
    check_config(masks_cfg(holey))  # ViT4K takes masks
    check_config(masks_cfg(str(tmp_path / 'absent'), **user_backbone))  # the dataset says


def check_run(work: Path, backbone: str) -> list[dict]:
    """The run's checkpoint holds the configured backbone and the prototype bank, and the
    prototype terms ran with finite losses; returns the logged loss rows."""
    state = torch.load(work / 'epoch_2.pth', map_location='cpu', weights_only=True)
    assert 'prototype_bank' in state
    # ViT-4K learns position embeddings; the ALiBi ViT has none (distances bias attention)
    has_pos = any(k.startswith('student.backbone.pos_embed') for k in state['state_dict'])
    assert has_pos == (backbone == 'ViT4K')
    rows = [r for r in logged_scalars(work) if 'loss' in r]
    assert rows and all(math.isfinite(r['loss']) for r in rows)
    intra = [r for r in rows if 'loss_intra' in r]  # epoch 2, after the refresh
    assert intra and all(r['loss_intra'] > 0 and r['loss_inter'] > 0 for r in intra)
    return rows


@pytest.fixture(scope='module', params=list(BACKBONES))
def runs(request, tmp_path_factory):
    """Two trainings of one backbone on stores that differ only in what the missing cells
    hold."""
    root = tmp_path_factory.mktemp(f'masked_{request.param}')
    slides = holey_slides(channels=32, keep=0.6)
    out = {}
    for name, fill in (('zeros', None), ('noise', 50.0)):
        store = write_holey_store(root / f'store_{name}', slides, fill=fill)
        run_train(root / name, f'train_dataloader.dataset.store={store}',
                  config=BACKBONES[request.param])
        out[name] = root / name
    return request.param, out


@pytest.mark.slow
def test_training_on_a_store_with_holes_ignores_the_missing_cells(runs):
    backbone, works = runs
    rows = {name: check_run(work, backbone) for name, work in works.items()}
    assert len(rows['zeros']) == 6  # 2 epochs of 3 steps; epoch 2 after a refresh
    for key in ('loss', 'loss_dino', 'loss_intra', 'loss_inter'):
        assert [r.get(key) for r in rows['zeros']] == [r.get(key) for r in rows['noise']]


@pytest.mark.slow
@pytest.mark.parametrize('backbone', list(BACKBONES))
def test_two_process_training_on_a_store_with_holes(tmp_path, backbone):
    store = write_holey_store(tmp_path / 'store', holey_slides(channels=32, num_slides=8))
    run_train(tmp_path / 'work', f'train_dataloader.dataset.store={store}',
              config=BACKBONES[backbone], nproc=2)
    check_run(tmp_path / 'work', backbone)
