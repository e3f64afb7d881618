"""RegionFeatureDataset over the memmap store: samples, batching and bad input."""
import json

import numpy as np
import pytest
import torch

from slpd_plugin.datasets import RegionFeatureDataset, StoreError
from slpd_plugin.datasets.stores import MemmapStore, MemmapStoreWriter
from slpd_plugin.demo.synthetic import make_synthetic_store


def write_store(path, slides, dtype='float16'):
    with MemmapStoreWriter(path, dtype=dtype) as writer:
        for name, grids in slides.items():
            writer.add_slide(name, grids)
    return path


def grids(n, c=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, 16, 16)).astype(np.float32)


def test_samples_carry_slide_and_region_indices(tmp_path):
    a, b = grids(3, seed=1), grids(2, seed=2)
    ds = RegionFeatureDataset(str(write_store(tmp_path / 's', {'A': a, 'B': b}, 'float32')))
    assert len(ds) == 5 and ds.num_slides == 2 and ds.slide_ids == ['A', 'B']
    sample = ds[4]
    assert sample['data_samples'] == dict(index=4, slide_index=1, region_index=1)
    assert torch.equal(sample['inputs'], torch.from_numpy(b[1]))
    batch = ds.__getitems__([0, 3])
    assert [s['data_samples']['slide_index'] for s in batch] == [0, 1]


def test_float16_store_keeps_values_within_half_precision(tmp_path):
    a = grids(4)
    ds = RegionFeatureDataset(str(write_store(tmp_path / 's', {'A': a})))
    got = torch.stack([ds[i]['inputs'] for i in range(4)])
    assert got.dtype == torch.float16
    np.testing.assert_allclose(got.float().numpy(), a, rtol=1e-3, atol=1e-3)


def test_missing_store_names_the_path(tmp_path):
    with pytest.raises(StoreError, match=f'feature store not found: {tmp_path / "nope"}'):
        RegionFeatureDataset(str(tmp_path / 'nope'))


def test_wrong_channel_count_names_store_and_both_counts(tmp_path):
    path = write_store(tmp_path / 's', {'A': grids(2, c=8)})
    with pytest.raises(StoreError, match=rf'{path}.*C=8.*expects C=384'):
        RegionFeatureDataset(str(path), channels=384)


def test_empty_store_is_refused(tmp_path):
    writer = MemmapStoreWriter(tmp_path / 's')
    with pytest.raises(StoreError, match='empty store'):
        writer.finalize()
    with pytest.raises(StoreError, match='incomplete'):
        RegionFeatureDataset(str(tmp_path / 's'))


def test_nan_grids_are_refused_when_written_and_when_read(tmp_path):
    bad = grids(3)
    bad[1, 0, 2, 2] = np.nan
    with pytest.raises(StoreError, match=r"slide 'A'.*NaN/Inf.*\[1\]"):
        write_store(tmp_path / 'w', {'A': bad})
    # bytes corrupted after the store was written: caught at read time, naming the slide
    path = write_store(tmp_path / 's', {'A': grids(2), 'B': grids(3)}, 'float32')
    raw = np.memmap(path / 'grids.bin', dtype='<f4', mode='r+')
    raw[3 * 8 * 256 + 17] = np.inf  # slide B, region 1
    raw.flush()
    ds = RegionFeatureDataset(str(path))
    with pytest.raises(StoreError, match=r"region 1 of slide 'B'"):
        ds.__getitems__([0, 3])
    assert MemmapStore(path).verify() == ['B']


def test_truncated_grid_file_is_detected(tmp_path):
    path = write_store(tmp_path / 's', {'A': grids(2)})
    with open(path / 'grids.bin', 'r+b') as f:
        f.truncate(100)
    with pytest.raises(StoreError, match='truncated'):
        RegionFeatureDataset(str(path))


def test_synthetic_store_and_ground_truth(tmp_path):
    path = make_synthetic_store(tmp_path / 'syn', num_slides=5, min_regions=3, max_regions=9,
                                channels=8, num_phenotypes=3, phenotypes_per_slide=(1, 2),
                                progress=False)
    store = MemmapStore(path)
    truth = np.load(path / 'ground_truth.npz')
    assert len(truth['region_phenotype']) == store.num_regions
    counts = [s.count for s in store.slides]
    assert min(counts) >= 3 and max(counts) <= 9
    assert json.loads((path / 'synthetic.json').read_text())['num_slides'] == 5
    again = make_synthetic_store(tmp_path / 'syn2', num_slides=5, min_regions=3, max_regions=9,
                                 channels=8, num_phenotypes=3, phenotypes_per_slide=(1, 2),
                                 progress=False)
    assert (again / 'grids.bin').read_bytes() == (path / 'grids.bin').read_bytes()


def test_demo_dataset_generates_its_store_once_by_config(tmp_path):
    """SyntheticRegionDataset, built by type name in the slpd_plugin scope, writes its
    store on first use, reuses it, refuses one made otherwise; generate=None reads any."""
    from mmengine.registry import DefaultScope

    from slpd_plugin.registry import DATASETS
    generate = dict(num_slides=4, min_regions=2, max_regions=5, channels=8,
                    num_phenotypes=2, phenotypes_per_slide=(1, 2), seed=0, progress=False)
    cfg = dict(type='slpd_plugin.SyntheticRegionDataset', store=str(tmp_path / 'syn'),
               generate=generate, channels=8)
    with DefaultScope.overwrite_default_scope('slpd_plugin'):
        first = DATASETS.build(cfg)
        stamp = (tmp_path / 'syn' / 'grids.bin').stat().st_mtime_ns
        again = DATASETS.build(cfg)
    assert isinstance(first, RegionFeatureDataset) and len(first) == len(again) > 0
    assert (tmp_path / 'syn' / 'grids.bin').stat().st_mtime_ns == stamp  # not rewritten
    with pytest.raises(StoreError, match='made with other settings'):
        DATASETS.build(dict(cfg, generate=dict(generate, seed=1)))
    other = write_store(tmp_path / 'plain', {'a': grids(3)})
    assert len(DATASETS.build(dict(cfg, store=str(other), generate=None))) == 3
    with pytest.raises(TypeError):
        RegionFeatureDataset(str(other), synthetic=generate)  # the base knows no generator
