"""``tools/extract_embeddings.py --level slide``: one whole-slide embedding per slide from a
TRIDENT folder, with a checkpoint trained by tools/train.py (ALiBiViT backbone), equal to
the checkpoint's dense forward on each slide's bounding grid, and read back by the
evaluation loader."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from mmengine.config import Config

from slpd_plugin.checkpoints import load_checkpoint
from slpd_plugin.checkpoints.slide_extract import extract_slide_embeddings
from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources
from slpd_plugin.datasets.lattice import convert, open_lattice
from slpd_plugin.demo.trident_writer import JOB, store_to_trident
from slpd_plugin.evaluation import load_slide_embeddings
from slpd_plugin.registry import MODELS
from tests.mask_stores import holey_slides, write_holey_store
from tests.utils import ROOT, load_tool, run_train

CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd_masks_alibi_vit.py'


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> dict[str, Path]:
    """A one-epoch ALiBiViT run on a store with holes, and the store as a TRIDENT folder
    (regions side by side, a tenth of the cells dropped, the first slide a 40x scan)."""
    root = tmp_path_factory.mktemp('slide_extract')
    store = write_holey_store(root / 'store', holey_slides(channels=32, num_slides=4,
                                                          regions=5))
    work = root / 'work'
    run_train(work, f'train_dataloader.dataset.store={store}', 'train_cfg.max_epochs=1',
              config=CONFIG)
    trident = root / 'trident'
    store_to_trident(store, trident, encoder='synthetic', hole_fraction=0.1, slides_40x=1)
    return dict(store=Path(store), trident=trident, work=work, ckpt=work / 'epoch_1.pth',
                config=work / CONFIG.name)


def dense_teacher_embedding(backbone, h5_path: Path) -> torch.Tensor:
    """The reference: the backbone's ordinary forward on the slide's bounding grid, built
    from the file's level-0 coordinates, with the tissue mask."""
    with h5py.File(h5_path, 'r') as fh:
        feats = torch.from_numpy(fh['features'][()])
        coords = fh['coords'][()]
        stride = int(fh['coords'].attrs['patch_size_level0'])
    cols, rows = ((coords - coords.min(0)) // stride).T
    grid = torch.zeros(feats.shape[1], rows.max() + 1, cols.max() + 1)
    mask = torch.zeros(rows.max() + 1, cols.max() + 1, dtype=torch.bool)
    grid[:, rows, cols] = feats.T
    mask[rows, cols] = True
    with torch.no_grad():
        return backbone.eval()(grid[None], mask[None])[0]


def test_whole_slide_embeddings_equal_the_dense_forward_and_feed_the_loader(trained,
                                                                             tmp_path):
    tool = load_tool('extract_embeddings')
    common = [str(trained['config']), str(trained['ckpt']), '--store',
              str(trained['trident']), '--level', 'slide', '--no-progress']
    assert tool.main([*common, '--out', str(tmp_path / 'job'), '--format', 'trident',
                      '--name', 'tiny', '--chunk-size', '97']) == 0
    assert tool.main([*common, '--out', str(tmp_path / 'pt')]) == 0
    # TRIDENT's slide encoders write into the patch job folder
    slide_dir = tmp_path / 'job' / JOB / 'slide_features_tiny'
    files = sorted(trained['trident'].glob(f'{JOB}/features_synthetic/*.h5'))
    assert sorted(p.name for p in slide_dir.glob('*.h5')) == [p.name for p in files]
    assert not list((tmp_path / 'job').rglob('features_tiny'))  # no region features
    model = MODELS.build(Config.fromfile(str(trained['config'])).model)
    model.load_state_dict(load_checkpoint(trained['ckpt'])['state_dict'], strict=True)
    loaded = load_slide_embeddings(slide_dir)  # what tools/eval_slides.py reads
    from_pt = load_slide_embeddings(tmp_path / 'pt')
    assert loaded.num_regions == [1] * len(files) and loaded.dim == 32
    for path in files:
        expected = dense_teacher_embedding(model.teacher.backbone, path).double().numpy()
        with h5py.File(slide_dir / path.name, 'r') as fh:
            assert fh['features'].shape == (1, 32) and fh['features'].dtype == np.float32
            assert fh['features'].attrs['encoder'] == 'tiny'
        np.testing.assert_allclose(loaded.take([path.stem])[0], expected, rtol=1e-4,
                                   atol=1e-4)
        np.testing.assert_allclose(from_pt.take([path.stem])[0], expected, rtol=1e-4,
                                   atol=1e-4)
    # a converted lattice store of the same files gives the same embeddings
    convert(find_patch_sources(str(trained['trident']), 'trident'), tmp_path / 'lattice',
            PatchOptions('trident'), dtype='float32')
    assert tool.main([*common[:3], str(tmp_path / 'lattice'), *common[4:], '--out',
                      str(tmp_path / 'from_lattice')]) == 0
    from_lattice = load_slide_embeddings(tmp_path / 'from_lattice')
    assert from_lattice.ids == from_pt.ids
    np.testing.assert_allclose(from_lattice.features, from_pt.features, rtol=1e-5, atol=1e-6)
    meta = json.loads((tmp_path / 'pt' / 'extraction.json').read_text())
    assert meta['level'] == 'slide' and meta['num_slides'] == len(files)
    with h5py.File(files[0], 'r') as fh:
        first = len(fh['features'])
    table = np.load(tmp_path / 'pt' / 'slide_embeddings.npz')
    assert table['num_patches'][0] == first
    np.testing.assert_allclose(table['features'], from_pt.take(list(table['slide_id'])),
                               rtol=1e-6)


def test_slide_level_refuses_what_it_cannot_embed(trained, tmp_path, capsys):
    tool = load_tool('extract_embeddings')
    common = [str(trained['config']), str(trained['ckpt']), '--level', 'slide',
              '--out', str(tmp_path / 'out'), '--no-progress']
    assert tool.main([*common, '--store', str(trained['store'])]) == 2
    err = capsys.readouterr().err
    assert f'--store {trained["store"]} is neither' in err and '--level region' in err
    assert tool.main([*common, '--store', str(trained['trident']), '--crop', 'center']) == 2
    assert '--crop applies to --level region' in capsys.readouterr().err
    held = tmp_path / 'out' / JOB / 'slide_features_x' / 'a.h5'  # an earlier TRIDENT output
    held.parent.mkdir(parents=True)
    held.touch()
    assert tool.main([*common, '--store', str(trained['trident'])]) == 2
    assert 'already holds embedding files; pass --overwrite' in capsys.readouterr().err
    # a backbone without whole-slide encoding, named with the first slide
    cfg = Config.fromfile(str(ROOT / 'tests' / 'configs' / 'tiny_slpd_pooled_mlp.py'))
    model = MODELS.build(cfg.model)
    source = open_lattice(str(trained['trident']))
    with pytest.raises(ValueError, match=rf'slide {source.slide_ids[0]}: the teacher '
                                         r'backbone PooledMLP has no whole-slide encoding'):
        extract_slide_embeddings(model, source, tmp_path / 'mlp', progress=False)
