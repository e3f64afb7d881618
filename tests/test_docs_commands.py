"""Every command in README.md and docs/*.md names tools, configs and make targets that
exist, and every tool it names answers ``--help`` (docs/getting-started.md is also run
end to end by tests/tools/test_docs_snippets.py and its neighbours)."""
import json
import re
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
FENCE = re.compile(r'```(?:bash|sh|shell)\n(.*?)```', re.S)


def commands(path: Path) -> list[list[str]]:
    out = []
    for block in FENCE.findall(path.read_text()):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].strip()
            if line and not line.startswith('#'):
                out.append(shlex.split(line, comments=True))
    return out


# Every tool's ``--help`` in one interpreter (one torch import, not one per tool): each
# runs as ``python tool --help`` would, with ``__name__ == '__main__'``.
HELP_ALL = """
import json, runpy, sys
codes = {}
for tool in sys.argv[1:]:
    sys.argv = [tool, '--help']
    try:
        runpy.run_path(tool, run_name='__main__')
        codes[tool] = 0
    except SystemExit as exit:
        codes[tool] = exit.code or 0
    except Exception as err:
        codes[tool] = repr(err)
print(json.dumps(codes))
"""


@lru_cache(maxsize=None)
def help_codes() -> dict:
    tools = sorted({token for doc in DOCS for cmd in commands(doc) for token in cmd
                    if re.fullmatch(r'tools/\w+\.py', token) and (ROOT / token).is_file()})
    proc = subprocess.run([sys.executable, '-c', HELP_ALL, *tools], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tool_help(tool: str) -> int | str:
    return help_codes()[tool]


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: p.name)
def test_commands_name_what_exists(doc):
    makefile = (ROOT / 'Makefile').read_text()
    for cmd in commands(doc):
        for i, token in enumerate(cmd):
            if re.fullmatch(r'tools/\w+\.py', token):
                assert (ROOT / token).is_file(), f'{doc.name}: {token} does not exist'
                assert tool_help(token) == 0, f'{doc.name}: {token} --help: {tool_help(token)}'
            elif re.fullmatch(r'tools/\w+\.sh', token):
                assert (ROOT / token).is_file(), f'{doc.name}: {token} does not exist'
            elif re.fullmatch(r'(tests/)?configs/\w+\.py', token):
                assert (ROOT / token).is_file(), f'{doc.name}: {token} does not exist'
                Config.fromfile(ROOT / token)
            elif token == 'make' and i == 0 and len(cmd) > 1:
                assert re.search(rf'^{cmd[1]}:', makefile, re.M), \
                    f'{doc.name}: make {cmd[1]}: no such target'


def test_readme_starts_with_the_demo_and_test_commands():
    first_block = FENCE.search((ROOT / 'README.md').read_text()).group(1)
    lines = [line.split('#')[0].strip() for line in first_block.splitlines() if line.strip()]
    assert lines == ['make demo', 'make test']
    assert 'make test' in (ROOT / '.ci' / 'run').read_text()
