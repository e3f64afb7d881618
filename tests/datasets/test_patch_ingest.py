"""TRIDENT / CLAM / STAMP patch features become region grids with tissue masks.

Every stored grid, mask and corner is compared value by value with a dict-based
assembly written here (patch_files.simple_regions); each refused file is named with
both values, and leaves nothing of its slide in the store.
"""
from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest
from patch_files import lattice_slide, simple_regions, write_clam, write_stamp, write_trident

from slpd_plugin.datasets.ingest import (
    PatchOptions,
    find_patch_sources,
    ingest_patches,
    verify_store,
)
from slpd_plugin.datasets.stores import StoreError, open_store, open_writer

JOB = '20x_256px_0px_overlap'


@pytest.fixture(params=['memmap', 'redis'])
def store_uri(request, tmp_path):
    if request.param == 'memmap':
        return str(tmp_path / 'store')
    return request.getfixturevalue('redis_store_uri')


def _check_slide(store, position, coords, feats, stride, g=16, min_tissue=0.25):
    grids, masks, corners = simple_regions(coords, feats, stride, g, min_tissue)
    rec = store.slides[position]
    assert rec.count == len(grids) > 0
    idx = np.arange(rec.offset, rec.offset + rec.count)
    np.testing.assert_array_equal(store.read_slide(position), grids)
    np.testing.assert_array_equal(store.read_masks(idx), masks)
    np.testing.assert_array_equal(store.coords()[idx], corners)


def _trident_job(tmp_path, rng, dim=8):
    """A 20x slide (stride 256) and a 40x slide (stride 512), both extracted at 20x."""
    feats_dir = tmp_path / 'job' / JOB / 'features_uni_v1'
    slides = {}
    for name, level0, size in (('a20x', 20, (40, 35)), ('b40x', 40, (23, 50))):
        stride = 256 * level0 // 20
        coords, feats = lattice_slide(rng, *size, stride, dim)
        write_trident(feats_dir / f'{name}.h5', coords, feats, level0_mag=level0)
        slides[name] = (coords, feats, stride)
    return tmp_path / 'job', slides


def test_trident_job_holes_and_40x(store_uri, tmp_path):
    job, slides = _trident_job(tmp_path, np.random.default_rng(0))
    report = ingest_patches(find_patch_sources(str(job), 'trident'), store_uri,
                            PatchOptions('trident', part_bytes=3 * 8 * 256 * 4),
                            dtype='float32')
    assert report.written == ['a20x', 'b40x'] and report.channels == 8
    store = open_store(store_uri)
    for position, (coords, feats, stride) in enumerate(slides.values()):
        _check_slide(store, position, coords, feats, stride)
    prov = store.provenance
    assert (prov['format'], prov['encoder'], prov['patch_size_px'],
            prov['target_magnification'], prov['grid_size']) == ('trident', 'uni_v1', 256, 20,
                                                                 16)
    for rec, name in zip(store.slides, slides):
        path = job / JOB / 'features_uni_v1' / f'{name}.h5'
        assert rec.source['file_sha256'] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert rec.source['stride'] == slides[name][2]
        assert rec.source['level0_magnification'] == {'a20x': 20, 'b40x': 40}[name]
    assert verify_store(store_uri, progress=False) == store.num_regions
    again = ingest_patches(find_patch_sources(str(job), 'trident'), store_uri,
                           PatchOptions('trident'), dtype='float32')
    assert (again.written, again.skipped) == ([], ['a20x', 'b40x'])


@pytest.mark.parametrize('g,min_tissue', [(8, 0.0), (4, 0.75)])
def test_region_size_and_tissue_threshold(tmp_path, g, min_tissue):
    coords, feats = lattice_slide(np.random.default_rng(1), 30, 21, 256, 5, keep=0.6)
    write_trident(tmp_path / 'src' / 's.h5', coords, feats)
    ingest_patches(find_patch_sources(str(tmp_path / 'src'), 'trident'),
                   str(tmp_path / 'st'), PatchOptions('trident', grid_size=g,
                                                      min_tissue=min_tissue),
                   dtype='float32')
    store = open_store(str(tmp_path / 'st'))
    assert store.grid_size == g
    _check_slide(store, 0, coords, feats, 256, g, min_tissue)


