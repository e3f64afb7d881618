"""The training-step and epoch benchmarks run end to end at toy sizes.

They are not timed here (timings belong to ``benchmarks/``); these tests check that
each side does the same work and that every row carries its memory figures.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.warm import python_exe

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run(script: str, out: Path, *args: str) -> dict:
    """Run a benchmark script (in a warm interpreter: its probes in subprocesses too)."""
    proc = subprocess.run([python_exe(), str(ROOT / 'benchmarks' / script), '--out',
                           str(out), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_train_step_rows_have_throughput_memory_and_sweep(tmp_path):
    # No bf16 path: CPUs without bf16 matmuls take ~30 s per step of it.
    result = run('train_step.py', tmp_path / 'ts.json', '--device', 'cpu', '--paths',
                 'naive', 'ours', '--steps', '1', '--warmup', '0', '--batch-size', '4',
                 '--out-dim', '256', '--depth', '1', '--sweep', '2', '--sweep-paths', 'naive',
                 'ours')
    rows = {r['path']: r for r in result['rows']}
    assert set(rows) == {'naive', 'ours'}
    assert rows['ours']['autocast'] is None
    for r in rows.values():
        assert r['regions_per_s'] > 0 and 0 <= r['data_share'] < 1
        assert r['peak_rss_mb'] > 100  # torch alone is larger than this
        assert r['peak_device_mb'] is None  # CPU run
    # The sweep holds every (path, batch) pair, the main batch size included.
    assert {(r['path'], r['batch_size']) for r in result['batch_sweep']} == {
        (p, b) for p in ('naive', 'ours') for b in (2, 4)}
    # Masked vs unmasked on the same batch; the loader reads masks only with holes.
    steps = {r['variant']: r for r in result['masks']['step']}
    assert set(steps) == {'unmasked', 'masked'} and steps['masked']['cells_present'] < 1
    assert all(r['step_s'] > 0 for r in steps.values())
    assert [r['masks_read'] for r in result['masks']['loader']] == [False, True]


@pytest.mark.skipif(shutil.which('redis-server') is None, reason='needs redis-server')
def test_epoch_sides_do_the_same_work(tmp_path):
    result = run('epoch.py', tmp_path / 'epoch.json', '--device', 'cpu', '--slides', '3',
                 '--min-regions', '8', '--max-regions', '8', '--batch-size', '8',
                 '--out-dim', '256', '--depth', '1', '--repeats', '1', '--sides', 'ours',
                 'original')
    rows = {r['side']: r for r in result['rows']}
    assert result['regions'] == 24
    # Same number of optimizer steps: both drop the last incomplete batch.
    assert rows['ours']['steps'] == rows['original']['steps'] == 3
    for r in rows.values():
        assert r['seconds'] > 0 and r['peak_rss_mb'] > 100
    assert rows['original']['speedup'] == pytest.approx(1.0)


def test_ingest_patches_rows_have_rate_and_memory(tmp_path):
    result = run('ingest_patches.py', tmp_path / 'ip.json', '--sizes', '3000', '--dim', '512',
                 '--tmp', str(tmp_path))
    (row,) = result['rows']
    assert row['patches'] == 3000 and row['regions'] > 0 and row['dim'] == 512
    assert row['patches_per_s'] == pytest.approx(row['patches'] / row['seconds'])
    features_mb = 3000 * 512 * 4 / 2**20  # float32 in the file
    assert features_mb < row['file_mb'] < 2 * features_mb
    # every feature is read at least once, in float32: the peak cannot stay below that
    assert row['peak_rss_mb'] > 0.5 * features_mb, row


def test_eval_protocols_runs_every_protocol_and_checks_its_budget(tmp_path):
    children_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'eval_protocols.py'),
                           '--quick', '--out', str(tmp_path / 'ev.json')], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (used.ru_utime + used.ru_stime) - (children_cpu.ru_utime + children_cpu.ru_stime)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / 'ev.json').read_text())
    assert result['num_slides'] == 40 and result['mil_epochs'] == 1
    assert [r['protocol'] for r in result['rows']] == [
        'knn', 'linear', 'mil', 'fewshot', 'retrieval', 'survival cox', 'survival mil']
    # The rows' times (0.1 s rounding each) fit in what the OS and this test measured
    # for the whole process, and the protocols are most of that process's CPU time.
    slack = 0.05 * len(result['rows'])
    rows_cpu = sum(r['cpu_s'] for r in result['rows'])
    assert 0.3 * cpu < rows_cpu <= cpu + slack, (rows_cpu, cpu)
    assert 0 < sum(r['wall_s'] for r in result['rows']) <= wall + slack
    assert result['total_cpu_min'] == pytest.approx(rows_cpu / 60, abs=0.01)
    assert result['within_budget'] == (rows_cpu / 60 <= result['budget_cpu_min'])
    # read by the benchmark just before it exited: at most one 5-s kernel update ago
    assert result['load_average_1min']['end'] == pytest.approx(load_after, abs=1.0)
    assert ('PASS' if result['within_budget'] else 'FAIL') in proc.stdout


def test_masking_rows_compare_with_lightly_and_stay_inside_the_tissue(tmp_path):
    result = run('masking.py', tmp_path / 'masking.json', '--quick')
    rows = {r['path']: r for r in result['rows']}
    assert set(rows) == {'lightly', 'ours full', 'ours holes'}
    assert all(r['ms'] > 0 and 0 < r['masked_share'] < 0.5 for r in rows.values())
    assert rows['ours holes']['outside_tissue'] == 0


def test_slide_encoding_rows_compare_dense_and_chunked(tmp_path):
    result = run('slide_encoding.py', tmp_path / 'slide.json', '--sizes', '300', '1200',
                 '--depth', '1', '--channels', '16', '--chunk-size', '128',
                 '--dense-max-gb', '0.05')
    small, large = result['rows']
    assert small['dense_ran'] and not large['dense_ran']  # refused above the limit
    assert large['dense_would_need_gb'] > 0.05
    assert small['max_abs_diff'] < 1e-4  # the same embedding both ways
    assert small['dense_peak_mb'] > 0 and large['chunked_peak_mb'] > 0
