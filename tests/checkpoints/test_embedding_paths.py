"""Every path that embeds regions with the frozen teacher gives the same embeddings: the
prototype refresh (PrototypeHook), extraction's centre crop (evaluation.extract) and the
projections (visualization), for one checkpoint and one store; and the runner, the tools
and extraction read that checkpoint through the same loader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from slpd_plugin.checkpoints import (
    build_model,
    checkpoint_config,
    embed_grids,
    load_checkpoint,
    load_encoder,
    prototype_settings,
)
from slpd_plugin.checkpoints.extract import embed_store
from slpd_plugin.datasets import open_store
from slpd_plugin.demo import ensure_synthetic_store
from slpd_plugin.engine.hooks import PrototypeHook
from slpd_plugin.engine.launch import build_runner, prepare_config
from slpd_plugin.engine.optimizers import DINOOptimWrapper
from slpd_plugin.prototypes import REFRESH_DEFAULTS
from slpd_plugin.registry import MODELS
from slpd_plugin.visualization import embed_regions
from tests.mask_stores import holey_slides, write_holey_store
from tests.utils import ROOT, TINY_CONFIG

MASKS_CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd_masks.py'

BATCH = 4  # the same batches on every path, so the sums run in the same order


def make_run(root, config, store) -> dict:
    """A tiny model whose teacher differs from its student, saved as tools/train.py
    does (state_dict, the config's text, the store), and a real runner of its config."""
    cfg = prepare_config(str(config), work_dir=str(root / 'work'),
                         cfg_options={'train_dataloader.dataset.store': str(store)})
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for p in model.teacher.parameters():  # a student path would now give other numbers
            p.add_(0.05 * torch.randn_like(p))
    config = root / 'config.py'
    cfg.dump(str(config))
    ckpt = root / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(cfg=config.read_text(), dataset_meta=dict(store=str(store)))),
               ckpt)
    runner = build_runner(cfg)
    runner.load_checkpoint(str(ckpt))  # SLPDRunner: the same weights-only loader
    return dict(store=store, config=config, ckpt=ckpt, runner=runner)


@pytest.fixture(scope='module')
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('paths')
    store = root / 'store'
    generate = Config.fromfile(TINY_CONFIG).train_dataloader.dataset.generate
    ensure_synthetic_store(store, **generate)
    return make_run(root, TINY_CONFIG, store)


@pytest.fixture(scope='module')
def holey_run(tmp_path_factory) -> dict:
    """The same on a store with holes, whose missing cells hold large values."""
    root = tmp_path_factory.mktemp('holey_paths')
    slides = holey_slides(num_slides=3, regions=5, channels=32)
    store = Path(write_holey_store(root / 'store', slides, fill=50.0))
    write_holey_store(root / 'zeros', slides)  # the same regions, zeros in the holes
    return make_run(root, MASKS_CONFIG, store)


def refresh_embeddings(runner, embedding: str) -> torch.Tensor:
    hook = PrototypeHook(embedding=embedding, batch_size=BATCH, num_workers=0)
    n = len(runner.train_dataloader.dataset)
    return hook.embed_regions(runner, np.arange(n))


def model_dims(run) -> int:
    return run['runner'].model.teacher.backbone.embed_dims


def test_refresh_extraction_and_projection_embed_alike(run):
    assert_paths_embed_alike(run)


def test_paths_embed_alike_with_masks_on_a_store_with_holes(holey_run):
    """Every path passes the masks: the same embeddings on all paths, the same as with
    zeros in the holes, and not those of the model that ignores the masks."""
    refresh = assert_paths_embed_alike(holey_run)
    store = open_store(holey_run['store'])
    zeros = open_store(holey_run['store'].parent / 'zeros')
    assert store.has_holes
    model = load_encoder(holey_run['config'], holey_run['ckpt'])
    on_zeros = torch.cat([feats for _, feats in embed_store(
        model, zeros, crop='center', batch_size=BATCH, progress=False)])
    assert torch.equal(on_zeros, refresh)  # what the holes hold changes nothing
    grids = torch.from_numpy(np.asarray(store.read(np.arange(BATCH))))
    unmasked = embed_grids(model, grids, output='cls')
    assert not torch.allclose(unmasked, refresh[:BATCH], atol=1e-3)