@pytest.mark.parametrize('how', ['patches', 'option', 'inferred'])
def test_clam(tmp_path, how, recwarn):
    rng = np.random.default_rng(2)
    coords, feats = lattice_slide(rng, 33, 40, 512, 6, phase=(0, 0))
    patches = dict(patch_size=256, patch_level=1, downsample=np.array([2.0, 2.0]),
                   level_dim=[1, 1], name='s')
    write_clam(tmp_path / 'clam', 's', coords, feats, patches if how == 'patches' else None)
    options = PatchOptions('clam', patch_size_level0=512 if how == 'option' else None)
    ingest_patches(find_patch_sources(str(tmp_path / 'clam'), 'clam'), str(tmp_path / 'st'),
                   options, dtype='float32')
    store = open_store(str(tmp_path / 'st'))
    _check_slide(store, 0, coords, feats, 512)
    notices = [str(w.message) for w in recwarn if 'most common step' in str(w.message)]
    assert len(notices) == (how == 'inferred')
    assert store.slides[0].source['stride_source'] == dict(
        patches=f"{tmp_path / 'clam' / 'patches' / 's.h5'}: patch_size x downsample",
        option='--patch-size-level0', inferred='inferred from the coordinates')[how]


def _clam_folder(tmp_path, strides: dict[str, int], with_patches=()) -> dict:
    """CLAM ``h5_files/`` of one slide per name at the given level-0 stride; the slides
    named in ``with_patches`` get a ``patches/`` file (patch_size x downsample)."""
    rng = np.random.default_rng(11)
    slides = {}
    for name, stride in strides.items():
        coords, feats = lattice_slide(rng, 20, 18, stride, 4, phase=(0, 0))
        patches = (dict(patch_size=256, patch_level=0 if stride == 256 else 1,
                        downsample=[stride / 256] * 2) if name in with_patches else None)
        write_clam(tmp_path / 'clam', name, coords, feats, patches)
        slides[name] = (coords, feats, stride)
    return slides


def test_clam_slides_at_different_inferred_strides_are_refused_unless_allowed(tmp_path):
    """Without patches/, a 256-px and a 512-px stride may mean 40x and 20x patches: the
    folder is refused before anything is written, naming the slides of each stride."""
    slides = _clam_folder(tmp_path, {'a': 256, 'b': 512, 'c': 256})
    sources = find_patch_sources(str(tmp_path / 'clam'), 'clam')
    store = tmp_path / 'st'
    with pytest.raises(StoreError, match=r'h5_files: CLAM slides at different level-0 patch '
                                         r'strides \(stride 256: a, c; stride 512: b\).*'
                                         r'--allow-mixed-strides'):
        ingest_patches(sources, str(store), PatchOptions('clam'), dtype='float32')
    assert not store.exists() or not open_writer(str(store), channels=4,
                                                 dtype='float32').records
    report = ingest_patches(sources, str(store), PatchOptions('clam', allow_mixed_strides=True),
                            dtype='float32')
    assert report.written == ['a', 'b', 'c']
    opened = open_store(str(store))
    for position, (coords, feats, stride) in enumerate(slides.values()):
        _check_slide(opened, position, coords, feats, stride)


def test_clam_slide_at_another_inferred_stride_than_the_store_is_refused(tmp_path):
    _clam_folder(tmp_path, {'a': 256, 'b': 256}, with_patches=('a', 'b'))
    ingest_patches(find_patch_sources(str(tmp_path / 'clam'), 'clam'), str(tmp_path / 'st'),
                   PatchOptions('clam'), dtype='float32')
    more = tmp_path / 'more'
    _clam_folder(more, {'c': 512})
    with pytest.raises(StoreError, match=r'stride 256: a, b; stride 512: c'):
        ingest_patches(find_patch_sources(str(more / 'clam'), 'clam'), str(tmp_path / 'st'),
                       PatchOptions('clam'), dtype='float32')
    assert open_store(str(tmp_path / 'st')).slide_ids == ['a', 'b']


