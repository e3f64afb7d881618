"""tools/run_demo.py --quick end to end: benchmark, two trainings, extraction, report."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.warm import python_exe

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.mark.slow
def test_quick_demo_writes_report_and_figures(tmp_path):
    out = tmp_path / 'demo'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    started = time.monotonic()
    done = subprocess.run([python_exe(), str(REPO_ROOT / 'tools' / 'run_demo.py'),
                           '--quick', '--out', str(out)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = (out / 'report.md').read_text()
    for text in ('| DINO-4K |', '| SLPD |', '| composition (oracle) |',
                 'no claim about a difference', '## Wall time', '## Survival',
                 '| SLPD | ', 'Cox val c-index'):
        assert text in report
    for name in ('loss_curves.png', 'auc_bars.png', 'prototype_map.png', 'phenotype_map.png',
                 'fewshot/fewshot.png'):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
        assert f']({name})' in report
    results = json.loads((out / 'demo_results.json').read_text())['test_auc_per_seed_per_fold']
    for protocol in ('knn', 'linear'):
        for method in ('DINO-4K', 'SLPD'):
            (folds,) = results[protocol][method]  # one seed
            assert len(folds) == 3 and all(a is None or 0 <= a <= 1 for a in folds)
    assert (out / 'seed0' / 'SLPD' / 'emb' / 'slide_embeddings.npz').is_file()
    # the wall-time rows are disjoint parts of the run: together no longer than the run
    timings = json.loads((out / 'demo_results.json').read_text())['timings']
    assert 0 < sum(timings.values()) <= elapsed
