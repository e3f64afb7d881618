"""tools/visualize.py on checkpoints whose bank was built on random embeddings (fast),
and its errors. The real-training checks are in test_trained_run.py."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from slpd_plugin.datasets import open_store
from slpd_plugin.visualization import categorical_colors, neighbor_colors

from .conftest import fake_checkpoint, has_colour, read_png, write_labels


@pytest.fixture
def coords_ckpt(coords_store, tmp_path):
    return fake_checkpoint(coords_store, tmp_path / 'coords.pth', num_clusters=3,
                           min_regions=6)


def test_map__regions_at_coords_with_matched_colours(tools, coords_ckpt, coords_store,
                                                     tmp_path, capsys):
    out = tmp_path / 'pics' / 'map.png'
    assert tools['visualize'].main(['map', str(coords_ckpt), '--slide', 'slide-0',
                                    '--out', str(out)]) == 0
    assert 'slide-0 beside' in capsys.readouterr().out
    image = read_png(out)
    bank = torch.load(coords_ckpt, weights_only=True)['prototype_bank']
    palette = categorical_colors(6)
    # Every prototype of slide 0 that has regions is drawn in its own colour, and the
    # neighbour's prototypes use the colours of the prototypes matched to them.
    used = {int(a) for a in bank['assignments'][:9]}
    colors = neighbor_colors(bank['matched'][0, :, 0].numpy(), 3)
    neighbor = open_store(coords_store).slides[int(bank['neighbors'][0, 0])]
    used_nb = {int(colors[a]) for a in bank['assignments'][neighbor.offset:
                                                           neighbor.offset + neighbor.count]}
    for c in used | used_nb:
        assert has_colour(image, palette[c]), f'colour {c} not drawn'


def test_map__grid_without_coords_and_two_neighbours(tools, small_store, tmp_path, capsys):
    ckpt = fake_checkpoint(small_store, tmp_path / 'small.pth', min_regions=3,
                           num_neighbors=2)
    out = tmp_path / 'map.png'
    assert tools['visualize'].main(['map', str(ckpt), '--slide', '0', '--out', str(out)]) == 0
    assert capsys.readouterr().out.count('synthetic-') == 3  # the slide and 2 neighbours
    image = read_png(out)
    assert image.shape[1] >= 2.5 * image.shape[0]  # three panels side by side


@pytest.mark.parametrize('with_labels', [False, True])
def test_graph(tools, small_store, tmp_path, capsys, with_labels):
    ckpt = fake_checkpoint(small_store, tmp_path / 'small.pth', min_regions=3)
    out = tmp_path / 'graph.png'
    args = ['graph', str(ckpt), '--out', str(out)]
    if with_labels:
        args += ['--labels', str(write_labels(small_store, tmp_path / 'labels.csv')),
                 '--label-col', 'phenotype']
    assert tools['visualize'].main(args) == 0
    printed = capsys.readouterr().out
    valid = int(torch.load(ckpt, weights_only=True)['prototype_bank']['valid'].sum())
    assert f'{valid} slides, {valid} edges' in printed
    assert ('of edges join slides of the same phenotype' in printed) == with_labels
    read_png(out)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('visualize.py'), err
    assert ': error: ' in err, err
    return err


def test_errors__bad_arguments_exit_2(tools, small_store, tmp_path, capsys):
    ckpt = fake_checkpoint(small_store, tmp_path / 'small.pth', min_regions=3)
    main = tools['visualize'].main
    cases = [
        (['map', str(tmp_path / 'missing.pth'), '--slide', '0', '--out', 'x.png'],
         'checkpoint not found'),
        (['map', str(ckpt), '--slide', '0', '--out', str(tmp_path / 'x.jpg')],
         'expected a .png file name'),
        (['graph', str(ckpt), '--out', str(tmp_path / 'g.png'), '--slides', '0'],
         '--slides must be >= 1'),
        (['graph', str(ckpt), '--out', str(tmp_path / 'g.png'), '--labels', 'nope.csv'],
         '--labels: file not found'),
        (['map', str(ckpt), '--out', str(tmp_path / 'x.png')], '--slide'),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in _one_line_error(capsys)


def test_errors__bad_input_exit_1(tools, small_store, coords_store, tmp_path, capsys):
    ckpt = fake_checkpoint(small_store, tmp_path / 'small.pth', min_regions=3)
    no_bank = tmp_path / 'no_bank.pth'
    torch.save(dict(state_dict={}, meta=dict(cfg='x = 1\n')), no_bank)
    not_ckpt = tmp_path / 'notes.pth'
    not_ckpt.write_text('not a checkpoint\n')
    out = str(tmp_path / 'x.png')
    main = tools['visualize'].main
    cases = [
        (['map', str(no_bank), '--slide', '0', '--out', out], 'has no prototype bank'),
        (['map', str(not_ckpt), '--slide', '0', '--out', out],
         'not loadable weights-only with torch.load(weights_only=True)'),
        (['map', str(ckpt), '--slide', 'synthetic-99999', '--out', out],
         "unknown slide 'synthetic-99999': expected a slide id of the store "
         "(e.g. 'synthetic-00000') or an index in [0, 6)"),
        (['map', str(ckpt), '--slide', '0', '--store', str(coords_store), '--out', out],
         'pass --store with the store the model was trained on'),
        (['graph', str(ckpt), '--out', out, '--labels', str(write_labels(
            small_store, tmp_path / 'l.csv')), '--label-col', 'grade'],
         "column 'grade' not in l.csv"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        assert message in _one_line_error(capsys)


def test_errors__slide_without_prototypes(tools, small_store, tmp_path, capsys):
    counts = [s.count for s in open_store(small_store).slides]
    ckpt = fake_checkpoint(small_store, tmp_path / 'k.pth', min_regions=max(counts))
    small = counts.index(min(counts))
    assert min(counts) < max(counts)
    assert tools['visualize'].main(['map', str(ckpt), '--slide', str(small), '--out',
                                    str(tmp_path / 'm.png')]) == 1
    assert f'fewer than min_regions={max(counts)}' in _one_line_error(capsys)


def test_errors__umap_missing(tools, small_store, tmp_path, capsys):
    if importlib.util.find_spec('umap') is not None:
        pytest.skip('umap-learn is installed')
    ckpt = fake_checkpoint(small_store, tmp_path / 'small.pth', min_regions=3)
    assert tools['visualize'].main(['projection', str(ckpt), '--out',
                                    str(tmp_path / 'p.png'), '--method', 'umap']) == 2
    assert 'needs the umap-learn package' in _one_line_error(capsys)
