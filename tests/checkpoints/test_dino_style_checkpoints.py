"""DINO-style training checkpoints (HIPT's ``main_dino4k.py``, whose ``vit4k_xs_dino.pth``
is one; SLPD's ``main_SLPD.py``) load weights-only: through ``init_cfg=Pretrained``,
:func:`load_weights_only` and ``tools/extract_embeddings.py``. Each file is built here the
way those scripts build it: a real model's state dicts, a real AdamW state whose ``lr`` and
``weight_decay`` are numpy float64 (the scripts set them from numpy schedules), the run's
``argparse.Namespace`` and the DINO loss's centre."""
from __future__ import annotations

import argparse
import copy
import datetime
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from slpd_plugin.datasets import open_store
from slpd_plugin.demo.synthetic_wsi import make_wsi_benchmark
from slpd_plugin.models import ViT4K
from slpd_plugin.registry import MODELS
from slpd_plugin.utils.weights import CheckpointError, load_backbone_weights, load_weights_only
from tests.utils import TINY_CONFIG, load_tool


def dino_args(layout: str) -> argparse.Namespace:
    """The kind of values the scripts' argument parsers give (str, int, float, bool,
    tuples), plus what their distributed set-up adds."""
    args = argparse.Namespace(
        arch='vit4k_xs', patch_size=16, out_dim=65536, norm_last_layer=True,
        momentum_teacher=0.996, use_bn_in_head=False, use_fp16=True, lr=0.0005,
        weight_decay=0.04, global_crops_scale=(0.4, 1.0), local_crops_number=8,
        data_path='/data/tcga_4k', output_dir='./results', dist_url='env://', seed=0,
        rank=0, world_size=4, gpu=0, dist_backend='nccl', distributed=True)
    if layout == 'slpd':
        args.__dict__.update(num_cluster=4, warm_epoch=20, loss_type='intra_inter',
                             neighbor_num=1, temperature_contrastive=0.1, log_data=True)
    return args


def write_dino_checkpoint(path: Path, backbone: torch.nn.Module, layout: str = 'hipt',
                          teacher_ddp: bool = False) -> dict[str, torch.Tensor]:
    """Write ``path`` as the script of ``layout`` saves its checkpoint; returns the
    teacher backbone's weights (different from the student's)."""
    head = torch.nn.Sequential(torch.nn.Linear(backbone.embed_dims, 8))
    student = {**{f'module.backbone.{k}': v for k, v in backbone.state_dict().items()},
               **{f'module.head.{k}': v for k, v in head.state_dict().items()}}
    teacher_backbone = {k: v + 0.5 for k, v in backbone.state_dict().items()}
    tprefix = 'module.' if teacher_ddp else ''
    teacher = {**{f'{tprefix}backbone.{k}': v for k, v in teacher_backbone.items()},
               **{f'{tprefix}head.{k}': v + 1 for k, v in head.state_dict().items()}}
    trained = copy.deepcopy(torch.nn.Sequential(backbone, head))  # leaves `backbone` as is
    optimizer = torch.optim.AdamW(trained.parameters())
    for group in optimizer.param_groups:  # per iteration, from numpy schedule arrays
        group['lr'] = np.linspace(0, 5e-4, 10)[3]
        group['weight_decay'] = np.cos(np.linspace(0.04, 0.4, 10))[3]
    trained(torch.randn(2, backbone.phi[0].in_features, 4, 4)).sum().backward()
    optimizer.step()
    save = dict(student=student, teacher=teacher, optimizer=optimizer.state_dict(),
                epoch=100, args=dino_args(layout), dino_loss={'center': torch.zeros(1, 8)})
    if layout == 'slpd':
        save['fp16_scaler'] = torch.amp.GradScaler('cpu').state_dict()
    torch.save(save, path)
    return teacher_backbone


