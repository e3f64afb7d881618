"""Ingest every input layout into both stores and export it back; bad input is named."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from slpd_plugin.datasets.ingest import export_store, find_sources, ingest, verify_store
from slpd_plugin.datasets.stores import StoreError, open_store, open_writer
from tests.mask_stores import holey_slides, write_holey_store

LAYOUTS = ('hipt_pt', 'slpd_pt', 'hipt_h5', 'slpd_h5', 'regions')
EXPECTED_LAYOUT = dict(hipt_pt='hipt', slpd_pt='slpd', hipt_h5='hipt', slpd_h5='slpd',
                       regions='regions')


@pytest.fixture(params=['memmap', 'redis'])
def store_uri(request, tmp_path):
    """A fresh destination of each backend."""
    if request.param == 'memmap':
        return str(tmp_path / 'store')
    return request.getfixturevalue('redis_store_uri')


def _stored(values: np.ndarray, dtype: str) -> np.ndarray:
    return values.astype(dtype)


@pytest.mark.parametrize('dtype', ['float16', 'float32'])
@pytest.mark.parametrize('layout', LAYOUTS)
def test_round_trip(layout, dtype, store_uri, make_slides, tmp_path):
    src, truth = make_slides(layout)
    report = ingest(find_sources(str(src)), store_uri, dtype=dtype, progress=False)
    assert report.layouts == {EXPECTED_LAYOUT[layout]: len(truth)}
    assert report.channels == 8 and report.regions == sum(len(g) for g, _ in truth.values())

    store = open_store(store_uri)
    assert store.slide_ids == list(truth) and store.dtype == np.dtype(dtype)
    coords = store.coords()
    for i, (grids, xy) in enumerate(truth.values()):
        np.testing.assert_array_equal(store.read_slide(i), _stored(grids, dtype))
        rec = store.slides[i]
        if xy is not None:
            np.testing.assert_array_equal(coords[rec.offset:rec.offset + rec.count], xy)
    assert verify_store(store_uri, progress=False) == store.num_regions

    for fmt in ('pt', 'h5'):
        files = export_store(store_uri, tmp_path / f'out_{fmt}', fmt=fmt, progress=False)
        assert [f.stem for f in files] == list(truth)
        for path, (grids, xy) in zip(files, truth.values()):
            expected = _stored(grids, dtype).astype(np.float32)
            if fmt == 'pt':
                got = torch.load(path, weights_only=True)
                assert got.dtype == torch.float32 and got.shape == grids.shape
                np.testing.assert_array_equal(got.numpy(), expected)
            else:
                with h5py.File(path, 'r') as f:
                    np.testing.assert_array_equal(f['features'][()], expected)
                    if xy is None:
                        assert 'coords' not in f
                    else:
                        np.testing.assert_array_equal(f['coords'][()], xy)


def test_float16_within_rounding(make_slides, tmp_path):
    src, truth = make_slides('hipt_pt')
    ingest(find_sources(str(src)), str(tmp_path / 's'), progress=False)
    got = open_store(str(tmp_path / 's')).read_slide(0).astype(np.float32)
    np.testing.assert_allclose(got, truth['slide-0'][0], rtol=2 ** -11, atol=2 ** -24)


def test_rerun_is_idempotent_and_resumes(store_uri, make_slides):
    src, truth = make_slides('slpd_pt', counts=(2, 3, 4))
    first = ingest(find_sources(str(src)), store_uri, progress=False)
    again = ingest(find_sources(str(src)), store_uri, progress=False)
    assert (len(first.written), len(again.written), len(again.skipped)) == (3, 0, 3)
    store = open_store(store_uri)
    assert store.slide_ids == list(truth) and store.num_regions == 9


def test_copy_store_to_store(make_slides, tmp_path):
    src, truth = make_slides('hipt_h5')
    ingest(find_sources(str(src)), str(tmp_path / 'a'), progress=False)
    report = ingest(find_sources(str(tmp_path / 'a')), str(tmp_path / 'b'), progress=False)
    a, b = open_store(str(tmp_path / 'a')), open_store(str(tmp_path / 'b'))
    assert report.layouts == {'store': 3} and a.slides == b.slides
    np.testing.assert_array_equal(a.coords(), b.coords())


def test_list_and_csv_sources(make_slides, tmp_path):
    src, truth = make_slides('slpd_h5')
    (tmp_path / 'list.txt').write_text('# slides\nsrc/slide-1.h5\n\nsrc/slide-0.h5\n')
    (tmp_path / 'list.csv').write_text('path,slide_id\nsrc/slide-2.h5,renamed\n')
    assert [s.slide_id for s in find_sources(str(tmp_path / 'list.txt'))] == ['slide-1', 'slide-0']
    assert [s.slide_id for s in find_sources(str(tmp_path / 'list.csv'))] == ['renamed']


def _ingest_folder(folder, tmp_path, **kwargs):
    return ingest(find_sources(str(folder)), str(tmp_path / 'store'), progress=False, **kwargs)


def _grids(n=2, c=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, 16, 16)).astype(np.float32)


def test_bad__wrong_shape(src, tmp_path):
    torch.save(torch.zeros(3, 100, 8), src / 'odd.pt')
    with pytest.raises(StoreError, match=r'odd\.pt.*\(3, 100, 8\).*\(N, 256, C\)'):
        _ingest_folder(src, tmp_path)


def test_bad__wrong_region_shape(src, tmp_path, write_slide):
    write_slide(src, 'slide-a', 'regions', _grids())
    torch.save(torch.zeros(255, 8), src / 'slide-a' / 'region9.pt')
    with pytest.raises(StoreError, match=r'region9\.pt: region of shape \(255, 8\)'):
        _ingest_folder(src, tmp_path)


def test_bad__mixed_channels(src, tmp_path, write_slide):
    write_slide(src, 'a', 'slpd_pt', _grids(c=8))
    write_slide(src, 'b', 'hipt_pt', _grids(c=12))
    with pytest.raises(StoreError, match=r"b\.pt \(slide 'b'\): C=12 channels, but .* C=8"):
        _ingest_folder(src, tmp_path)
    with pytest.raises(StoreError, match='incomplete'):
        open_store(str(tmp_path / 'store'))


def test_bad__channels_flag(src, tmp_path, write_slide):
    write_slide(src, 'a', 'slpd_pt', _grids(c=8))
    with pytest.raises(StoreError, match=r"a\.pt.*C=8 channels.*C=384"):
        _ingest_folder(src, tmp_path, channels=384)


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_bad__non_finite(src, tmp_path, write_slide, bad):
    grids = _grids(n=3)
    grids[1, 2, 3, 4] = bad
    write_slide(src, 'sick', 'hipt_h5', grids)
    with pytest.raises(StoreError, match=r"sick\.h5 \(slide 'sick'\): 1 region\(s\) contain "
                                         r'NaN/Inf values \(first region indices: \[1\]\)'):
        _ingest_folder(src, tmp_path)


@pytest.mark.parametrize('layout', ['slpd_pt', 'slpd_h5'])
def test_bad__truncated_file(src, tmp_path, write_slide, layout):
    path = write_slide(src, 'cut', layout, _grids(n=4))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(StoreError, match=rf'{path.name}: cannot .*truncated'):
        _ingest_folder(src, tmp_path)


def test_bad__duplicate_slide_id(src, write_slide):
    write_slide(src, 'twin', 'slpd_pt', _grids())
    write_slide(src, 'twin', 'slpd_h5', _grids())
    with pytest.raises(StoreError, match=r"duplicate slide id 'twin': .*twin\.h5 and .*twin\.pt"):
        find_sources(str(src))


def test_bad__duplicate_in_store_writer(store_uri):
    writer = open_writer(store_uri)
    writer.add_slide('x', _grids())
    with pytest.raises(StoreError, match="slide 'x': duplicate slide id"):
        writer.add_slide('x', _grids())


def test_bad__empty_slide(src, tmp_path):
    torch.save(torch.zeros(0, 256, 8), src / 'e.pt')
    with pytest.raises(StoreError, match=r"e\.pt \(slide 'e'\): slide has no regions"):
        _ingest_folder(src, tmp_path)


def test_bad__empty_region_folder(src, tmp_path):
    (src / 'hollow').mkdir()
    with pytest.raises(StoreError, match=r'hollow: slide folder holds no per-region .pt'):
        _ingest_folder(src, tmp_path)


def test_bad__integer_features(src, tmp_path):
    torch.save(torch.zeros(2, 8, 16, 16, dtype=torch.int64), src / 'ints.pt')
    with pytest.raises(StoreError, match=r'ints\.pt.*expected floating-point grids, got int64'):
        _ingest_folder(src, tmp_path)


def test_bad__float16_overflow(src, tmp_path, write_slide):
    write_slide(src, 'huge', 'slpd_pt', _grids() * 1e5)
    with pytest.raises(StoreError, match=r'huge\.pt.*do not fit float16.*--dtype float32'):
        _ingest_folder(src, tmp_path)
    _ingest_folder(src, tmp_path / 'fp32', dtype='float32')


def test_bad__pickled_object_refused(src, tmp_path):
    torch.save({'features': torch.zeros(1, 8, 16, 16), 'extra': _Opaque()}, src / 'pickled.pt')
    with pytest.raises(StoreError, match=r'pickled\.pt: cannot load as a weights-only torch'):
        _ingest_folder(src, tmp_path)


class _Opaque:
    """An arbitrary class: weights-only loading must refuse to unpickle it."""


@pytest.mark.parametrize('fmt', ['h5', 'pt'])
def test_export_and_ingest_keep_the_masks_of_a_store_with_holes(tmp_path, fmt):
    """A store with holes -> files -> a new store, and store -> store: the same grids
    and masks, value by value (exported files of slides without holes hold no masks)."""
    slides = holey_slides(num_slides=3, regions=4)
    name, (grids, _) = next(iter(slides.items()))
    slides[name] = (grids, np.ones((4, 16, 16), dtype=bool))  # one slide without holes
    source = write_holey_store(tmp_path / 'src', slides)
    files = export_store(source, tmp_path / 'files', fmt=fmt, progress=False)
    if fmt == 'h5':
        with h5py.File(files[0], 'r') as f:
            assert 'masks' not in f
        with h5py.File(files[1], 'r') as f:
            np.testing.assert_array_equal(f['masks'][()], slides['slide_1'][1])
    for target, inputs in (('from_files', tmp_path / 'files'), ('from_store', source)):
        ingest(find_sources(str(inputs)), str(tmp_path / target), progress=False)
        copy, original = open_store(str(tmp_path / target)), open_store(source)
        assert copy.slide_ids == original.slide_ids
        every = np.arange(original.num_regions)
        np.testing.assert_array_equal(copy.read_masks(every), original.read_masks(every))
        np.testing.assert_array_equal(copy.read(every), original.read(every))
        assert copy.missing_cells() == sum(int((~m).sum()) for _, m in slides.values()) > 0
