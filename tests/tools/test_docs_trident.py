"""docs/getting-started.md, "From TRIDENT features", works as written: its ```bash blocks
run in one shell from the repository root with WORK in a temp folder."""
from __future__ import annotations

import math
import re

import pytest

from tests.utils import logged_scalars

from .doc_blocks import TRIDENT, bash_blocks, run_blocks, sections


@pytest.mark.slow
@pytest.mark.timeout(600)  # about a minute on 2 idle cores
def test_from_trident_features_runs_as_written(tmp_path):
    """Synthetic TRIDENT files with holes and a 40x slide -> ingest -> train with masks
    -> extract -> KNN, as the section reads."""
    work = tmp_path / 'work'
    text = sections()[TRIDENT]
    for tool in ('make_synthetic', 'ingest', 'inspect_store', 'train', 'extract_embeddings',
                 'eval_slides'):
        assert f'tools/{tool}.py' in text, tool
    proc = run_blocks(bash_blocks(text), work, timeout=500)
    assert 'status: complete' in proc.stdout and 'encoder synthetic' in proc.stdout
    rows = re.findall(r'^  (SYN-\S+)\s+\d+\s+\d+\s+([\d.]+)\s+(\d+)\s', proc.stdout, flags=re.M)
    assert len(rows) == 12  # every slide ingested
    assert sorted(int(stride) for _, _, stride in rows) == [256] * 11 + [512]  # one 40x
    assert all(float(tissue) < 1 for _, tissue, _ in rows)  # the regions have holes
    rows = [r for r in logged_scalars(work / 'trident_train') if 'loss' in r]
    assert rows and all(math.isfinite(r['loss']) for r in rows)
    assert any('loss_intra' in r for r in rows)  # the prototype terms ran on masked grids
    assert len(list((work / 'trident_embeddings').glob('*.pt'))) == 12
    assert (work / 'trident_knn' / 'summary.csv').is_file()