def test_clam_strides_from_patches_files_may_differ(tmp_path):
    """patches/ gives each slide's stride from CLAM's own attributes: not inferred, so
    not refused (as for TRIDENT, the files say what they are)."""
    _clam_folder(tmp_path, {'a': 256, 'b': 512}, with_patches=('a', 'b'))
    report = ingest_patches(find_patch_sources(str(tmp_path / 'clam'), 'clam'),
                            str(tmp_path / 'st'), PatchOptions('clam'), dtype='float32')
    assert report.written == ['a', 'b']


def _two_pieces(rng, dim=6):
    """A CLAM slide of two tissue pieces, each tiled from its own corner: the second
    piece's lattice is shifted by (100, 300) px. Patches of both pieces interleave in
    the file."""
    big = lattice_slide(rng, 33, 40, 512, dim, phase=(0, 0))
    small = lattice_slide(rng, 20, 20, 512, dim, phase=(40 * 512 + 100, 300))
    order = rng.permutation(len(big[0]) + len(small[0]))
    coords, feats = (np.concatenate([a, b])[order] for a, b in zip(big, small))
    return coords, feats, big, small


@pytest.mark.parametrize('mode', [None, 'split', 'refuse'])
def test_clam_tissue_pieces_on_shifted_lattices(tmp_path, mode):
    coords, feats, big, small = _two_pieces(np.random.default_rng(7))
    write_clam(tmp_path / 'clam', 's', coords, feats, dict(patch_size=256, patch_level=1,
                                                           downsample=[2.0, 2.0]))
    sources = find_patch_sources(str(tmp_path / 'clam'), 'clam')
    options = PatchOptions('clam', shifted_lattices=mode)
    if mode == 'refuse':
        with pytest.raises(StoreError, match=r'shifted lattices: stride 512, .* phase '
                                             r'\[100, 300\].*--shifted-lattices split'):
            ingest_patches(sources, str(tmp_path / 'st'), options, dtype='float32')
        return
    ingest_patches(sources, str(tmp_path / 'st'), options, dtype='float32')
    store = open_store(str(tmp_path / 'st'))
    # each piece cut from its own lattice's origin, the larger piece first
    parts = [simple_regions(*piece, 512) for piece in (big, small)]
    grids, masks, corners = (np.concatenate(p) for p in zip(*parts))
    assert len(parts[0][0]) and len(parts[1][0])
    rec = store.slides[0]
    idx = np.arange(rec.offset, rec.offset + rec.count)
    np.testing.assert_array_equal(store.read_slide(0), grids)
    np.testing.assert_array_equal(store.read_masks(idx), masks)
    np.testing.assert_array_equal(store.coords()[idx], corners)
    assert rec.source['pieces'] == 2 and rec.source['phases'] == [[0, 0], [100, 300]]
    assert rec.source['patches_in_regions'] == int(masks.sum())
    assert verify_store(str(tmp_path / 'st'), progress=False) == len(grids)


def test_split_by_phase_groups_micrometre_noise_and_refuses_noise_as_pieces():
    from slpd_plugin.datasets.ingest.lattice import split_by_phase
    rng = np.random.default_rng(8)
    a = np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2) * 256.0
    b = a + [5000 + 128.0, 64.0]
    coords = np.concatenate([a, b[:40]]) + rng.uniform(-0.4, 0.4, (140, 2))
    coords[coords < 0] = 0.0
    pieces = split_by_phase(coords, 256.0, 's.h5')
    assert [len(p) for p in pieces] == [100, 40]
    assert sorted(pieces[1].tolist()) == list(range(100, 140))
    scattered = rng.uniform(0, 1e5, (500, 2)).round()
    with pytest.raises(StoreError, match=r's\.h5: the patches sit on more than 64 shifted'):
        split_by_phase(scattered, 256, 's.h5')


