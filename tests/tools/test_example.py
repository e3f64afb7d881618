"""examples/plain_pytorch_slpd.py: SLPD without mmengine's Runner trains for real, run
as docs/getting-started.md (section 7) writes the command."""
from __future__ import annotations

import math
import re

import pytest

from .doc_blocks import EXAMPLE, bash_blocks, run_blocks, sections

pytestmark = pytest.mark.slow


def test_plain_pytorch_example_as_the_doc_runs_it(tmp_path):
    blocks = bash_blocks(sections()[EXAMPLE])
    assert blocks and all('examples/plain_pytorch_slpd.py' in b for b in blocks)
    proc = run_blocks(blocks, tmp_path / 'work', timeout=600)
    assert (tmp_path / 'work' / 'example_store').is_dir()  # SLPD_EXAMPLE_STORE was used
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
