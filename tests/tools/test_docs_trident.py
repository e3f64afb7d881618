"""docs/getting-started.md, "From TRIDENT features", works as written: its ```bash blocks
run in one shell from the repository root with WORK in a temp folder."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

from tests.utils import logged_scalars

from .doc_blocks import TRIDENT, bash_blocks, run_blocks, sections


@pytest.mark.slow
@pytest.mark.timeout(900)  # about two minutes on 2 idle cores
def test_from_trident_features_runs_as_written(tmp_path):
    """Synthetic TRIDENT files (D = 48, not the demo config's 32) with holes and a 40x
    slide -> ingest -> make_splits -> train with masks -> extract -> every protocol of
    eval_slides.py, each producing numbers, as the section reads."""
    work = tmp_path / 'work'
    text = sections()[TRIDENT]
    for tool in ('make_synthetic', 'ingest', 'inspect_store', 'make_splits', 'train',
                 'extract_embeddings', 'eval_slides'):
        assert f'tools/{tool}.py' in text, tool
    proc = run_blocks(bash_blocks(text), work, timeout=800)
    assert 'status: complete' in proc.stdout and 'encoder synthetic' in proc.stdout
    rows = re.findall(r'^  (SYN-\S+)\s+\d+\s+\d+\s+([\d.]+)\s+(\d+)\s+(\d+)/(\d+)\s',
                      proc.stdout, flags=re.M)
    assert len(rows) == 20  # the first 20 of the 40 slides are listed
    assert all(float(tissue) < 1 for _, tissue, *_ in rows)  # the regions have holes
    assert all(int(kept) <= int(total) for *_, kept, total in rows)
    assert 'patches: ' in proc.stdout and 'kept in regions' in proc.stdout
    # D comes from the store: the demo config's in_channels=32 follows it to 48
    assert 'model.backbone.in_channels: 32 -> 48' in proc.stdout
    assert 'short run: default_hooks.teacher_ema.momentum' in proc.stdout + proc.stderr
    rows = [r for r in logged_scalars(work / 'trident_train') if 'loss' in r]
    assert rows and all(math.isfinite(r['loss']) for r in rows)
    assert any('loss_intra' in r for r in rows)  # the prototype terms ran on masked grids
    assert len(list((work / 'trident_embeddings').glob('*.pt'))) == 40
    whole = sorted((work / 'trident_slide_embeddings').glob('*.pt'))  # --level slide
    assert len(whole) == 40
    assert all(torch.load(p, weights_only=True).shape == (1, 192) for p in whole)
    knn = json.loads((work / 'trident_slide_knn' / 'results.json').read_text())
    assert knn['num_slides_evaluated'] == 40
    assert len(list((work / 'tsplits').glob('splits_*.csv'))) == 3
    for name in ('knn', 'linear', 'mil'):  # a test AUC on every split
        result = json.loads((work / f'trident_{name}' / 'results.json').read_text())
        aucs = [f['test_auc'] for f in result['folds']]
        assert len(aucs) == 3 and all(a is not None and 0 <= a <= 1 for a in aucs), name
    survival = json.loads((work / 'trident_survival' / 'results.json').read_text())
    assert survival['summary']['n'] == 3  # a c-index on every fold, no refusal
    assert 0 <= survival['summary']['mean'] <= 1
    fewshot = (work / 'trident_fewshot' / 'summary.csv').read_text()
    retrieval = (work / 'trident_retrieval' / 'summary.csv').read_text()
    assert re.search(r'\d\.\d', fewshot) and re.search(r'\d\.\d', retrieval)
    report = json.loads((work / 'trident_report' / 'report.json').read_text())
    assert {'knn', 'linear', 'mil', 'fewshot', 'retrieval', 'survival'} <= set(report)
    assert math.isfinite(report['survival']['slpd']['val_cindex']['mean'])
