"""Slide lattices: exact round trip, windows against a dense reference, regions against
today's ingest, bad input refused in one line with nothing committed lost."""
from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from lattice_reference import dense_slide, window
from patch_files import lattice_slide, simple_regions, write_clam, write_stamp, write_trident

from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources, ingest_patches
from slpd_plugin.datasets.lattice import (
    InPlaceSource,
    LatticeStore,
    LatticeWriter,
    SlideLatticeDataset,
    convert,
)
from slpd_plugin.datasets.lattice.windows import random_windows
from slpd_plugin.datasets.stores import StoreError, open_store

JOB = '20x_256px_0px_overlap'


def trident_job(root, rng, dim=8, sizes=(('a20x', 20, (40, 35)), ('b40x', 40, (23, 50)))):
    """A TRIDENT job: a 20x slide (stride 256) and a 40x slide (stride 512) at 20x."""
    feats_dir = root / 'job' / JOB / 'features_uni_v1'
    slides = {}
    for name, level0, size in sizes:
        stride = 256 * level0 // 20
        coords, feats = lattice_slide(rng, *size, stride, dim, phase=(stride // 2, 0))
        write_trident(feats_dir / f'{name}.h5', coords, feats, level0_mag=level0)
        slides[name] = (coords, feats, stride)
    return root / 'job', slides


def converted(tmp_path, rng=None, **kw):
    job, slides = trident_job(tmp_path, rng or np.random.default_rng(0), **kw)
    store = tmp_path / 'lattice'
    convert(find_patch_sources(str(job), 'trident'), store, PatchOptions('trident'),
            dtype='float32', chunk_bytes=4 * 8 * 100)  # 100-row chunks: many per slide
    return job, slides, LatticeStore(store)


def test_round_trip_exact(tmp_path):
    job, slides, store = converted(tmp_path)
    assert store.slide_ids == ['a20x', 'b40x'] and store.channels == 8
    assert store.verify() == []
    for s, (name, (coords, feats, stride)) in enumerate(slides.items()):
        rec = store.slides[s]
        dense, present, phase = dense_slide(coords, feats, stride)
        np.testing.assert_array_equal(store.features(s), feats)  # as stored, file order
        (piece,) = rec.pieces
        assert rec.stride == stride and piece.phase == phase
        index = store.index_map(s, 0)
        c0, r0 = piece.origin
        assert index.shape == (present.shape[0] - r0, present.shape[1] - c0)
        np.testing.assert_array_equal(index >= 0, present[r0:, c0:])
        np.testing.assert_array_equal(store.features(s)[index[index >= 0]],
                                      dense[r0:, c0:][present[r0:, c0:]])
        cells = store.cells(s)
        np.testing.assert_array_equal(index[cells[:, 1], cells[:, 2]], np.arange(len(feats)))
        assert hashlib.sha256(feats.tobytes()).hexdigest() == rec.sha256
        assert rec.source['file_bytes'] == (job / JOB / 'features_uni_v1' /
                                            f'{name}.h5').stat().st_size
    prov = store.provenance
    assert (prov['format'], prov['encoder'], prov['patch_size_px'],
            prov['target_magnification']) == ('trident', 'uni_v1', 256, 20)


def test_verify_finds_a_flipped_byte(tmp_path):
    _, _, store = converted(tmp_path)
    with open(store.root / 'features.bin', 'r+b') as f:
        f.seek(12)
        byte = f.read(1)
        f.seek(12)
        f.write(bytes([byte[0] ^ 1]))
    assert LatticeStore(store.root).verify() == ['a20x']


@pytest.mark.parametrize('source', ['store', 'in_place'])
def test_every_window_equals_the_dense_slice(tmp_path, source):
    job, slides, store = converted(tmp_path)
    src = store if source == 'store' else InPlaceSource(str(job), cache_mb=0.01)
    rng = np.random.default_rng(1)
    for s, (coords, feats, stride) in enumerate(slides.values()):
        dense, present, _ = dense_slide(coords, feats, stride)
        c0, r0 = src.slides[s].pieces[0].origin
        h, w = src.index_map(s, 0).shape
        g = 7
        edges = [(-g + 1, -g + 1), (-g + 1, w - 1), (h - 1, -g + 1), (h - 1, w - 1),
                 (0, 0), (h - g, w - g), (-3, w // 2)]
        drawn = random_windows(rng, src.index_map(s, 0), g, 40, min_tissue=0.0)
        pos = np.concatenate([np.array(edges), drawn])
        got, masks = src.gather(s, 0, pos[:, 0], pos[:, 1], g)
        for (r, c), grid, mask in zip(pos, got, masks):
            want, want_mask = window(dense, present, r0 + r, c0 + c, g)
            np.testing.assert_array_equal(grid, want)
            np.testing.assert_array_equal(mask, want_mask)


def test_in_place_cache_stays_within_its_bound(tmp_path):
    job, slides, _ = converted(tmp_path)
    one = max(f.nbytes for _, f, _ in slides.values())
    src = InPlaceSource(str(job), cache_mb=1.5 * one / 2 ** 20)
    for s in (0, 1, 0, 1):
        src.features(s)
        assert 0 < src.cached_bytes <= 1.5 * one + 4 * 60 * 60  # + one slide's maps


@pytest.mark.parametrize('grid_size', [16, 8])
def test_regions_mode_equals_todays_ingest(tmp_path, grid_size):
    job, slides, store = converted(tmp_path)
    ingest_patches(find_patch_sources(str(job), 'trident'), str(tmp_path / 'regions'),
                   PatchOptions('trident', grid_size=grid_size), dtype='float32')
    regions = open_store(str(tmp_path / 'regions'))
    for source in (str(store.root), str(job)):  # converted, and read in place
        ds = SlideLatticeDataset(source, grid_size=grid_size)
        assert len(ds) == regions.num_regions
        np.testing.assert_array_equal(ds.slide_index, regions.region_slide_index())
        batch = ds.__getitems__(np.arange(len(ds)))
        np.testing.assert_array_equal(np.stack([b['inputs'].numpy() for b in batch]),
                                      regions.read(np.arange(len(ds))))
        np.testing.assert_array_equal(np.stack([b['masks'].numpy() for b in batch]),
                                      regions.read_masks(np.arange(len(ds))))
        np.testing.assert_array_equal(ds.corners(np.arange(len(ds))), regions.coords())


def test_piece_anchor_tiles_each_clam_piece_from_its_corner(tmp_path):
    rng = np.random.default_rng(3)
    a, fa = lattice_slide(rng, 20, 18, 512, 4, keep=0.9, phase=(100, 40))
    b, fb = lattice_slide(rng, 9, 11, 512, 4, keep=0.9, phase=(300, 7))
    b = b + np.array([20 * 512, 0])
    coords, feats = np.concatenate([a, b]), np.concatenate([fa, fb])
    write_clam(tmp_path / 'clam', 's1', coords, feats,
               patches=dict(patch_size=256, patch_level=0, downsample=[2.0, 2.0]))
    convert(find_patch_sources(str(tmp_path / 'clam'), 'clam'), tmp_path / 'lat',
            PatchOptions('clam'), dtype='float32')
    store = LatticeStore(tmp_path / 'lat')
    assert len(store.slides[0].pieces) == 2
    ds = SlideLatticeDataset(str(tmp_path / 'lat'), grid_size=4, min_tissue=0.0,
                             anchor='piece')
    got = ds.__getitems__(np.arange(len(ds)))
    corners = ds.corners(np.arange(len(ds)))
    expected = 0
    for part_coords, part_feats in ((a, fa), (b, fb)):  # each piece from its own corner
        grids, masks, reg_corners = simple_regions(part_coords - part_coords.min(0), part_feats,
                                                   512, g=4, min_tissue=0.0)
        reg_corners = reg_corners + part_coords.min(0)
        for grid, mask, corner in zip(grids, masks, reg_corners):
            k = int(np.flatnonzero((corners == corner).all(axis=1))[0])
            np.testing.assert_array_equal(got[k]['inputs'].numpy(), grid)
            np.testing.assert_array_equal(got[k]['masks'].numpy(), mask)
            expected += 1
    assert expected == len(ds)


def test_random_windows_meet_the_tissue_fraction(tmp_path):
    _, _, store = converted(tmp_path)
    ds = SlideLatticeDataset(str(store.root), mode='windows', grid_size=8, min_tissue=0.5,
                             windows_per_slide=64)
    batch = ds.__getitems__(np.arange(len(ds)))
    masks = np.stack([b['masks'].numpy() for b in batch])
    feats = np.stack([b['inputs'].numpy() for b in batch])
    assert len(ds) == 128 and (masks.mean(axis=(1, 2)) >= 0.5).all()
    np.testing.assert_array_equal((feats != 0).any(axis=1), masks)
    again = ds.__getitems__(np.arange(len(ds)))  # new windows on every call
    assert not all(np.array_equal(x['masks'], y['masks']) for x, y in zip(batch, again))


# ---- bad input: one line naming the file and what was expected; nothing lost ----

def _bad_file(kind, folder, rng):
    coords, feats = lattice_slide(rng, 10, 10, 256, 8)
    path = folder / 'zz_bad.h5'
    if kind == 'nan':
        feats[5, 2] = np.nan
    elif kind == 'inf':
        feats[7, 0] = np.inf
    elif kind == 'duplicate':
        coords[3] = coords[4]
    elif kind == 'off_lattice':
        coords[3] = coords[3] + np.array([100, 0])
    write_trident(path, coords, feats)
    if kind == 'truncated':
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    return path


@pytest.mark.parametrize('kind,expected', [
    ('nan', 'NaN/Inf features'), ('inf', 'NaN/Inf features'),
    ('duplicate', 'duplicate coordinates'), ('off_lattice', 'stride'),
    ('truncated', 'truncated')])
def test_bad_file_refused_and_nothing_lost(tmp_path, kind, expected):
    job, slides = trident_job(tmp_path, np.random.default_rng(0))
    folder = job / JOB / 'features_uni_v1'
    bad = _bad_file(kind, folder, np.random.default_rng(5))
    with pytest.raises(StoreError) as err:
        convert(find_patch_sources(str(job), 'trident'), tmp_path / 'lat',
                PatchOptions('trident'), dtype='float32')
    message = str(err.value)
    assert '\n' not in message and str(bad) in message and expected in message
    bad.unlink()
    report = convert(find_patch_sources(str(job), 'trident'), tmp_path / 'lat',
                     PatchOptions('trident'), dtype='float32')
    assert (report.skipped, report.written) == (['a20x', 'b40x'], [])
    assert LatticeStore(tmp_path / 'lat').verify() == []


def test_mixed_strides_in_a_clam_folder_refused(tmp_path):
    rng = np.random.default_rng(0)
    for name, stride in (('a', 512), ('b', 256)):
        coords, feats = lattice_slide(rng, 8, 8, stride, 4)
        write_clam(tmp_path / 'clam', name, coords, feats,
                   patches=dict(patch_size=256, patch_level=0, downsample=[stride / 256] * 2))
    with pytest.raises(StoreError, match=r'b\.h5: mixed strides in one folder: patches are '
                                         r'256 level-0 px apart.* have 512'):
        convert(find_patch_sources(str(tmp_path / 'clam'), 'clam'), tmp_path / 'lat',
                PatchOptions('clam'))
    assert LatticeWriter(tmp_path / 'lat').written_slides() == ['a']


def test_empty_folder_and_missing_path_refused(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(StoreError, match=r'empty: no \.h5 patch-feature files'):
        find_patch_sources(str(tmp_path / 'empty'), 'stamp')
    with pytest.raises(StoreError, match=r'nowhere: no such \.h5 file or folder'):
        SlideLatticeDataset(str(tmp_path / 'nowhere'))
    with pytest.raises(StoreError, match=r'empty: cannot tell .* pass --format'):
        SlideLatticeDataset(str(tmp_path / 'empty'))


def test_stamp_in_micrometres(tmp_path):
    rng = np.random.default_rng(2)
    coords, feats = lattice_slide(rng, 12, 9, 1, 4)
    um = coords * 256.0 + rng.uniform(-0.3, 0.3, coords.shape)
    write_stamp(tmp_path / 'stamp' / 's.h5', um, feats)
    ds = SlideLatticeDataset(str(tmp_path / 'stamp'), grid_size=4, min_tissue=0.0)
    dense, present, _ = dense_slide(coords, feats, 1)
    got = ds.__getitems__(np.arange(len(ds)))
    for k, corner in enumerate(ds.corners(np.arange(len(ds)))):
        col, row = np.round(corner / 256.0).astype(int)
        want, mask = window(dense, present, row, col, 4)
        np.testing.assert_array_equal(got[k]['inputs'].numpy(), want)
        np.testing.assert_array_equal(got[k]['masks'].numpy(), mask)
    with h5py.File(tmp_path / 'stamp' / 's.h5') as f:
        assert f['feats'].shape == feats.shape


def test_built_from_a_config_and_read_by_loader_workers(tmp_path):
    """The config's dataset dict builds it; two DataLoader workers, each with its own
    cache, give the regions the dataset gives in this process."""
    import torch
    from torch.utils.data import DataLoader

    from slpd_plugin.registry import DATASETS

    job, _, _ = converted(tmp_path)
    ds = DATASETS.build(dict(type='SlideLatticeDataset', store=str(job), grid_size=8,
                             channels=8, cache_mb=1))
    direct = ds.__getitems__(np.arange(len(ds)))
    loader = DataLoader(ds, batch_size=5, num_workers=2, collate_fn=lambda b: b)
    got = [s for batch in loader for s in batch]
    assert len(got) == len(ds)
    for a, b in zip(got, direct):
        assert torch.equal(a['inputs'], b['inputs']) and torch.equal(a['masks'], b['masks'])
        assert a['data_samples'] == b['data_samples']


def test_region_view_embeds_like_the_ingested_store(tmp_path):
    """Extraction reads a lattice store, or the TRIDENT folder in place, through
    ``open_regions``: the same regions, masks and corners as ``tools/ingest.py``'s store,
    so the same embeddings, slide by slide."""
    import torch
    from mmengine.config import Config

    from slpd_plugin.checkpoints.extract import extract_embeddings
    from slpd_plugin.datasets.lattice import LatticeRegionStore, open_regions
    from slpd_plugin.registry import MODELS
    from tests.utils import ROOT

    job, _, store = converted(tmp_path, dim=32)  # the tiny config's C
    ingest_patches(find_patch_sources(str(job), 'trident'), str(tmp_path / 'regions'),
                   PatchOptions('trident'), dtype='float32')
    regions = open_regions(str(tmp_path / 'regions'))
    assert not isinstance(regions, LatticeRegionStore)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(ROOT / 'tests/configs/tiny_slpd.py')).model).eval()
    want = extract_embeddings(model, regions, tmp_path / 'emb_regions', progress=False)
    order = np.random.default_rng(1).permutation(regions.num_regions)
    for source in (str(store.root), str(job)):
        view = open_regions(source)
        assert isinstance(view, LatticeRegionStore) and view.has_holes
        assert view.slide_ids == regions.slide_ids
        np.testing.assert_array_equal(view.region_slide_index(), regions.region_slide_index())
        np.testing.assert_array_equal(view.read(order), regions.read(order))
        np.testing.assert_array_equal(view.read_masks(order), regions.read_masks(order))
        np.testing.assert_array_equal(view.coords(), regions.coords())
        out = tmp_path / f'emb_{len(source)}'
        got = extract_embeddings(model, view, out, progress=False)
        assert got['num_regions'] == want['num_regions']
        for slide_id in regions.slide_ids:
            torch.testing.assert_close(torch.load(out / f'{slide_id}.pt'),
                                       torch.load(tmp_path / 'emb_regions' / f'{slide_id}.pt'))
