"""Tissue masks leave the store with their grids: the dataset's samples, the loader's
batches and the count of missing cells that the config check and the embedding paths
use to decide whether masks travel."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from patch_files import lattice_slide, write_trident

from slpd_plugin.datasets import RegionFeatureDataset
from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources, ingest_patches
from slpd_plugin.datasets.stores import open_store, open_writer
from tests.mask_stores import holey_slides, write_holey_store


@pytest.fixture(params=['memmap', 'redis'])
def store_uri(request, tmp_path):
    if request.param == 'memmap':
        return str(tmp_path / 'store')
    return request.getfixturevalue('redis_store_uri')


def test_samples_carry_their_regions_masks(store_uri):
    slides = holey_slides(num_slides=3, regions=4)
    ds = RegionFeatureDataset(write_holey_store(store_uri, slides))
    masks = np.concatenate([m for _, m in slides.values()])  # (N, 16, 16)
    assert ds.has_holes and ds.metainfo['has_holes']
    # no per-slide records here: the store counts its masks
    assert open_store(store_uri).missing_cells() == int((~masks).sum())
    order = [7, 0, 11, 3]
    batch = ds.__getitems__(order)
    for k, i in enumerate(order):
        assert batch[k]['masks'].dtype == torch.bool
        assert torch.equal(batch[k]['masks'], torch.from_numpy(masks[i]))
        assert torch.equal(batch[k]['inputs'][:, ~batch[k]['masks']],
                           torch.zeros_like(batch[k]['inputs'][:, ~batch[k]['masks']]))
    collated = default_collate(batch)  # what the configs' collate_fn makes of it
    assert collated['masks'].shape == (4, 16, 16) and collated['inputs'].shape[0] == 4
    assert torch.equal(collated['masks'], torch.from_numpy(masks[order]))


def test_a_store_without_holes_gives_no_masks(tmp_path):
    slides = holey_slides(num_slides=2, regions=3, keep=1.1)  # every cell present
    ds = RegionFeatureDataset(write_holey_store(tmp_path / 'full', slides))
    assert not ds.has_holes and 'masks' not in ds[0]
    with open_writer(str(tmp_path / 'plain')) as writer:  # masks=None: all present
        writer.add_slide('a', slides['slide_0'][0])
    assert 'masks' not in RegionFeatureDataset(str(tmp_path / 'plain'))[0]


def test_missing_cells_from_the_manifest_equal_a_count_of_the_masks(store_uri, tmp_path):
    """A patch-feature store answers from its manifest (patches_in_regions); the count
    must be what reading every mask gives."""
    rng = np.random.default_rng(3)
    feats_dir = tmp_path / 'job' / '20x_256px_0px_overlap' / 'features_uni_v1'
    for name, size in (('a', (40, 35)), ('b', (23, 50))):
        write_trident(feats_dir / f'{name}.h5', *lattice_slide(rng, *size, 256, 8))
    ingest_patches(find_patch_sources(str(tmp_path / 'job'), 'trident'), store_uri,
                   PatchOptions('trident'))
    store = open_store(store_uri)
    assert all('patches_in_regions' in rec.source for rec in store.slides)
    counted = int((~store.read_masks(np.arange(store.num_regions))).sum())
    assert counted > 0 and store.missing_cells() == counted and store.has_holes
