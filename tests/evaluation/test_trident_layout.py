"""Region and slide embeddings written in TRIDENT's layout from a store made of real
TRIDENT files: the ``<mag>x_<px>px_0px_overlap/`` level, magnification attributes, the
level-0 region size from the store's geometry, and slide features that a reader written
the way Patho-Bench's ``SlideEmbeddingsDataset`` reads them accepts."""
from __future__ import annotations

import h5py
import numpy as np

from slpd_plugin.checkpoints.trident import TridentWriter
from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources, ingest_patches
from slpd_plugin.datasets.stores import open_store
from slpd_plugin.evaluation.data.embeddings import load_slide_embeddings
from tests.datasets.patch_files import lattice_slide, write_trident


def patho_bench_slide_features(path) -> np.ndarray:
    """As Patho-Bench's slide-embedding dataset reads a file: the ``features`` dataset
    with axis 0 squeezed (numpy refuses when that axis is not of size 1)."""
    with h5py.File(path, 'r') as fh:
        return np.squeeze(fh['features'][:], axis=0)


def test_trident_layout_from_a_patch_store(tmp_path):
    rng = np.random.default_rng(0)
    feats_dir = tmp_path / 'src' / '20x_256px_0px_overlap' / 'features_uni_v1'
    # a 20x slide of several regions, and a 40x slide whose patches fit one region
    for name, level0, size in (('a20x', 20, (40, 35)), ('b40x', 40, (12, 10))):
        coords, feats = lattice_slide(rng, *size, 256 * level0 // 20, 8, keep=0.9)
        write_trident(feats_dir / f'{name}.h5', coords, feats, level0_mag=level0)
    ingest_patches(find_patch_sources(str(tmp_path / 'src'), 'trident'),
                   str(tmp_path / 'store'), PatchOptions('trident'), dtype='float32')
    store = open_store(str(tmp_path / 'store'))
    assert [r.count for r in store.slides][1] == 1  # the 40x slide: one region

    writer = TridentWriter(tmp_path / 'job', 'slpd', store.provenance)
    coords = store.coords()
    written = {}
    for rec in store.slides:
        emb = rng.standard_normal((rec.count, 6)).astype(np.float32)
        writer.write(rec.slide_id, emb, coords[rec.offset:rec.offset + rec.count], rec.source)
        written[rec.slide_id] = emb

    level = tmp_path / 'job' / '20x_4096px_0px_overlap'  # 16 x 256 px at 20x
    for rec in store.slides:
        with h5py.File(level / 'features_slpd' / f'{rec.slide_id}.h5', 'r') as fh:
            attrs = dict(fh['coords'].attrs)
        level0 = {'a20x': 20, 'b40x': 40}[rec.slide_id]
        assert attrs['level0_magnification'] == level0
        assert attrs['target_magnification'] == 20
        assert attrs['patch_size'] == 16 * 256
        assert attrs['patch_size_level0'] == 16 * 256 * level0 // 20  # 8192 at 40x
        slide = patho_bench_slide_features(level / 'slide_features_slpd' / f'{rec.slide_id}.h5')
        np.testing.assert_allclose(slide, written[rec.slide_id].mean(0), rtol=1e-6)
    ours = load_slide_embeddings(level / 'slide_features_slpd', ['a20x', 'b40x'])
    np.testing.assert_allclose(ours.features, np.stack([w.mean(0) for w in written.values()]),
                               rtol=1e-6)


def test_the_patho_bench_reader_refuses_a_bare_vector(tmp_path):
    """The reader above is strict: a ``(D,)`` file (the old layout) fails in it."""
    path = tmp_path / 's.h5'
    with h5py.File(path, 'w') as fh:
        fh['features'] = np.zeros(6, np.float32)
    try:
        patho_bench_slide_features(path)
    except ValueError:
        return
    raise AssertionError('a (D,) slide-features file was accepted')
