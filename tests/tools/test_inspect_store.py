"""tools/inspect_store.py: counts, C, dtype, size and completeness of a store."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from slpd_plugin.datasets import open_store, open_writer
from tests.utils import ROOT
from tests.warm import python_exe


def test_complete_store(tools, small_store, capsys):
    store = open_store(small_store)
    counts = [s.count for s in store.slides]
    assert tools['inspect_store'].main([str(small_store), '--json']) == 0
    report = json.loads(capsys.readouterr().out)
    assert report['complete'] is True
    assert (report['num_slides'], report['num_regions']) == (store.num_slides, sum(counts))
    assert (report['channels'], report['dtype'], report['has_coords']) == (8, 'float16', False)
    assert [s['count'] for s in report['slides']] == counts
    assert (report['count_min'], report['count_max']) == (min(counts), max(counts))
    assert report['data_bytes'] == sum(counts) * 8 * 16 * 16 * 2
    assert report['disk_bytes'] == sum(f.stat().st_size for f in small_store.iterdir())

    assert tools['inspect_store'].main([str(small_store)]) == 0
    text = capsys.readouterr().out
    for line in ('status: complete', f'slides: {store.num_slides}',
                 f'regions: {sum(counts)}', 'channels (C): 8', 'dtype: float16'):
        assert line in text.splitlines(), line
    for rec in store.slides:
        assert f'  {rec.slide_id}  {rec.count:>7}  {rec.offset:>8}' in text


def test_coords_store(tools, coords_store, capsys):
    assert tools['inspect_store'].main([str(coords_store)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert 'coords: yes' in text and 'dtype: float32' in text and 'slides: 4' in text


def test_incomplete_store__reported_not_raised(tools, tmp_path, capsys):
    path = tmp_path / 'partial'
    writer = open_writer(path, channels=4)
    for i, count in enumerate((3, 5)):
        writer.add_slide(f's{i}', np.zeros((count, 4, 16, 16), np.float32))
    # no finalize(): journal.jsonl, no manifest.json -- an interrupted ingest
    assert tools['inspect_store'].main([str(path)]) == 1
    out, err = capsys.readouterr()
    assert 'status: INCOMPLETE: an ingest was interrupted after 2 committed slide(s)' in out
    assert 'regions: 8' in out.splitlines()
    assert err.count('\n') == 1 and 'is incomplete' in err and '2 committed' in err


def test_not_a_store(tools, tmp_path, capsys):
    (tmp_path / 'empty').mkdir()
    assert tools['inspect_store'].main([str(tmp_path / 'empty')]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'is incomplete: no manifest.json' in err
    assert tools['inspect_store'].main([str(tmp_path / 'missing')]) == 2
    assert capsys.readouterr().err.startswith('inspect_store.py: error: no store folder at ')


def test_subprocess__one_line_and_status(tmp_path):
    proc = subprocess.run([python_exe(), str(ROOT / 'tools' / 'inspect_store.py'),
                           str(tmp_path / 'missing')], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.count('\n') == 1 and 'no store folder at' in proc.stderr


def test_help_has_examples(tools, capsys):
    for name, tool in tools.items():
        with pytest.raises(SystemExit) as exit_info:
            tool.main(['--help'])
        assert exit_info.value.code == 0
        assert 'examples:' in capsys.readouterr().out, name


def test_patch_store__provenance_tissue_and_sources(tools, tmp_path, capsys):
    path = tmp_path / 'patch_store'
    writer = open_writer(path, channels=4, dtype='float32', grid_size=8)
    writer.set_provenance(dict(format='trident', encoder='uni_v1', patch_size_px=256,
                               target_magnification=20, mpp=None))
    masks = np.zeros((2, 8, 8), bool)
    masks[0, :4] = True  # half the cells
    masks[1] = True
    source = dict(file='/data/s0.h5', file_sha256='ab' * 32, stride=512)
    writer.add_slide('s0', np.zeros((2, 4, 8, 8), np.float32), masks=masks, source=source)
    writer.finalize()
    assert tools['inspect_store'].main([str(path), '--json']) == 0
    report = json.loads(capsys.readouterr().out)
    assert report['grid_size'] == 8 and report['provenance']['encoder'] == 'uni_v1'
    assert (report['tissue_mean'], report['tissue_min']) == (0.75, 0.5)
    assert report['slides'][0]['source'] == source and report['slides'][0]['tissue'] == 0.75
    assert report['data_bytes'] == 2 * 4 * 8 * 8 * 4
    assert tools['inspect_store'].main([str(path)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert ('provenance: format trident, encoder uni_v1, patch_size_px 256, '
            'target_magnification 20') in text
    assert 'tissue (cells with a patch, per region): mean 0.75, min 0.50' in text
    assert any(line.split()[:5] == ['s0', '2', '0', '0.75', '512'] and '/data/s0.h5' in line
               for line in text)
