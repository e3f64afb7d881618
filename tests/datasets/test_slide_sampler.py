"""Slide-aware sampling: shards, cover, equal lengths, determinism; same batches on both stores."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from slpd_plugin.datasets import RegionFeatureDataset
from slpd_plugin.datasets.ingest import find_sources, ingest
from slpd_plugin.datasets.samplers import (
    SlideAwareSampler,
    check_slide_batch_size,
    plan_epoch,
    shuffled_regions,
    slide_batches,
)
from slpd_plugin.demo import make_synthetic_store
from slpd_plugin.registry import DATA_SAMPLERS

M, B = 3, 8


def _slide_index(seed=0, num_slides=23, lo=2, hi=40):
    counts = np.random.default_rng(seed).integers(lo, hi + 1, num_slides)
    return np.repeat(np.arange(num_slides), counts)


@pytest.mark.parametrize('world_size', [1, 2, 3])
def test_plan__shards_cover_and_equal_lengths(world_size):
    slide_index = _slide_index()
    counts = np.bincount(slide_index)
    plan = plan_epoch(slide_index, M, B, world_size, seed=0, epoch=0)
    assert plan.shape[0] == world_size and plan.shape[2] == M * B
    owned = [set(slide_index[plan[r].ravel()]) for r in range(world_size)]
    assert sum(len(o) for o in owned) == len(counts)  # every slide on exactly one rank
    assert set().union(*owned) == set(range(len(counts)))
    assert np.array_equal(np.unique(plan), np.arange(len(slide_index)))  # every region seen
    assert plan.size <= 1.6 * len(slide_index)  # about once (small slides are topped up)
    for chunk in plan.reshape(-1, B):
        slides = np.unique(slide_index[chunk])
        assert len(slides) == 1  # a chunk = B regions of one slide
        n = counts[slides[0]]
        if n >= B:
            assert len(np.unique(chunk)) == B  # without replacement
        else:
            assert len(np.unique(chunk)) == n  # all regions, then with replacement


def test_plan__batches_hold_distinct_slides():
    slide_index = _slide_index(num_slides=60)
    plan = plan_epoch(slide_index, M, B, 2, seed=1, epoch=0)
    firsts = slide_index[plan.reshape(2, -1, M, B)[..., 0]]  # (W, T, M) slide per chunk
    distinct = np.mean([len(set(batch)) == M for batch in firsts.reshape(-1, M)])
    assert distinct > 0.95


def test_plan__deterministic_per_seed_and_epoch():
    slide_index = _slide_index()
    args = (slide_index, M, B, 0, 2)
    a = slide_batches(*args, seed=5, epoch=3)
    np.testing.assert_array_equal(a, slide_batches(*args, seed=5, epoch=3))
    assert not np.array_equal(a, slide_batches(*args, seed=5, epoch=4))
    assert not np.array_equal(a, slide_batches(*args, seed=6, epoch=3))
    lengths = {len(slide_batches(slide_index, M, B, r, 3, 0, e))
               for r in range(3) for e in range(4)}
    assert len(lengths) == 1  # the same on every rank and in every epoch


def test_plan__too_few_slides():
    with pytest.raises(ValueError, match='2 slide\\(s\\) cannot be sharded over 3 ranks'):
        plan_epoch(np.array([0, 0, 1]), M, B, 3, 0, 0)


def test_regions_mode__disjoint_cover():
    parts = [shuffled_regions(10, r, 3, seed=0, epoch=0) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    assert set(np.concatenate(parts)) == set(range(10))


class _Regions:
    def __init__(self, slide_index):
        self.slide_index = slide_index

    def __len__(self):
        return len(self.slide_index)


def test_sampler__registered_len_and_set_epoch():
    ds = _Regions(_slide_index())
    sampler = DATA_SAMPLERS.build(dict(type='SlideAwareSampler', slides_per_batch=M,
                                       regions_per_slide=B), default_args=dict(dataset=ds, seed=0))
    first = list(sampler)
    assert len(first) == len(sampler) and len(first) % (M * B) == 0
    assert first == list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and len(list(sampler)) == len(first)
    regions = SlideAwareSampler(ds, mode='regions', seed=0)
    assert sorted(regions) == list(range(len(ds))) and regions.batch_size is None


def test_sampler__bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of \\('slides', 'regions'\\)"):
        SlideAwareSampler(_Regions(np.zeros(3, int)), mode='slide', seed=0)
    with pytest.raises(TypeError, match='no slide_index'):
        SlideAwareSampler(list(range(5)), seed=0)


def test_check_slide_batch_size():
    sampler = dict(type='SlideAwareSampler', slides_per_batch=4, regions_per_slide=32)
    check_slide_batch_size(dict(batch_size=128, sampler=sampler))
    check_slide_batch_size(dict(batch_size=7, sampler=dict(type='DefaultSampler')))
    with pytest.raises(ValueError, match='batch_size is 64, .* 4 \\* 32 = 128; set batch_size=128'):
        check_slide_batch_size(dict(batch_size=64, sampler=sampler))


@pytest.fixture(scope='module')
def demo_store(tmp_path_factory):
    path = tmp_path_factory.mktemp('demo') / 'store'
    make_synthetic_store(path, num_slides=12, min_regions=4, max_regions=30, channels=16,
                         seed=0, progress=False)
    return str(path)


def _batches(store, num_workers, epochs=(0, 1)):
    dataset = RegionFeatureDataset(store)
    sampler = SlideAwareSampler(dataset, slides_per_batch=M, regions_per_slide=B, seed=7)
    loader = DataLoader(dataset, batch_size=M * B, sampler=sampler, num_workers=num_workers)
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out += [(b['inputs'], b['data_samples']['index'], b['data_samples']['slide_index'])
                for b in loader]
    return out


def test_same_batches_on_redis_and_memmap(demo_store, redis_store_uri):
    ingest(find_sources(demo_store), redis_store_uri, progress=False)
    memmap, redis_0, redis_2 = (_batches(demo_store, 0), _batches(redis_store_uri, 0),
                                _batches(redis_store_uri, 2))
    assert len(memmap) == len(redis_0) == len(redis_2) > 0
    for (xm, im, sm), (xr, ir, sr), (x2, i2, _s2) in zip(memmap, redis_0, redis_2):
        assert xm.dtype == torch.float16 and xm.shape == (M * B, 16, 16, 16)
        assert torch.equal(xm, xr) and torch.equal(xm, x2)
        assert torch.equal(im, ir) and torch.equal(im, i2) and torch.equal(sm, sr)
        assert len(torch.unique(sm)) <= M


def test_built_by_mmengine_runner(demo_store):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('slpd_plugin')
    cfg = dict(batch_size=M * B, num_workers=0, collate_fn=dict(type='default_collate'),
               sampler=dict(type='SlideAwareSampler', slides_per_batch=M, regions_per_slide=B),
               dataset=dict(type='RegionFeatureDataset', store=demo_store))
    check_slide_batch_size(cfg)
    loader = Runner.build_dataloader(cfg, seed=3)
    assert isinstance(loader.sampler, SlideAwareSampler) and loader.sampler.seed == 3
    batch = next(iter(loader))
    slides = batch['data_samples']['slide_index'].view(M, B)
    assert (slides == slides[:, :1]).all()  # B regions of one slide per row
