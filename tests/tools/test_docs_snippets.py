"""docs/getting-started.md works as written: its ```bash blocks run, in order, in one
shell (so exports carry over), from the repository root, with WORK in a temp folder; the
HIPT-features path and the "From TRIDENT features" section are run by separate tests."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils import ROOT, logged_scalars

from .conftest import read_png

DOC = ROOT / 'docs' / 'getting-started.md'
TOOL = re.compile(r'python (tools/\w+\.py|examples/\w+\.py)')
TRIDENT = 'From TRIDENT features'  # the section run by a test of its own


def bash_blocks(text: str) -> list[str]:
    """The contents of the fenced ```bash blocks of Markdown text, in order."""
    return re.findall(r'^```bash\n(.*?)^```$', text, flags=re.S | re.M)


def sections(path: Path) -> dict[str, str]:
    """A Markdown file's text by ``## `` heading (the text before the first under '')."""
    parts = re.split(r'^## (.*)$', path.read_text(), flags=re.M)
    return dict(zip(['', *parts[1::2]], parts[0::2]))


def run_blocks(blocks: list[str], work: Path, timeout: int) -> subprocess.CompletedProcess:
    """The blocks as one ``bash -euo pipefail`` script, with WORK set and the test's
    interpreter first on PATH."""
    script = 'set -euo pipefail\n' + '\n'.join(blocks)
    env = dict(os.environ, WORK=str(work), OMP_NUM_THREADS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ["PATH"]}')
    proc = subprocess.run(['bash', '-c', script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    return proc


def test_doc_has_the_whole_path():
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
    blocks = [b for head, text in sections(DOC).items() if head != TRIDENT
              for b in bash_blocks(text)]
    proc = run_blocks(blocks, work, timeout=1200)
    assert 'status: complete' in proc.stdout
    assert (work / 'eval_knn' / 'summary.csv').is_file()
    for name in ('prototype_map', 'projection', 'neighbor_graph'):
        read_png(work / 'pics' / f'{name}.png')


@pytest.mark.slow
@pytest.mark.timeout(600)  # about a minute on 2 idle cores
def test_from_trident_features_runs_as_written(tmp_path):
    """Synthetic TRIDENT files with holes and a 40x slide -> ingest -> train with masks
    -> extract -> KNN, as the section reads."""
    work = tmp_path / 'work'
    text = sections(DOC)[TRIDENT]
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
