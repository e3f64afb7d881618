"""docs/getting-started.md works as written: the ```bash blocks of sections 1-6 run, in
order, in one shell (so exports carry over), from the repository root, with WORK in a temp
folder. Section 7 (the plain-PyTorch example) and "From TRIDENT features" are independent
of them and run in tests of their own (test_example.py, test_docs_trident.py), so that
pytest-xdist can give them to another worker."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from slpd_plugin.datasets import open_store
from tests.utils import ROOT, logged_scalars

from .conftest import read_png
from .doc_blocks import DOC, EXAMPLE, TRIDENT, bash_blocks, run_blocks, sections

TOOL = re.compile(r'python (tools/\w+\.py|examples/\w+\.py)')


def test_doc_has_the_whole_path():
    assert {TRIDENT, EXAMPLE} <= set(sections(DOC))  # the sections other tests run
    script = '\n'.join(bash_blocks(DOC.read_text()))
    for tool in ('make_synthetic', 'ingest', 'inspect_store', 'train', 'inspect_bank',
                 'extract_embeddings', 'eval_slides', 'visualize'):
        assert f'tools/{tool}.py' in script, tool
    for path in TOOL.findall(script):  # every command names a file that exists
        assert (ROOT / path).is_file(), path


@pytest.mark.slow
@pytest.mark.timeout(1500)  # a few minutes of CPU training on a shared machine
def test_getting_started_runs_as_written(tmp_path):
    work = tmp_path / 'work'
    blocks = [b for head, text in sections(DOC).items() if head not in (TRIDENT, EXAMPLE)
              for b in bash_blocks(text)]
    proc = run_blocks(blocks, work, timeout=1200)
    assert 'status: complete' in proc.stdout
    # The HIPT-layout round trip (export, token-major rewrite, ingest) kept every grid.
    bench, ingested = open_store(work / 'bench' / 'store'), open_store(work / 'store')
    ids = bench.slide_ids
    assert sorted(ingested.slide_ids) == sorted(ids) and len(ids) == 12
    for s, slide in enumerate(ingested.slide_ids):
        np.testing.assert_allclose(ingested.read_slide(s), bench.read_slide(ids.index(slide)),
                                   rtol=1e-3, atol=1e-3, err_msg=slide)
    rows = [r for r in logged_scalars(work / 'train') if 'loss' in r]
    assert rows and all(math.isfinite(r['loss']) for r in rows)
    assert 'loss_intra' not in rows[0] and 'loss_intra' in rows[-1]  # prototypes from epoch 2
    assert sorted(p.stem for p in (work / 'embeddings').glob('*.pt')) == sorted(ids)
    knn = json.loads((work / 'eval_knn' / 'results.json').read_text())
    assert len(knn['folds']) == 3  # --num-folds 3
    assert (work / 'eval_knn' / 'summary.csv').is_file()
    for name in ('prototype_map', 'projection', 'neighbor_graph'):
        read_png(work / 'pics' / f'{name}.png')
