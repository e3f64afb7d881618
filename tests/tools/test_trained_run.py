"""The tools on a real tiny SLPD run (3 epochs, prototypes from epoch 1)."""
from __future__ import annotations

import re

import pytest
import torch

from slpd_plugin.visualization import categorical_colors

from .conftest import has_colour, read_png
from .test_inspect_bank import check_inspect_bank

pytestmark = pytest.mark.slow


def test_map(tools, trained, tmp_path, capsys):
    out = tmp_path / 'map.png'
    assert tools['visualize'].main(['map', str(trained['ckpt']), '--slide', '2',
                                    '--out', str(out)]) == 0
    assert re.search(r'slide synthetic-00002 beside synthetic-\d{5}', capsys.readouterr().out)
    image = read_png(out, min_size=(400, 700))  # two panels side by side
    bank = torch.load(trained['ckpt'], weights_only=True)['prototype_bank']
    largest = int(bank['cluster_sizes'][2].argmax())
    assert has_colour(image, categorical_colors(largest + 1)[largest])


def test_projection(tools, trained, labels_csv, tmp_path, capsys):
    out = tmp_path / 'projection.png'
    assert tools['visualize'].main(['projection', str(trained['ckpt']), '--out', str(out),
                                    '--slides', '3', '--labels', str(labels_csv),
                                    '--label-col', 'phenotype']) == 0
    printed = capsys.readouterr().out
    assert re.search(r'wrote .*: \d+ regions of 3 slide\(s\), prototypes of \d+ slides',
                     printed)
    read_png(out, min_size=(500, 1000))


def test_graph(tools, trained, labels_csv, tmp_path, capsys):
    out = tmp_path / 'graph.png'
    assert tools['visualize'].main(['graph', str(trained['ckpt']), '--out', str(out),
                                    '--labels', str(labels_csv), '--label-col',
                                    'phenotype']) == 0
    bank = torch.load(trained['ckpt'], weights_only=True)['prototype_bank']
    valid = int(bank['valid'].sum())
    assert f'{valid} slides, {valid} edges' in capsys.readouterr().out
    read_png(out)


def test_inspect_bank(tools, trained, capsys):
    check_inspect_bank(tools['inspect_bank'].main, trained['ckpt'], trained['store'], 3,
                       capsys)


def test_warmup_checkpoint_has_no_bank(tools, trained, tmp_path, capsys):
    assert tools['visualize'].main(['graph', str(trained['warmup_ckpt']), '--out',
                                    str(tmp_path / 'g.png')]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'has no prototype bank' in err
    assert not (tmp_path / 'g.png').exists()


def test_inspect_store_of_the_run(tools, trained, capsys):
    assert tools['inspect_store'].main([str(trained['store'])]) == 0
    ckpt = torch.load(trained['ckpt'], weights_only=True)
    meta = ckpt['meta']['dataset_meta']
    text = capsys.readouterr().out.splitlines()
    assert f'slides: {meta["num_slides"]}' in text
    assert f'regions: {meta["num_regions"]}' in text
    assert f'channels (C): {meta["channels"]}' in text
