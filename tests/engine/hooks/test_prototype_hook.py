"""PrototypeHook in-process, on a real tiny SLPD training run (no subprocess): after a
warm-up epoch, a refresh installs a bank whose every region sits with the prototype of its
slide that is nearest to the region's teacher embedding, computed here independently
(the teacher on each grid's centre crop), and whose slides are valid exactly when they
have ``min_regions`` regions."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from slpd_plugin.cli.train import configure
from slpd_plugin.engine.hooks import PrototypeHook
from slpd_plugin.engine.launch import build_runner
from slpd_plugin.utils.model import unwrap
from tests.utils import ROOT

CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'
MIN_REGIONS = 6


@pytest.fixture(scope='module')
def warmed_up(tmp_path_factory):
    """One epoch of plain DINO (the warm-up): no bank yet."""
    root = tmp_path_factory.mktemp('prototype-hook')
    cfg = configure([str(CONFIG), '--work-dir', str(root / 'work'), '--cfg-options',
                     f'train_dataloader.dataset.store={root / "store"}',
                     'train_cfg.max_epochs=1', f'default_hooks.prototype.min_regions={MIN_REGIONS}',
                     'default_hooks.prototype.assignment=cosine'])
    runner = build_runner(cfg)
    runner.train()
    return runner


def test_refresh_puts_each_region_with_the_nearest_prototype_of_its_slide(warmed_up):
    runner = warmed_up
    model = unwrap(runner.model)
    hook = next(h for h in runner.hooks if isinstance(h, PrototypeHook))
    assert model.bank is None  # the warm-up epoch trains plain DINO
    hook.refresh(runner)
    bank = model.bank
    dataset = runner.train_dataloader.dataset
    grids = torch.stack([dataset[i]['inputs'] for i in range(len(dataset))]).float()  # (N, C, G, G)
    start = (grids.shape[-1] - hook.crop) // 2
    crops = grids[..., start:start + hook.crop, start:start + hook.crop]
    model.eval()
    z = F.normalize(model.embed(crops, output='z'), dim=1)  # the teacher's, (N, Z)
    slides = torch.as_tensor(dataset.slide_index)
    counts = torch.bincount(slides, minlength=dataset.num_slides)
    assert torch.equal(bank.valid.cpu(), counts >= MIN_REGIONS)
    assert bool(bank.valid.any()) and not bool(bank.valid.all())  # both kinds are tested
    for s in torch.nonzero(bank.valid).flatten().tolist():
        members = slides == s
        centroids = bank.centroids[s].cpu()  # (K, Z), normalised
        torch.testing.assert_close(centroids.norm(dim=1), torch.ones(len(centroids)))
        nearest = (z[members] @ centroids.T).argmax(dim=1)
        assert torch.equal(nearest, bank.assignments[members].cpu()), f'slide {s}'
        assert torch.equal(torch.bincount(nearest, minlength=len(centroids)),
                           bank.cluster_sizes[s].cpu())
