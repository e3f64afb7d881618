"""Embedding extraction and HIPT export on a checkpoint trained by tools/train.py."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

from slpd_plugin.checkpoints import HIPT_VIT4K_XS, describe_vit4k, load_checkpoint
from slpd_plugin.datasets import open_store
from slpd_plugin.demo.synthetic_wsi import make_wsi_benchmark
from slpd_plugin.evaluation import load_slide_embeddings
from slpd_plugin.registry import MODELS
from slpd_plugin.utils.weights import CheckpointError
from tests.utils import TINY_CONFIG, load_tool, run_train


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> dict[str, Path]:
    """A tiny benchmark (C=32, with coords) and a tiny DINO-4K run trained on it."""
    root = tmp_path_factory.mktemp('extract')
    bench = make_wsi_benchmark(root / 'bench', num_slides=12, channels=32, region_scale=0.1,
                               num_folds=2, val_frac=0.2, test_frac=0.2, progress=False)
    work = root / 'work'
    run_train(work, f'train_dataloader.dataset.store={bench / "store"}',
              'train_dataloader.dataset.generate=None')
    return dict(bench=bench, store=bench / 'store', work=work, ckpt=work / 'epoch_2.pth',
                config=work / TINY_CONFIG.name)


def _model_from_checkpoint(config: Path, ckpt: Path) -> nn.Module:
    """The whole trained model, loaded strictly: an independent path to the weights."""
    model = MODELS.build(Config.fromfile(str(config)).model)
    model.load_state_dict(load_checkpoint(ckpt)['state_dict'], strict=True)
    return model.eval()


@pytest.mark.parametrize('encoder, crop', [('teacher', 'full'), ('student', 'center')])
def test_extraction_equals_the_models_own_embed(trained, tmp_path, encoder, crop):
    out = tmp_path / 'emb'
    code = load_tool('extract_embeddings').main([
        str(trained['config']), str(trained['ckpt']), '--store', str(trained['store']),
        '--out', str(out), '--encoder', encoder, '--crop', crop, '--batch-size', '5',
        '--no-progress'])
    assert code == 0
    store = open_store(trained['store'])
    model = _model_from_checkpoint(trained['config'], trained['ckpt'])
    names = sorted(p.name for p in out.glob('*.pt'))
    assert names == sorted(f'{s}.pt' for s in store.slide_ids)
    coords = store.coords()
    for i, rec in enumerate(store.slides):
        feats = torch.load(out / f'{rec.slide_id}.pt', weights_only=True)
        assert feats.dtype == torch.float32 and feats.shape == (rec.count, 192)
        grids = torch.from_numpy(store.read_slide(i).astype(np.float32))
        if crop == 'center':
            grids = grids[..., 1:15, 1:15]
        expected = model.embed(grids, encoder=encoder)
        torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-5)
        xy = torch.load(out / 'coords' / f'{rec.slide_id}.pt', weights_only=True)
        np.testing.assert_array_equal(xy.numpy(), coords[rec.offset:rec.offset + rec.count])
    table = np.load(out / 'slide_embeddings.npz')
    pooled = load_slide_embeddings(out)  # what eval_slides.py reads
    assert list(table['slide_id']) == store.slide_ids
    np.testing.assert_allclose(table['features'], pooled.take(store.slide_ids), rtol=1e-5,
                               atol=1e-6)
    assert table['num_regions'].tolist() == [r.count for r in store.slides]


def test_extraction_errors_are_one_clear_line(trained, tmp_path, capsys):
    tool = load_tool('extract_embeddings')
    base = [str(trained['config']), str(trained['ckpt']), '--store', str(trained['store'])]
    assert tool.main([base[0], str(tmp_path / 'nope.pth'), *base[2:], '--out',
                      str(tmp_path / 'a')]) == 2
    assert 'checkpoint not found' in capsys.readouterr().err
    (tmp_path / 'b').mkdir()
    (tmp_path / 'b' / 'x.pt').write_bytes(b'')
    assert tool.main([*base, '--out', str(tmp_path / 'b')]) == 2
    assert '--overwrite' in capsys.readouterr().err
    assert tool.main([*base, '--out', str(tmp_path / 'c'), '--no-progress',
                      '--cfg-options', 'model.backbone.depth=2']) == 1
    err = capsys.readouterr().err
    assert 'does not fit the model' in err and len(err.strip().splitlines()) == 1


class _Payload:
    """Unpickling this would create a file: a stand-in for code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_tools_never_run_code_from_a_checkpoint(trained, tmp_path, capsys):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': load_checkpoint(trained['ckpt'])['state_dict'],
                'extra': _Payload(marker)}, evil)
    assert load_tool('export_checkpoint').main([str(evil), str(tmp_path / 'x.pth')]) == 1
    assert load_tool('extract_embeddings').main([
        str(trained['config']), str(evil), '--store', str(trained['store']), '--out',
        str(tmp_path / 'emb'), '--no-progress']) == 1
    assert not marker.exists()
    assert 'weights_only' in capsys.readouterr().err