def rename_numpy_module(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite the pickle of ``path`` as if saved under another numpy's module name for
    its scalar reconstructor (numpy 1: ``numpy.core``; numpy 2: ``numpy._core``)."""
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for name, data in entries:
            if name.endswith('data.pkl'):
                assert old + b'\nscalar' in data
                data = data.replace(old + b'\nscalar', new + b'\nscalar')
            dst.writestr(name, data)


@pytest.mark.parametrize('layout, teacher_ddp', [('hipt', False), ('slpd', False),
                                                 ('slpd', True)])
def test_full_training_checkpoint_loads_weights_only(tmp_path, layout, teacher_ddp):
    path = tmp_path / 'checkpoint.pth'
    write_dino_checkpoint(path, ViT4K(arch='xs', depth=1), layout, teacher_ddp)
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    assert 'argparse.Namespace' in unsafe  # what plain weights_only=True refuses
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    ckpt = load_weights_only(path)
    assert ckpt['args'] == dino_args(layout) and ckpt['epoch'] == 100
    lr = ckpt['optimizer']['param_groups'][0]['lr']
    assert isinstance(lr, np.float64) and lr == np.linspace(0, 5e-4, 10)[3]


@pytest.mark.parametrize('old, new', [(b'numpy._core.multiarray', b'numpy.core.multiarray')])
def test_numpy_1_scalars_load_too(tmp_path, old, new):
    """HIPT's checkpoint was written under numpy 1, whose scalars pickle as
    ``numpy.core.multiarray.scalar``."""
    path = tmp_path / 'vit4k_xs_dino.pth'
    write_dino_checkpoint(path, ViT4K(arch='xs', depth=1))
    rename_numpy_module(path, old, new)
    assert 'numpy.core.multiarray.scalar' in \
        torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    lr = load_weights_only(path)['optimizer']['param_groups'][0]['lr']
    assert isinstance(lr, np.float64) and lr == np.linspace(0, 5e-4, 10)[3]


@pytest.mark.parametrize('obj', [datetime.date(2022, 6, 1), Path('/etc/passwd'),
                                 np.array([1.0, 2.0]), np.float32(1.0),
                                 argparse.ArgumentParser])
def test_anything_else_is_still_refused(tmp_path, obj):
    path = tmp_path / 'other.pth'
    torch.save({'teacher': {'w': torch.zeros(1)}, 'extra': obj}, path)
    with pytest.raises(CheckpointError, match='not loadable weights-only'):
        load_weights_only(path)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ('ran',))
    path = tmp_path / 'boom.pth'
    torch.save({'args': argparse.Namespace(x=Boom())}, path)
    with pytest.raises(CheckpointError):
        load_weights_only(path)


@pytest.mark.parametrize('layout, teacher_ddp', [('hipt', False), ('slpd', True)])
def test_pretrained_init_cfg_takes_the_teacher_backbone(tmp_path, layout, teacher_ddp):
    """``model.backbone.init_cfg=Pretrained`` (read by the SLPD model): both encoders
    start from the file's teacher backbone."""
    cfg = Config.fromfile(str(TINY_CONFIG)).model
    path = tmp_path / 'vit4k_xs_dino.pth'
    expected = write_dino_checkpoint(path, MODELS.build(cfg).teacher.backbone, layout,
                                     teacher_ddp)
    assert load_backbone_weights(path).keys() == expected.keys()
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path))
    model = MODELS.build(cfg)
    model.init_weights()
    for encoder in (model.teacher, model.student):
        for key, value in encoder.backbone.state_dict().items():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


@pytest.fixture(scope='module')
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('dino_ckpt')
    bench = make_wsi_benchmark(root / 'bench', num_slides=6, channels=32, region_scale=0.1,
                               num_folds=2, val_frac=0.2, test_frac=0.2, progress=False)
    return bench / 'store'


@pytest.mark.parametrize('layout, encoder', [('hipt', 'teacher'), ('slpd', 'student')])
def test_extraction_tool_reads_a_dino_style_checkpoint(tmp_path, store, layout, encoder):
    cfg = Config.fromfile(str(TINY_CONFIG))
    model = MODELS.build(cfg.model).eval()
    path = tmp_path / 'checkpoint.pth'
    teacher_weights = write_dino_checkpoint(path, model.student.backbone, layout)
    expected_weights = teacher_weights if encoder == 'teacher' else \
        {k: v.clone() for k, v in model.student.backbone.state_dict().items()}
    out = tmp_path / 'emb'
    assert load_tool('extract_embeddings').main([
        str(TINY_CONFIG), str(path), '--store', str(store), '--out', str(out),
        '--encoder', encoder, '--no-progress']) == 0
    getattr(model, encoder).backbone.load_state_dict(expected_weights, strict=True)
    opened = open_store(store)
    for i, rec in enumerate(opened.slides):
        grids = torch.from_numpy(opened.read_slide(i).astype(np.float32))
        with torch.no_grad():
            expected = model.embed(grids, encoder=encoder)
        torch.testing.assert_close(torch.load(out / f'{rec.slide_id}.pt', weights_only=True),
                                   expected, rtol=1e-5, atol=1e-5)
