"""Conversion through the real tool: killed midway and resumed, four concurrent shard
writers against one writer (byte for byte), a TRIDENT job folder without --format."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from patch_files import lattice_slide, write_trident

from slpd_plugin.datasets.lattice import LatticeStore
from slpd_plugin.datasets.stores import open_store
from tests.utils import load_tool

ROOT = Path(__file__).resolve().parents[2]
JOB = '20x_256px_0px_overlap'


def make_job(root: Path, slides: int, cols: int = 30, rows: int = 25, dim: int = 16) -> Path:
    rng = np.random.default_rng(0)
    folder = root / 'job' / JOB / 'features_uni_v1'
    for k in range(slides):
        coords, feats = lattice_slide(rng, cols + k, rows, 256, dim)
        write_trident(folder / f's{k:02d}.h5', coords, feats)
    return root / 'job'


def tool(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, str(ROOT / 'tools' / 'convert_lattice.py'),
                             *args, '--no-progress'], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return out


def same_slides(a: LatticeStore, b: LatticeStore) -> None:
    assert a.slide_ids == b.slide_ids and a.num_slides > 0
    for s in range(a.num_slides):
        ra, rb = a.slides[s], b.slides[s]
        assert (ra.sha256, ra.layout_sha256, ra.count, ra.stride) == \
            (rb.sha256, rb.layout_sha256, rb.count, rb.stride)
        assert np.asarray(a.features(s)).tobytes() == np.asarray(b.features(s)).tobytes()
        assert np.asarray(a.cells(s)).tobytes() == np.asarray(b.cells(s)).tobytes()
        for k in range(len(ra.pieces)):
            assert a.index_map(s, k).tobytes() == b.index_map(s, k).tobytes()


@pytest.mark.slow
def test_four_concurrent_shard_writers_equal_one_writer(tmp_path):
    job = make_job(tmp_path, 9)
    finished(tool(str(job), '--store', str(tmp_path / 'one')))
    shards = [tool(str(job), '--store', str(tmp_path / 'four'), '--shard', f'{i}/4')
              for i in range(4)]
    outs = [finished(p) for p in shards]
    assert any('shards joined' in out for out in outs)
    four = LatticeStore(tmp_path / 'four')
    assert sorted(p.name for p in (tmp_path / 'four').glob('shard-*')) == [
        f'shard-{i}-of-4' for i in range(4)]
    same_slides(LatticeStore(tmp_path / 'one'), four)
    assert four.verify() == []
    out = finished(tool('--store', str(tmp_path / 'four'), '--join', '4', '--verify'))
    assert 'verified 9 slides' in out


@pytest.mark.slow
def test_conversion_killed_midway_resumes(tmp_path):
    job = make_job(tmp_path, 6, cols=120, rows=100, dim=64)  # ~8,400 patches a slide
    store = tmp_path / 'lat'
    proc = tool(str(job), '--store', str(store), '--chunk-mb', '0.05', '--dtype', 'float32')
    journal = store / 'journal.jsonl'
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count('\n') >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, 'the conversion finished before it could be killed'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = journal.read_text().count('\n')
    assert 2 <= committed < 6 and not (store / 'manifest.json').exists()
    out = finished(tool(str(job), '--store', str(store), '--dtype', 'float32', '--verify'))
    assert f'{committed} already in the store' in out and 'verified 6 slides' in out
    finished(tool(str(job), '--store', str(tmp_path / 'fresh'), '--dtype', 'float32'))
    same_slides(LatticeStore(tmp_path / 'fresh'), LatticeStore(store))
    assert (store / 'features.bin').read_bytes() == \
        (tmp_path / 'fresh' / 'features.bin').read_bytes()


def test_trident_job_ingests_without_format(tmp_path, capsys):
    job = make_job(tmp_path, 2)
    ingest = load_tool('ingest')
    assert ingest.main([str(job), '--store', str(tmp_path / 'regions')]) == 0
    assert open_store(str(tmp_path / 'regions')).provenance['format'] == 'trident'
    convert = load_tool('convert_lattice')
    assert convert.main([str(job), '--store', str(tmp_path / 'lat'), '--no-progress']) == 0
    assert 'trident: 2 slide(s) converted' in capsys.readouterr().out
    assert LatticeStore(tmp_path / 'lat').slide_ids == ['s00', 's01']
