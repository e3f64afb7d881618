"""``slide_cells``: every patch of a slide at its cell of one lattice, in feature-row order,
from a converted store and from files read in place, shifted CLAM pieces included."""
from __future__ import annotations

import numpy as np
import pytest
from patch_files import lattice_slide, write_clam, write_trident

from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources
from slpd_plugin.datasets.lattice import convert, open_lattice, slide_cells

JOB = '20x_256px_0px_overlap'


def expected_cells(coords: np.ndarray, stride: int) -> np.ndarray:
    """(row, col) = level-0 (y, x) // stride, counted from the smallest."""
    cells = (coords // stride)[:, ::-1]
    return cells - cells.min(0)


def from_origin(cells: np.ndarray) -> np.ndarray:
    return cells - cells.min(0)


@pytest.mark.parametrize('converted', [False, True])
def test_trident_cells_follow_the_coordinates(tmp_path, converted):
    rng = np.random.default_rng(0)
    coords, feats = lattice_slide(rng, 30, 17, 512, 4, keep=0.6, phase=(256, 100))
    write_trident(tmp_path / 'job' / JOB / 'features_uni_v1' / 's1.h5', coords, feats,
                  level0_mag=40)
    location = tmp_path / 'job'
    if converted:
        convert(find_patch_sources(str(location), 'trident'), tmp_path / 'lat',
                PatchOptions('trident'), dtype='float32')
        location = tmp_path / 'lat'
    source = open_lattice(str(location))
    cells = slide_cells(source, 0)
    assert cells.dtype == np.int64 and cells.shape == (len(coords), 2)
    np.testing.assert_array_equal(from_origin(cells), expected_cells(coords, 512))
    np.testing.assert_array_equal(source.features(0), feats)  # rows in file order


def test_clam_pieces_on_shifted_lattices_share_the_first_ones_cells(tmp_path):
    rng = np.random.default_rng(3)
    a, fa = lattice_slide(rng, 12, 10, 512, 4, keep=0.9, phase=(100, 40))
    b, fb = lattice_slide(rng, 7, 9, 512, 4, keep=0.9, phase=(300, 7))
    b = b + np.array([14 * 512, 3 * 512])
    coords, feats = np.concatenate([a, b]), np.concatenate([fa, fb])
    write_clam(tmp_path / 'clam', 's1', coords, feats,
               patches=dict(patch_size=256, patch_level=0, downsample=[2.0, 2.0]))
    source = open_lattice(str(tmp_path / 'clam'))
    assert len(source.slides[0].pieces) == 2
    # phases differ by less than half a stride: every patch rounds to its own cell
    np.testing.assert_array_equal(from_origin(slide_cells(source, 0)),
                                  expected_cells(coords, 512))
