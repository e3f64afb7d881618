"""The tests' warm ``python`` (tests/warm) behaves as a fresh interpreter for the
commands the tests run: the same exit status, output, argv, cwd, environment and stdin,
signals and uncaught exceptions, only without the imports."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.utils import ROOT
from tests.warm import python_dir, python_exe

PROBE = ('import os, sys; print(sys.argv[1:], os.getcwd(), os.environ.get("PROBE_VAR"), '
         'sys.stdin.read().strip()); print("to stderr", file=sys.stderr); sys.exit(7)')


@pytest.fixture(scope='module')
def warm() -> str:
    folder = python_dir()
    if folder is None:
        pytest.skip('SLPD_TEST_WARM=0')
    deadline = time.monotonic() + 240
    while not (folder / 'server.sock').exists():  # the server preloads torch & co. first
        assert time.monotonic() < deadline, 'the warm server did not start'
        time.sleep(0.2)
    return python_exe()


def run(python: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PROBE_VAR='value')
    return subprocess.run([python, *args], capture_output=True, text=True, timeout=120,
                          env=env, **kwargs)


def test_the_warm_interpreter_has_torch_imported_and_a_fresh_one_has_not(warm):
    code = 'import sys; print("torch" in sys.modules)'
    assert run(warm, '-c', code).stdout.strip() == 'True'
    assert run(sys.executable, '-c', code).stdout.strip() == 'False'


@pytest.mark.parametrize('args', [('-c', PROBE, 'a', 'b c'),
                                  ('-m', 'tests.tools.doc_blocks'),
                                  ('tools/inspect_store.py', '/nonexistent/store'),
                                  ('-c', 'raise ValueError("boom")'),
                                  ('-c', 'import sys; sys.exit("a message")')])
def test_same_status_output_argv_cwd_env_and_stdin_as_a_fresh_interpreter(warm, tmp_path,
                                                                           args):
    cwd = ROOT if not args[0].startswith('-c') else tmp_path
    cold = run(sys.executable, *args, cwd=cwd, input='from stdin\n')
    hot = run(warm, *args, cwd=cwd, input='from stdin\n')
    assert hot.returncode == cold.returncode
    assert hot.stdout == cold.stdout
    assert hot.stderr.splitlines()[-1:] == cold.stderr.splitlines()[-1:]


def test_a_signal_reaches_the_command_and_ends_it_as_it_would(warm):
    proc = subprocess.Popen([warm, '-c', 'import time; print("up", flush=True); '
                             'time.sleep(60)'], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'up'
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM
