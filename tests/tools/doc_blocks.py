"""Running docs/getting-started.md as written: its ```bash blocks by section, in one
``bash -euo pipefail`` shell from the repository root, with WORK in a temp folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.utils import ROOT
from tests.warm import python_dir

DOC = ROOT / 'docs' / 'getting-started.md'
TRIDENT = 'From TRIDENT features'  # run by tests/tools/test_docs_trident.py
EXAMPLE = '7. Without mmengine'  # run by tests/tools/test_example.py


def bash_blocks(text: str) -> list[str]:
    """The contents of the fenced ```bash blocks of Markdown text, in order."""
    return re.findall(r'^```bash\n(.*?)^```$', text, flags=re.S | re.M)


def sections(path: Path = DOC) -> dict[str, str]:
    """A Markdown file's text by ``## `` heading (the text before the first under '')."""
    parts = re.split(r'^## (.*)$', path.read_text(), flags=re.M)
    return dict(zip(['', *parts[1::2]], parts[0::2]))


def run_blocks(blocks: list[str], work: Path, timeout: int) -> subprocess.CompletedProcess:
    """The blocks as one ``bash -euo pipefail`` script, with WORK set and the test's
    interpreter (its warm launcher, :mod:`tests.warm`) first on PATH; fails the test with
    the output's tail unless it exits 0."""
    script = 'set -euo pipefail\n' + '\n'.join(blocks)
    env = dict(os.environ, WORK=str(work), OMP_NUM_THREADS='1',
               PATH=os.pathsep.join([*([str(warm)] if (warm := python_dir()) else []),
                                     str(Path(sys.executable).parent), os.environ['PATH']]))
    proc = subprocess.run(['bash', '-c', script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    return proc