def test_clam_patch_size_option_disagrees_with_patches_file(tmp_path):
    coords, feats = lattice_slide(np.random.default_rng(3), 20, 20, 512, 4)
    write_clam(tmp_path / 'clam', 's', coords, feats,
               dict(patch_size=256, patch_level=1, downsample=[2.0, 2.0]))
    with pytest.raises(StoreError, match=r's\.h5: the level-0 patch size is 256 '
                                         r'\(--patch-size-level0\) but 512'):
        ingest_patches(find_patch_sources(str(tmp_path / 'clam'), 'clam'),
                       str(tmp_path / 'st'), PatchOptions('clam', patch_size_level0=256))


def test_stamp_micrometres(tmp_path):
    rng = np.random.default_rng(4)
    cells, feats = lattice_slide(rng, 36, 20, 1, 7)
    coords_um = cells * 256.0 + rng.uniform(0, 0.01, cells.shape)  # float noise
    write_stamp(tmp_path / 'stamp' / 's.h5', coords_um, feats)
    ingest_patches(find_patch_sources(str(tmp_path / 'stamp'), 'stamp'),
                   str(tmp_path / 'st'), PatchOptions('stamp'), dtype='float32')
    store = open_store(str(tmp_path / 'st'))
    _check_slide(store, 0, cells * 256, feats, 256)
    assert store.provenance['coords_unit'] == 'um'
    assert store.slides[0].source['stride'] == 256
    assert store.provenance['mpp'] == pytest.approx(256 / 224)


def test_pt_files_refused(tmp_path):
    (tmp_path / 'clam' / 'pt_files').mkdir(parents=True)
    (tmp_path / 'clam' / 'pt_files' / 's.pt').write_bytes(b'')
    for src in (tmp_path / 'clam', tmp_path / 'clam' / 'pt_files'):
        with pytest.raises(StoreError, match='pt_files/ folder holds features only.*'
                                             'h5_files/'):
            find_patch_sources(str(src), 'clam')


def _bad_trident(tmp_path, rng, problem):
    """A TRIDENT file with one problem, and the message expected (regex)."""
    coords, feats = lattice_slide(rng, 20, 20, 256, 8)
    kwargs = {}
    if problem == 'mixed strides':
        coords = np.concatenate([coords, [[20 * 256 + 100, 0]]])
        feats = np.concatenate([feats, feats[:1]])
        expect = (r'mixed strides: patches are 256 apart, but the patch at \[\d+, 0\] has '
                  r'a neighbour \d+ away along x')
    elif problem == 'shifted lattices':
        coords = np.concatenate([coords, [[30 * 256 + 7, 7]]])
        feats = np.concatenate([feats, feats[:1]])
        expect = r'shifted lattices: stride 256, .* phase \[7, 7\]'
    elif problem == 'duplicate':
        coords = np.concatenate([coords, coords[:1]])
        feats = np.concatenate([feats, feats[:1]])
        expect = 'duplicate coordinates: .* appears 2 times'
    elif problem == 'overlap attr':
        kwargs = dict(overlap=64)
        expect = 'patches overlap by 64 px .* --overlap 0'
    elif problem == 'overlap coords':
        coords = coords // 2
        expect = ("neighbouring patches are 128 apart but coords.attrs\\['patch_size_level0'\\] "
                  'is 256: the patches overlap')
    elif problem == 'stride vs attrs':
        coords = coords * 3 // 2
        expect = "patches are 384 apart, but coords.attrs\\['patch_size_level0'\\] is 256"
    elif problem == 'level0 size vs magnification':
        kwargs = dict(patch_size_level0=512)
        expect = ('level-0 patch size is 512 .* but 256 .*patch_size 256 x '
                  'level0_magnification 20')
    elif problem == 'nan':
        k = int(np.flatnonzero((coords < 16 * 256).all(axis=1))[3])  # in a kept region
        feats[k, 3] = np.nan
        expect = rf'patch {k} at \[\d+, \d+\] has NaN/Inf features'
    elif problem == 'dim':
        feats = feats[:, :6]
        expect = 'D=6 features, but the store .* has D=8'
    elif problem == 'magnification':
        kwargs = dict(target_mag=10, level0_mag=10)
        expect = 'target_magnification is 10, but the store .* has 20'
    elif problem == 'patch size':
        kwargs = dict(patch_size=512, patch_size_level0=512)
        coords = coords * 2
        expect = 'patch_size_px is 512, but the store .* has 256'
    elif problem == 'encoder':
        kwargs = dict(encoder='conch_v15')
        expect = "encoder is 'conch_v15', but the store .* has 'uni_v1'"
    return coords, feats, kwargs, expect


