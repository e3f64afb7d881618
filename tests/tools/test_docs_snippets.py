"""docs/getting-started.md works as written: every ```bash block runs, in order, in one
shell (so exports carry over), from the repository root, with WORK in a temp folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils import ROOT

from .conftest import read_png

DOC = ROOT / 'docs' / 'getting-started.md'
TOOL = re.compile(r'python (tools/\w+\.py|examples/\w+\.py)')


def bash_blocks(path: Path) -> list[str]:
    """The contents of the fenced ```bash blocks of a Markdown file, in order."""
    return re.findall(r'^```bash\n(.*?)^```$', path.read_text(), flags=re.S | re.M)


def test_doc_has_the_whole_path():
    script = '\n'.join(bash_blocks(DOC))
    for tool in ('make_synthetic', 'ingest', 'inspect_store', 'train', 'inspect_bank',
                 'extract_embeddings', 'eval_slides', 'visualize'):
        assert f'tools/{tool}.py' in script, tool
    for path in TOOL.findall(script):  # every command names a file that exists
        assert (ROOT / path).is_file(), path


@pytest.mark.slow
@pytest.mark.timeout(1500)  # a few minutes of CPU training on a shared machine
def test_getting_started_runs_as_written(tmp_path):
    work = tmp_path / 'work'
    script = 'set -euo pipefail\n' + '\n'.join(bash_blocks(DOC))
    env = dict(os.environ, WORK=str(work), OMP_NUM_THREADS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ["PATH"]}')
    proc = subprocess.run(['bash', '-c', script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    assert 'status: complete' in proc.stdout
    assert (work / 'eval_knn' / 'summary.csv').is_file()
    for name in ('prototype_map', 'projection', 'neighbor_graph'):
        read_png(work / 'pics' / f'{name}.png')
