"""Fast checks of the pieces behind tools/visualize.py (no training)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from slpd_plugin.prototypes import build_bank
from slpd_plugin.visualization import (
    categorical_colors,
    grid_positions,
    neighbor_colors,
    neighbor_edges,
    project_2d,
    region_positions,
    resolve_slide,
    spread_slides,
)
from slpd_plugin.visualization.neighbor_graph import same_label_fraction, short_names
from slpd_plugin.visualization.slides import SlideLabels


@pytest.mark.parametrize('matched, expected', [
    ([1, 0], [1, 0]),             # a permutation: each prototype takes its match's colour
    ([0, 0, 2], [0, 3, 2]),       # prototype 1 of the neighbour is nobody's match
    ([2, -1, 2], [3, 4, 0]),      # two prototypes share a match: the first one's colour
])
def test_neighbor_colors__matched_prototypes_share_colours(matched, expected):
    colors = neighbor_colors(np.array(matched), len(matched))
    assert colors.tolist() == expected
    for k, j in enumerate(matched):
        if j >= 0 and matched.index(j) == k:
            assert colors[j] == k


def test_region_positions__coords_or_grid():
    coords = np.array([[0, 0], [4096, 0], [8192, 4096]])
    positions, cell, real = region_positions(3, coords)
    assert real and cell == 4096 and positions.tolist() == coords.tolist()
    positions, cell, real = region_positions(3, np.array([[0, 0], [-1, -1], [4096, 0]]))
    assert not real and cell == 1.0  # any unknown coordinate: grid in storage order
    assert positions.tolist() == grid_positions(3).tolist() == [[0, 0], [1, 0], [0, 1]]
    assert region_positions(5)[0].shape == (5, 2)


def test_resolve_slide():
    ids = ['TCGA-A', 'TCGA-B', '0']
    assert resolve_slide('TCGA-B', ids, 3) == 1
    assert resolve_slide('TCGA-B.svs', ids, 3) == 1
    assert resolve_slide('1', ids, 3) == 1
    assert resolve_slide('0', ids, 3) == 2  # an exact id wins over an index
    assert resolve_slide('2', None, 3) == 2
    with pytest.raises(ValueError, match=r"unknown slide 'nope': expected a slide id of the "
                                         r"store \(e.g. 'TCGA-A'\) or an index in \[0, 3\)"):
        resolve_slide('nope', ids, 3)
    with pytest.raises(ValueError, match=r'index in \[0, 3\)'):
        resolve_slide('3', None, 3)


def test_spread_slides():
    assert spread_slides(np.arange(10), None).tolist() == list(range(10))
    assert spread_slides(np.arange(10), 3).tolist() == [0, 4, 9]
    assert spread_slides(np.array([2, 5]), 8).tolist() == [2, 5]


def test_project_2d():
    x = np.random.default_rng(0).standard_normal((20, 5)) * [5, 3, 1, 0.5, 0.1] + 7
    # reference: the centred points on their two leading right singular vectors
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    got = project_2d(x)
    signs = np.sign((got * expected).sum(0))  # each component is defined up to its sign
    np.testing.assert_allclose(got * signs, expected, atol=1e-8)
    np.testing.assert_allclose(project_2d(x[:, :1])[:, 1], 0)  # one feature: 2nd dim empty
    assert project_2d(x[:1]).tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match='one of'):
        project_2d(x, 'tsne')


def test_categorical_colors():
    for n in (0, 3, 10, 15, 40):
        colors = categorical_colors(n)
        assert colors.shape == (n, 4)
        assert len(np.unique(colors, axis=0)) == n


def test_neighbor_edges_and_label_agreement():
    embeddings = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    slide_index = torch.arange(4).repeat_interleave(10)
    bank = build_bank(embeddings, slide_index, num_clusters=2, min_regions=5, num_slides=4)
    edges = neighbor_edges(bank, np.arange(4))
    assert [(a, b) for a, b, _ in edges] == [(s, int(bank.neighbors[s, 0])) for s in range(4)]
    labels = SlideLabels(np.array([0, 0, 1, -1]), ['a', 'b'], 'label')
    known = [(a, b) for a, b, _ in edges if labels.labels[a] >= 0 and labels.labels[b] >= 0]
    expected = np.mean([labels.labels[a] == labels.labels[b] for a, b in known])
    assert same_label_fraction(edges, labels) == pytest.approx(expected)


def test_short_names__drop_the_shared_end():
    assert short_names(['TCGA-A7-A0CE-01Z-00-DX1', 'TCGA-B6-A0I2-01Z-00-DX1']) == [
        'TCGA-A7-A0CE', 'TCGA-B6-A0I2']
    assert short_names(['synthetic-00001', 'synthetic-00011']) == [
        'synthetic-00001', 'synthetic-00011']  # a shared digit is not a separator
    assert short_names(['a' * 30]) == ['a' * 20]