PROBLEMS = ['mixed strides', 'shifted lattices', 'duplicate', 'overlap attr',
            'overlap coords', 'stride vs attrs', 'level0 size vs magnification', 'nan',
            'dim', 'magnification', 'patch size', 'encoder']


@pytest.mark.parametrize('problem', PROBLEMS)
def test_bad_slide_named_and_not_written(problem, tmp_path):
    rng = np.random.default_rng(5)
    good_coords, good_feats = lattice_slide(rng, 20, 20, 256, 8)
    write_trident(tmp_path / 'src' / 'a_good.h5', good_coords, good_feats)
    coords, feats, kwargs, expect = _bad_trident(tmp_path, rng, problem)
    bad = write_trident(tmp_path / 'src' / 'b_bad.h5', coords, feats, **kwargs)
    store = tmp_path / 'st'
    with pytest.raises(StoreError, match=expect) as info:
        ingest_patches(find_patch_sources(str(tmp_path / 'src'), 'trident'), str(store),
                       PatchOptions('trident', part_bytes=2 * 8 * 256 * 4),
                       dtype='float32')
    assert str(bad) in str(info.value) and '\n' not in str(info.value)
    journal = [json.loads(line) for line in (store / 'journal.jsonl').read_text().splitlines()]
    assert [e['record']['slide_id'] for e in journal] == ['a_good']
    count = journal[0]['record']['count']
    assert (store / 'grids.bin').stat().st_size == count * 8 * 256 * 4
    assert (store / 'masks.bin').stat().st_size == count * 256
    bad.unlink()  # fix the source and re-run: the store completes
    ingest_patches(find_patch_sources(str(tmp_path / 'src'), 'trident'), str(store),
                   PatchOptions('trident'), dtype='float32')
    _check_slide(open_store(str(store)), 0, good_coords, good_feats, 256)


def test_nan_midway_through_redis_slide(redis_store_uri, tmp_path):
    from slpd_plugin.datasets.stores import RedisStoreWriter
    rng = np.random.default_rng(6)
    grids = rng.standard_normal((7, 4, 16, 16)).astype(np.float32)
    writer = RedisStoreWriter(redis_store_uri, dtype='float32',
                              blob_bytes=2 * grids[0].nbytes)

    def parts(bad):
        for k in range(0, 7, 3):
            part = grids[k:k + 3].copy()
            if bad and k == 6:
                part[0, 0, 0, 0] = np.nan
            yield part, None, np.ones((len(part), 16, 16), bool)
    with pytest.raises(StoreError, match='NaN/Inf'):
        writer.add_slide_parts('s', parts(True))
    assert writer.records == []
    writer.add_slide_parts('s', parts(False))
    writer.finalize()
    store = open_store(redis_store_uri)
    np.testing.assert_array_equal(store.read_slide(0), grids)
    assert store.read_masks([0, 6]).all()


