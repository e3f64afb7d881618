"""SLPD over window views: a real training run (the training tool's config path,
in-process) on a slide lattice, prototypes refreshed from each slide's fixed window
tiling; the prototype terms train, every refresh embeds the same windows in every process,
and settings that cannot work over windows are refused before the first step."""
from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from slpd_plugin.cli.train import configure
from slpd_plugin.datasets.lattice import SlideWindowViewsDataset
from slpd_plugin.engine.hooks import PrototypeHook
from slpd_plugin.engine.launch import build_runner
from slpd_plugin.utils.model import unwrap
from tests.datasets.patch_files import write_trident
from tests.utils import ROOT, logged_scalars

CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd_windows.py'
JOB = '20x_256px_0px_overlap'


def lattice_job(root, num_slides: int = 4, channels: int = 32, cols: int = 44, rows: int = 41,
                seed: int = 0):
    """A TRIDENT job of ``num_slides`` slides with holes; each slide mixes two of four
    phenotypes (feature means), in two halves of its lattice."""
    rng = np.random.default_rng(seed)
    means = 2 * rng.standard_normal((4, channels))
    for s in range(num_slides):
        cells = np.array([(c, r) for r in range(rows) for c in range(cols)
                          if rng.random() < 0.75], dtype=np.int64)
        kind = np.where(cells[:, 0] < cols // 2, s % 4, (s + 1) % 4)
        feats = (means[kind] + rng.standard_normal((len(cells), channels))).astype(np.float32)
        write_trident(root / 'job' / JOB / 'features_uni_v1' / f'slide{s}.h5', cells * 256,
                      feats)
    return root / 'job'


def window_digest(store: str) -> str:
    """SHA-256 of every window of the prototype set (features, masks, slides), in order."""
    windows = SlideWindowViewsDataset(store).prototype_dataset
    digest = hashlib.sha256()
    for sample in windows.__getitems__(np.arange(len(windows))):
        digest.update(sample['inputs'].numpy().tobytes())
        digest.update(sample['masks'].numpy().tobytes())
        digest.update(str(sample['data_samples']).encode())
    return digest.hexdigest()


def windows_runner(work, job, *options: str):
    cfg = configure([str(CONFIG), '--work-dir', str(work), '--cfg-options',
                     f'train_dataloader.dataset.store={job}', *options])
    return build_runner(cfg)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Three epochs: plain DINO, then two epochs each after a prototype refresh."""
    root = tmp_path_factory.mktemp('windows')
    job = lattice_job(root)
    runner = windows_runner(root / 'work', job, 'train_cfg.max_epochs=3',
                            'train_dataloader.dataset.samples_per_slide=6',
                            'default_hooks.prototype.num_workers=2')
    runner.train()
    return runner, job, root / 'work'


def test_prototype_terms_train_over_windows(trained):
    runner, _, work = trained
    rows = [r for r in logged_scalars(work) if 'loss' in r]
    assert rows and all(math.isfinite(r['loss']) for r in rows)
    intra = [r for r in rows if 'loss_intra' in r]
    assert {r['epoch'] for r in intra} == {2, 3}  # after each refresh (1-based epochs)
    assert all(0 < r['loss_intra'] < math.inf and 0 < r['loss_inter'] < math.inf
               for r in intra)
    bank = unwrap(runner.model).bank
    windows = runner.train_dataloader.dataset.prototype_dataset
    # the bank is built over the fixed windows, not the training samples
    assert len(bank.assignments) == len(windows) != len(runner.train_dataloader.dataset)
    assert bool(bank.valid.all())
    np.testing.assert_array_equal(np.bincount(windows.slide_index), [4] * 4)  # 2x2 tiles of 20


def test_every_refresh_and_process_embeds_the_same_windows(trained):
    runner, job, _ = trained
    hook = next(h for h in runner.hooks if isinstance(h, PrototypeHook))
    windows = runner.train_dataloader.dataset.prototype_dataset
    every = np.arange(len(windows))
    first, second = hook.embed_regions(runner, every), hook.embed_regions(runner, every)
    assert hook._pass_loader.persistent_workers  # the same workers served both passes
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert len(first) == len(windows)
    other = subprocess.run(
        [sys.executable, '-c', 'import sys; from tests.engine.test_window_prototypes import '
         'window_digest; print(window_digest(sys.argv[1]))', str(job)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    assert other.stdout.strip() == window_digest(str(job))


@pytest.mark.parametrize('option,match', [
    ('model.prototype_head.assign_from=bank', "set assign_from='teacher'"),
    ('default_hooks.prototype.source=memory', "use source='pass'")])
def test_bank_lookups_of_window_samples_refused_before_training(tmp_path, option, match):
    job = lattice_job(tmp_path, num_slides=2)
    runner = windows_runner(tmp_path / 'work', job, option)
    with pytest.raises(ValueError, match=match):
        runner.train()
    assert runner.iter == 0


def test_config_check_refuses_window_views_for_a_backbone_without_masks(tmp_path):
    from slpd_plugin.engine.config_check import ConfigCheckError, check_config
    from tests.engine.test_masked_training import GridMeanNoMasks  # registers it

    job = lattice_job(tmp_path, num_slides=2)
    cfg = configure([str(CONFIG), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                     f'train_dataloader.dataset.store={job}'])
    check_config(cfg)  # the ALiBi ViT takes masks
    cfg.merge_from_dict({'model.backbone': dict(_delete_=True, type=GridMeanNoMasks.__name__,
                                                in_channels=32)})
    with pytest.raises(ConfigCheckError, match='has holes .lattice windows.*does not accept'):
        check_config(cfg)
