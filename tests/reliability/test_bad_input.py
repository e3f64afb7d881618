"""Bad-input rows of docs/reliability.md not covered elsewhere: config typos and wrong
types, a checkpoint of another architecture, corrupt files, wrong grid size, a store whose
checksums do not match. Each gives one clear error that names the key, file or slide."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config

import slpd_plugin  # noqa: F401  (registers everything)
from slpd_plugin.datasets.ingest import find_sources, ingest, verify_store
from slpd_plugin.datasets.stores import MemmapStoreWriter, StoreError
from slpd_plugin.engine.checkpoint_check import CheckpointMismatchError, check_checkpoint_shapes
from slpd_plugin.engine.config_check import ConfigCheckError, check_config, config_problems
from slpd_plugin.registry import MODELS
from tests.reliability.helpers import ingest_cli
from tests.utils import ROOT, run_train

TINY_SLPD = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'
CONFIGS = [*sorted((ROOT / 'configs').glob('*.py')),
           *sorted((ROOT / 'tests' / 'configs').glob('*.py'))]


def tiny_cfg(**options) -> Config:
    cfg = Config.fromfile(TINY_SLPD)
    cfg.merge_from_dict(options)
    return cfg


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_pass_the_check(path):
    assert config_problems(Config.fromfile(path)) == []


@pytest.mark.parametrize('key, value, message', [
    ('trian_cfg', dict(max_epochs=2), 'trian_cfg: unknown top-level key (did you mean train_cfg?)'),
    ('default_hooks.prototype.num_clusterz', 3, 'default_hooks.prototype.num_clusterz: unknown '
     'argument of PrototypeHook (did you mean num_clusters?)'),
    ('model.backbone.dpeth', 2, 'model.backbone.dpeth: unknown argument of ViT4K (did you mean '
     'depth?)'),
    ('model.head.hidden_dimz', 8, 'model.head.hidden_dimz: unknown argument of DINOHead'),
    ('model.prototype_head.loss_tpye', 'intra', 'model.prototype_head.loss_tpye: unknown '
     'argument of PrototypeDistillHead (did you mean loss_type?)'),
    ('model.data_preprocessor.num_locals', 2, 'model.data_preprocessor.num_locals: unknown '
     'argument of GridMultiCropPreprocessor (did you mean num_local?)'),
    ('model.backbone.type', 'ViT4k', "model.backbone.type: 'ViT4k' is not registered "
     "(registry 'model') (did you mean ViT4K?)"),
    ('train_dataloader.batch_sise', 8, 'train_dataloader.batch_sise: unknown argument of '
     'DataLoader (did you mean batch_size?)'),
    ('train_dataloader.dataset.chanels', 32, 'train_dataloader.dataset.chanels: unknown '
     'argument of SyntheticRegionDataset (did you mean channels?)'),
    ('train_dataloader.sampler.shufle', True, 'train_dataloader.sampler.shufle: unknown '
     'argument of DefaultSampler (did you mean shuffle?)'),
    ('optim_wrapper.optimizer.lrr', 1e-3, 'optim_wrapper.optimizer.lrr: unknown argument of '
     'AdamW (did you mean lr?)'),
    ('optim_wrapper.clip_per_tensr', 3.0, 'optim_wrapper.clip_per_tensr: unknown argument of '
     'DINOOptimWrapper (did you mean clip_per_tensor?)'),
    ('train_cfg.max_epoch', 3, 'train_cfg.max_epoch: unknown argument of EpochBasedTrainLoop '
     '(did you mean max_epochs?)'),
    ('default_hooks.prototype.min_regions', 'four', "default_hooks.prototype.min_regions: "
     "PrototypeHook expects int, got str 'four'"),
    ('train_dataloader.dataset.channels', 3.5, 'train_dataloader.dataset.channels: '
     'SyntheticRegionDataset expects int or None, got float 3.5'),
    ('default_hooks.teacher_ema.momentum', '0.996', 'default_hooks.teacher_ema.momentum: '
     "TeacherEMAHook expects float, got str '0.996'"),
])
def test_config_typos_and_wrong_types_name_the_key(key, value, message):
    with pytest.raises(ConfigCheckError, match=re.escape(message)):
        check_config(tiny_cfg(**{key: value}))


def test_every_problem_is_listed_at_once():
    cfg = tiny_cfg(**{'trian_cfg': {}, 'model.head.hidden_dimz': 8,
                      'default_hooks.prototype.num_clusters': 'four'})
    assert len(config_problems(cfg)) == 3


@pytest.mark.slow
def test_train_stops_on_a_config_typo_before_training(tmp_path):
    work = tmp_path / 'work'
    proc = run_train(work, f'train_dataloader.dataset.store={tmp_path / "store"}',
                     'trian_cfg.max_epochs=1', check=False)
    assert proc.returncode != 0
    assert 'trian_cfg: unknown top-level key (did you mean train_cfg?)' in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    assert not list(work.glob('*.pth'))


def tiny_model(arch: str):
    return MODELS.build(dict(Config.fromfile(TINY_SLPD).model, backbone=dict(
        type='ViT4K', arch=arch, in_channels=32, depth=1)))


def test_checkpoint_of_another_architecture_is_refused():
    small = {'state_dict': tiny_model('s').state_dict()}
    with pytest.raises(CheckpointMismatchError, match=r"s\.pth: \d+ of \d+ tensors have other "
                       r"shapes than the model \(student\.backbone\.cls_token: \(1, 1, 384\) in "
                       r"the checkpoint, \(1, 1, 192\) in the model"):
        check_checkpoint_shapes(tiny_model('xs'), small, 's.pth')


def test_partial_checkpoint_of_the_same_architecture_is_accepted():
    model = tiny_model('xs')
    backbone_only = {f'module.{k}': v for k, v in model.state_dict().items() if '.backbone.' in k}
    check_checkpoint_shapes(model, backbone_only, 'backbone.pth')  # missing keys: mmengine warns


@pytest.mark.slow
def test_load_from_another_architecture_stops_before_training(tmp_path):
    ckpt = tmp_path / 'arch_s.pth'
    torch.save({'state_dict': tiny_model('s').state_dict(), 'meta': {}}, ckpt)
    work = tmp_path / 'work'
    proc = run_train(work, f'train_dataloader.dataset.store={tmp_path / "store"}',
                     f'load_from={ckpt}', 'train_cfg.max_epochs=1', check=False)
    assert proc.returncode != 0
    assert f'CheckpointMismatchError: {ckpt}: ' in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr


@pytest.mark.parametrize('name, content, message', [
    ('garbage.pt', os.urandom(3000), r'garbage\.pt: cannot load as a weights-only torch file'),
    ('garbage.h5', b'\x89HDF\r\n\x1a\n' + os.urandom(3000),
     r'garbage\.h5: cannot read as HDF5 \(truncated or corrupt\?\)'),
])
def test_corrupt_feature_file_is_named(tmp_path, name, content, message):
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / name).write_bytes(content)
    with pytest.raises(StoreError, match=message):
        ingest(find_sources(str(tmp_path / 'src')), str(tmp_path / 'store'), progress=False)


@pytest.mark.parametrize('shape', [(2, 8, 8, 8), (2, 64, 8)])
def test_wrong_grid_size_is_named(tmp_path, shape):
    (tmp_path / 'src').mkdir()
    torch.save(torch.zeros(shape), tmp_path / 'src' / 'small.pt')
    with pytest.raises(StoreError, match=re.escape(f'small.pt: features of shape {shape}')):
        ingest(find_sources(str(tmp_path / 'src')), str(tmp_path / 'store'), progress=False)


@pytest.mark.slow
def test_verify_names_the_slide_whose_checksum_does_not_match(tmp_path):
    store = tmp_path / 'store'
    rng = np.random.default_rng(0)
    with MemmapStoreWriter(store, dtype='float32') as writer:
        for name in ('A', 'B', 'C'):
            writer.add_slide(name, rng.standard_normal((2, 4, 16, 16)).astype(np.float32))
    assert verify_store(str(store), progress=False) == 6
    raw = np.memmap(store / 'grids.bin', dtype='<f4', mode='r+')
    raw[2 * 4 * 256 + 5] += 1.0  # slide B: finite, plausible, wrong
    raw.flush()
    proc = ingest_cli('--verify', '--store', str(store), check=False)
    assert proc.returncode != 0
    assert "1 slide(s) do not match their checksum: ['B']" in proc.stderr


@pytest.mark.parametrize('backend', ['memmap', 'redis'])
def test_verify_names_the_slide_whose_masks_were_changed(tmp_path, request, monkeypatch,
                                                         backend):
    """A flipped tissue cell is caught by --verify, named as the slide's masks, not grids."""
    from tests.conftest import REDIS_PASSWORD_ENV
    from tests.mask_stores import holey_slides, write_holey_store
    if backend == 'memmap':
        location = str(tmp_path / 'store')
    else:
        server = request.getfixturevalue('redis_server')
        monkeypatch.setenv(REDIS_PASSWORD_ENV, server.password)
        location = server.uri(f'masks-{tmp_path.name}')
    slides = holey_slides(num_slides=3, regions=2, channels=4)
    write_holey_store(location, slides)
    assert verify_store(location, progress=False) == 6
    cells, second_slide_cell = 16 * 16, 2 * 16 * 16 + 7  # slide_1, region 0, cell 7
    if backend == 'memmap':
        raw = np.memmap(tmp_path / 'store' / 'masks.bin', dtype=np.uint8, mode='r+')
        raw[second_slide_cell] ^= 1
        raw.flush()
    else:
        key = f'{location.split("prefix=")[1].split("&")[0]}:masks:1'
        client = server.client()
        value = bytearray(client.get(key))
        value[second_slide_cell - 2 * cells] ^= 1
        client.set(key, bytes(value))
    with pytest.raises(StoreError, match=r"1 slide\(s\) do not match their checksum: "
                                         r"\['slide_1'\] \(slide_1: masks\)"):
        verify_store(location, progress=False)