def test_no_tissue_slide_warned_and_skipped(tmp_path):
    rng = np.random.default_rng(7)
    coords, feats = lattice_slide(rng, 20, 20, 256, 4)
    write_trident(tmp_path / 'src' / 'a.h5', coords, feats)
    write_trident(tmp_path / 'src' / 'tiny.h5', coords[:5], feats[:5])
    with pytest.warns(UserWarning, match=r'tiny\.h5: no region of 16x16 patches has '
                                         r'tissue fraction >= 0.25 .* slide skipped'):
        report = ingest_patches(find_patch_sources(str(tmp_path / 'src'), 'trident'),
                                str(tmp_path / 'st'), PatchOptions('trident'))
    assert report.written == ['a'] and report.no_tissue == ['tiny']
    assert open_store(str(tmp_path / 'st')).slide_ids == ['a']


def _old_memmap_store(path, grids):
    """A store as written before masks existed: no masks.bin, no has_masks."""
    path.mkdir()
    grids.astype('<f4').tofile(path / 'grids.bin')
    np.full((len(grids), 2), -1, '<i8').tofile(path / 'coords.bin')
    rec = dict(slide_id='old', offset=0, count=len(grids),
               sha256=hashlib.sha256(grids.astype('<f4').tobytes()).hexdigest())
    (path / 'journal.jsonl').write_text(json.dumps(dict(
        record=rec, channels=grids.shape[1], dtype='float32', has_coords=False)) + '\n')
    (path / 'manifest.json').write_text(json.dumps(dict(
        format='slpd-memmap', version=1, complete=True, channels=grids.shape[1],
        dtype='float32', grid_size=16, num_regions=len(grids), has_coords=False,
        slides=[rec])))


def test_old_memmap_store_reads_all_valid_and_appends(tmp_path):
    grids = np.random.default_rng(8).standard_normal((3, 4, 16, 16)).astype(np.float32)
    _old_memmap_store(tmp_path / 'old', grids)
    store = open_store(str(tmp_path / 'old'))
    assert store.read_masks([2, 0]).shape == (2, 16, 16) and store.read_masks([2, 0]).all()
    assert store.provenance is None
    writer = open_writer(tmp_path / 'old', dtype='float32')
    mask = np.zeros((2, 16, 16), bool)
    mask[:, 3, 4] = True
    writer.add_slide('new', grids[:2], masks=mask)
    writer.finalize()
    store = open_store(str(tmp_path / 'old'))
    np.testing.assert_array_equal(store.read_masks([0, 1, 2]), np.ones((3, 16, 16), bool))
    np.testing.assert_array_equal(store.read_masks([4, 3]), mask)
    np.testing.assert_array_equal(store.read_slide(0), grids)


def test_old_redis_store_reads_all_valid_and_appends(redis_server, redis_store_uri):
    from slpd_plugin.datasets.stores import parse_redis_uri
    grids = np.random.default_rng(9).standard_normal((3, 4, 16, 16)).astype(np.float32)
    prefix = parse_redis_uri(redis_store_uri).prefix
    rec = dict(slide_id='old', offset=0, count=3,
               sha256=hashlib.sha256(grids.tobytes()).hexdigest())
    client = redis_server.client()
    client.set(f'{prefix}:grids:0:0', grids.tobytes())
    client.set(f'{prefix}:coords:0', np.full((3, 2), -1, '<i8').tobytes())
    client.rpush(f'{prefix}:journal', json.dumps(dict(
        record=rec, channels=4, dtype='float32', has_coords=False, blob_regions=100)))
    client.set(f'{prefix}:manifest', json.dumps(dict(
        format='slpd-redis', version=1, complete=True, channels=4, dtype='float32',
        grid_size=16, blob_regions=100, has_coords=False, num_regions=3, slides=[rec])))
    assert open_store(redis_store_uri).read_masks([1, 2]).all()
    writer = open_writer(redis_store_uri, dtype='float32')
    mask = np.zeros((1, 16, 16), bool)
    mask[0, 0, 1] = True
    writer.add_slide('new', grids[:1], masks=mask)
    writer.finalize()
    store = open_store(redis_store_uri)
    np.testing.assert_array_equal(store.read_masks([3, 0]),
                                  np.stack([mask[0], np.ones((16, 16), bool)]))
    np.testing.assert_array_equal(store.read_slide(0), grids)


