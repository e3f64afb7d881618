"""Memory stays bounded: no per-epoch growth of a real training process (tiny config;
``benchmarks/memory.py`` measures the CPU demo the same way, see docs/reliability.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.reliability.helpers import child_env
from tests.utils import ROOT, TINY_CONFIG

pytestmark = pytest.mark.slow


def test_resident_memory_does_not_grow_from_epoch_to_epoch(tmp_path):
    out = tmp_path / 'memory.json'
    proc = subprocess.run(
        [sys.executable, 'benchmarks/memory.py', '--config', str(TINY_CONFIG), '--epochs', '8',
         '--work-dir', str(tmp_path / 'work'), '--out', str(out), '--interval', '0.2',
         '--cfg-options', 'train_dataloader.num_workers=2',
         'train_dataloader.persistent_workers=True'],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    peaks = result['peaks_mb']
    assert sorted(map(int, peaks)) == list(range(1, 9))  # every epoch sampled
    assert result['bounded'] and peaks['8']['main'] <= result['bound_mb']
    assert all(p['total'] > p['main'] for p in peaks.values())  # the workers were counted