class _HIPTAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class _HIPTBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = _HIPTAttention(dim, heads)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class HIPTViT4K(nn.Module):
    """Plain re-statement of HIPT's ``vit4k_xs`` (parameter names and forward)."""

    def __init__(self, in_dim: int = 384, dim: int = 192, depth: int = 6, heads: int = 6):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(in_dim, dim), nn.GELU(), nn.Dropout(0.25))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 14 * 14 + 1, dim))
        self.blocks = nn.ModuleList(_HIPTBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        b, _, w, h = x.shape
        tokens = self.phi(x.flatten(2).transpose(1, 2))
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], 1)
        n, dim = 14, x.shape[-1]
        grid = self.pos_embed[:, 1:].reshape(1, n, n, dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((w + 0.1) / n, (h + 0.1) / n), mode='bicubic')
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        x = x + torch.cat([self.pos_embed[:, :1], grid], 1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


def _hipt_load(path: Path) -> dict:
    """What HIPT's get_vit4k() does with a pretrained_weights file."""
    state = torch.load(path, map_location='cpu', weights_only=True)
    state = state['teacher'] if 'teacher' in state else state
    state = {k.replace('module.', ''): v for k, v in state.items()}
    return {k.replace('backbone.', ''): v for k, v in state.items()}


def test_export_loads_strictly_into_hipt_layout_and_gives_our_embeddings(trained, tmp_path):
    out = tmp_path / 'vit4k_xs_slpd.pth'
    assert load_tool('export_checkpoint').main([str(trained['ckpt']), str(out)]) == 0
    saved = torch.load(out, weights_only=True)
    assert all(k.startswith('backbone.') for k in saved['teacher'])
    assert saved['slpd_meta']['depth'] == 1 and not saved['slpd_meta']['hipt_vit4k_xs']
    hipt = HIPTViT4K(in_dim=32, depth=1)
    hipt.load_state_dict(_hipt_load(out), strict=True)
    model = _model_from_checkpoint(trained['config'], trained['ckpt'])
    grids = torch.from_numpy(open_store(trained['store']).read_slide(0).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(hipt.eval()(grids), model.embed(grids), rtol=1e-4,
                                   atol=1e-5)
    assert load_tool('export_checkpoint').main([str(trained['ckpt']), str(out)]) == 2  # exists


def test_hipt_sized_weights_are_recognised_as_vit4k_xs():
    assert describe_vit4k(HIPTViT4K().state_dict()) == HIPT_VIT4K_XS
    with pytest.raises(CheckpointError, match='not ViT-4K'):
        describe_vit4k({'head.weight': torch.zeros(1)})


def test_trident_format_from_a_checkpoint_matches_default_and_feeds_eval(trained, tmp_path):
    tool = load_tool('extract_embeddings')
    common = [str(trained['config']), str(trained['ckpt']), '--store', str(trained['store']),
              '--batch-size', '7', '--no-progress']
    assert tool.main([*common, '--out', str(tmp_path / 'pt')]) == 0
    assert tool.main([*common, '--out', str(tmp_path / 'job'), '--format', 'trident',
                      '--name', 'tiny']) == 0
    store = open_store(trained['store'])
    coords = store.coords()
    slide_dir = tmp_path / 'job' / 'slide_features_tiny'
    assert sorted(p.name for p in slide_dir.glob('*.h5')) == sorted(
        f'{s}.h5' for s in store.slide_ids)
    for rec in store.slides:
        default = torch.load(tmp_path / 'pt' / f'{rec.slide_id}.pt', weights_only=True)
        with h5py.File(tmp_path / 'job' / 'features_tiny' / f'{rec.slide_id}.h5', 'r') as fh:
            feats, xy = fh['features'][()], fh['coords'][()]
            assert fh['features'].attrs['encoder'] == 'tiny'
        np.testing.assert_array_equal(feats, default.numpy())
        np.testing.assert_array_equal(xy, coords[rec.offset:rec.offset + rec.count])
        with h5py.File(slide_dir / f'{rec.slide_id}.h5', 'r') as fh:
            slide = fh['features'][()]
        assert slide.shape == (1, 192) and slide.dtype == np.float32  # as TRIDENT writes
        np.testing.assert_allclose(slide[0], default.double().mean(0).numpy(), rtol=1e-5,
                                   atol=1e-6)
    # the slide-feature folder is an embedding set for eval_slides.py as it is
    bench, out = trained['bench'], tmp_path / 'knn'
    code = load_tool('eval_slides').main(['knn', '--embeddings', str(slide_dir), '--csv',
                                      str(bench / 'labels.csv'), '--splits',
                                      str(bench / 'splits'), '--out', str(out),
                                      '--roc', 'none', '--bootstrap', '50'])
    assert code == 0
    result = json.loads((out / 'results.json').read_text())
    assert result['num_slides_evaluated'] == len(store.slide_ids)
    assert result['embedding_dim'] == 192


def test_a_store_of_another_width_is_refused_naming_it(trained, tmp_path, capsys):
    from slpd_plugin.demo.synthetic import make_synthetic_store
    width = open_store(trained['store']).channels
    other = make_synthetic_store(tmp_path / 'other', num_slides=2, min_regions=2,
                                 max_regions=2, channels=width + 4, num_phenotypes=2,
                                 phenotypes_per_slide=(1, 1), progress=False)
    code = load_tool('extract_embeddings').main([
        str(trained['config']), str(trained['ckpt']), '--store', str(other), '--out',
        str(tmp_path / 'emb'), '--no-progress'])
    assert code == 1
    err = capsys.readouterr().err
    assert (f'--store {other} holds {width + 4}-d features, but the checkpoint\'s model '
            f'was trained on {width}-d features') in err and err.count('\n') == 1
