"""examples/plain_pytorch_slpd.py: SLPD without mmengine's Runner trains for real."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from tests.utils import ROOT

pytestmark = pytest.mark.slow


def test_plain_pytorch_example(tmp_path):
    env = dict(os.environ, SLPD_EXAMPLE_STORE=str(tmp_path / 'store'), OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, str(ROOT / 'examples' / 'plain_pytorch_slpd.py')],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    epochs = {}
    for line in proc.stdout.splitlines():
        match = re.fullmatch(r'epoch (\d+): (loss .*)', line)
        if match:
            terms = dict(item.split(' ') for item in match.group(2).split(', '))
            epochs[int(match.group(1))] = {k: float(v) for k, v in terms.items()}
    assert sorted(epochs) == [0, 1, 2], proc.stdout
    assert set(epochs[0]) == {'loss', 'loss_dino'}  # warm-up epoch: plain DINO
    for epoch in (1, 2):  # after the first refresh: both prototype terms
        assert set(epochs[epoch]) == {'loss', 'loss_dino', 'loss_intra', 'loss_inter'}
    for terms in epochs.values():
        assert all(math.isfinite(v) and v > 0 for v in terms.values()), terms
        parts = sum(v for k, v in terms.items() if k != 'loss')
        assert terms['loss'] == pytest.approx(parts, rel=1e-3)
    assert re.search(r'epoch 1: bank with \d+/10 slides with prototypes', proc.stdout)