def assert_paths_embed_alike(run) -> torch.Tensor:
    """Refresh, extraction's centre crop and the projections agree bit for bit; returns
    the refresh's ``cls`` embeddings."""
    store = open_store(run['store'])
    n = store.num_regions
    refresh = refresh_embeddings(run['runner'], 'cls')  # (N, E)
    extracted = torch.cat([feats for _, feats in embed_store(
        load_encoder(run['config'], run['ckpt']), store, crop='center',
        batch_size=BATCH, progress=False)])
    ckpt = load_checkpoint(run['ckpt'])
    settings = prototype_settings(ckpt, run['ckpt'])
    drawn = embed_regions(build_model(ckpt, run['ckpt']), store, np.arange(n),
                          output='cls', crop=settings.crop, batch_size=BATCH)
    assert refresh.shape == (n, model_dims(run)) and extracted.shape == refresh.shape
    assert torch.equal(refresh, extracted)
    assert torch.equal(refresh, torch.from_numpy(drawn))
    refresh_z = refresh_embeddings(run['runner'], 'z')  # the prototype space
    drawn_z = embed_regions(build_model(ckpt, run['ckpt']), store, np.arange(n),
                            output='z', batch_size=BATCH)
    assert torch.equal(refresh_z, torch.from_numpy(drawn_z))
    full = torch.cat([feats for _, feats in embed_store(
        load_encoder(run['config'], run['ckpt']), store, crop='full', batch_size=BATCH,
        progress=False)])
    assert not torch.allclose(full, extracted)  # the crop option still means something
    return refresh


def test_embed_grids_uses_eval_mode_and_restores_the_mode(run):
    model = build_model(load_checkpoint(run['ckpt']), run['ckpt']).train()
    model.teacher.backbone.phi[2].p = 0.5  # a dropout that only train mode applies
    grids = torch.from_numpy(np.asarray(open_store(run['store']).read(np.arange(BATCH))))
    first, second = embed_grids(model, grids), embed_grids(model, grids)
    assert model.teacher.training and model.student.training
    assert torch.equal(first, second)
    assert first.dtype == torch.float32 and first.shape[0] == BATCH
    with torch.no_grad():
        in_train_mode = model.embed(grids.float()[..., 1:15, 1:15], output='z')
    assert not torch.equal(first, in_train_mode)


def test_readers_fill_the_hooks_defaults(run):
    """Settings a config leaves out are the hook's own defaults."""
    settings = prototype_settings(load_checkpoint(run['ckpt']), run['ckpt'])
    hook = PrototypeHook()
    assert settings == REFRESH_DEFAULTS  # the tiny DINO config sets no prototype hook
    assert (hook.num_clusters, hook.min_regions, hook.num_neighbors, hook.embedding,
            hook.crop, hook.assignment) == (
        settings.num_clusters, settings.min_regions, settings.num_neighbors,
        settings.embedding, settings.crop, settings.assignment)


def test_loading_does_not_depend_on_the_scope_an_earlier_runner_left(run):
    """A plain mmengine ``Runner`` leaves ``'mmengine'`` as the process's default scope,
    where our types do not resolve; reading a checkpoint builds in its config's scope."""
    with DefaultScope.overwrite_default_scope('mmengine'):
        ckpt = load_checkpoint(run['ckpt'])
        with pytest.raises(KeyError, match='not in the mmengine::model registry'):
            MODELS.build(checkpoint_config(ckpt, run['ckpt']).model)  # what it did before
        model = build_model(ckpt, run['ckpt'])
    own = run['runner'].model.state_dict()
    assert all(torch.equal(value, own[key]) for key, value in model.state_dict().items())


def test_refresh_pass_runs_under_the_trainings_autocast_with_persistent_workers(run):
    runner = run['runner']
    n = len(runner.train_dataloader.dataset)
    fp32 = refresh_embeddings(runner, 'z')
    hook = PrototypeHook(batch_size=BATCH, num_workers=1)
    seen = []
    backbone = runner.model.teacher.backbone
    handle = backbone.register_forward_pre_hook(
        lambda module, args: seen.append(torch.get_autocast_dtype('cpu')
                                         if torch.is_autocast_enabled('cpu') else None))
    saved = runner.optim_wrapper
    try:
        runner.optim_wrapper = DINOOptimWrapper(  # as `--amp` builds it
            optimizer=torch.optim.SGD(runner.model.parameters(), lr=0.0),
            autocast_dtype='bfloat16')
        first = hook.embed_regions(runner, np.arange(n))
        loader = hook._pass_loader
        again = hook.embed_regions(runner, np.arange(n))
    finally:
        runner.optim_wrapper = saved
        handle.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert first.dtype == torch.float32
    torch.testing.assert_close(first, fp32, rtol=0.05, atol=0.05)  # bf16 of the fp32 pass
    torch.testing.assert_close(again, first)
    assert hook._pass_loader is loader and loader.persistent_workers
    assert not loader.pin_memory  # a CPU model: nothing to pin for