def test_cli_trident_and_error_line(tmp_path, load_tool, capsys):
    tool = load_tool('ingest')
    coords, feats = lattice_slide(np.random.default_rng(10), 20, 20, 256, 8)
    write_trident(tmp_path / 'src' / 's.h5', coords, feats)
    assert tool.main([str(tmp_path / 'src'), '--format', 'trident', '--store',
                      str(tmp_path / 'st'), '--dtype', 'float32', '--region-size', '8',
                      '--min-tissue', '0.5', '--no-progress']) == 0
    assert 'wrote 1 slide(s)' in capsys.readouterr().out
    _check_slide(open_store(str(tmp_path / 'st')), 0, coords, feats, 256, 8, 0.5)
    with h5py.File(tmp_path / 'src' / 's.h5', 'a') as f:
        f['coords'].attrs['overlap'] = 32
    assert tool.main([str(tmp_path / 'src'), '--format', 'trident', '--store',
                      str(tmp_path / 'st2'), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 's.h5: patches overlap by 32 px' in err


def test_synthetic_trident_files_round_trip(tmp_path, load_tool, capsys):
    """make_synthetic.py trident writes holes and a 40x slide; ingesting them back gives
    the original grids where the masks are True and zeros elsewhere."""
    from slpd_plugin.demo.synthetic import make_synthetic_store
    make_synthetic_store(tmp_path / 'orig', num_slides=3, min_regions=2, max_regions=4,
                         channels=6, dtype='float32', progress=False)
    tool = load_tool('make_synthetic')
    assert tool.main(['trident', str(tmp_path / 'job'), '--store', str(tmp_path / 'orig'),
                      '--hole-fraction', '0.2', '--encoder', 'toy']) == 0
    sources = find_patch_sources(str(tmp_path / 'job'), 'trident')
    with h5py.File(sources[0].path, 'r') as f:
        assert f['coords'].attrs['patch_size_level0'] == 512  # the 40x slide
    ingest_patches(sources, str(tmp_path / 'back'), PatchOptions('trident', min_tissue=0),
                   dtype='float32')
    orig, back = open_store(str(tmp_path / 'orig')), open_store(str(tmp_path / 'back'))
    assert back.provenance['encoder'] == 'toy' and back.num_regions == orig.num_regions
    masks = back.read_masks(np.arange(back.num_regions))
    assert 0.6 < masks.mean() < 0.95
    for s, rec in enumerate(orig.slides):
        b = back.slide_ids.index(rec.slide_id)
        want = orig.read_slide(s) * back.read_masks(
            np.arange(back.slides[b].offset, back.slides[b].offset + rec.count))[:, None]
        np.testing.assert_array_equal(back.read_slide(b), want)


def test_cli_clam_pieces_split_by_default_and_refused_on_request(tmp_path, load_tool, capsys):
    tool = load_tool('ingest')
    coords, feats, _, _ = _two_pieces(np.random.default_rng(11))
    write_clam(tmp_path / 'clam', 's', coords, feats)
    common = [str(tmp_path / 'clam'), '--format', 'clam', '--patch-size-level0', '512',
              '--no-progress']
    assert tool.main([*common, '--store', str(tmp_path / 'st')]) == 0
    out = capsys.readouterr().out
    assert "1 slide(s) cut piece by piece, their patches on shifted lattices (e.g. 's')" in out
    inspect = load_tool('inspect_store')
    assert inspect.main([str(tmp_path / 'st')]) == 0
    assert '[2 pieces]' in capsys.readouterr().out
    assert tool.main([*common, '--store', str(tmp_path / 'st2'),
                      '--shifted-lattices', 'refuse']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'shifted lattices' in err and 's.h5' in err
    assert not (tmp_path / 'st2' / 'manifest.json').exists()
