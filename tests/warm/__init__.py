"""Warm interpreters for the ``python`` commands that tests run.

Each fresh interpreter spends 3.5-4.5 s (on 2 busy cores) importing torch, torchvision,
mmengine and the plugin before a tool does anything; the suite starts well over a hundred.
:func:`python_exe` starts (once per test process, in the background) a server that has
imported them (:mod:`tests.warm.server`) and returns a ``python`` launcher
(:mod:`tests.warm.client`) that runs its command in a child forked from that server: a
separate process with the command's argv, environment, cwd and stdio, as before, without
the imports. Until the server is up, and for options it does not handle, the launcher runs
the real interpreter.

Tests that check what a fresh process imports or how much memory it uses keep
``sys.executable``. ``SLPD_TEST_WARM=0`` turns the server off.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_state: dict[str, object] = {}


def _stop() -> None:
    server = _state.get('server')
    if isinstance(server, subprocess.Popen) and server.poll() is None:
        server.terminate()
        server.wait(10)
    shutil.rmtree(str(_state['dir']), ignore_errors=True)


def python_dir() -> Path | None:
    """The folder holding the ``python``/``python3`` launchers; None when turned off."""
    if os.environ.get('SLPD_TEST_WARM', '1') == '0':
        return None
    if 'dir' not in _state:
        folder = Path(tempfile.mkdtemp(prefix='warm-py-', dir='/tmp'))
        sock = folder / 'server.sock'
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1',
                   CUDA_VISIBLE_DEVICES='')
        log = open(folder / 'server.log', 'w')
        _state.update(dir=folder, server=subprocess.Popen(
            [sys.executable, '-m', 'tests.warm.server', str(sock), str(os.getpid())],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
        launcher = (f'#!{sys.executable} -SE\n'
                    f'import sys\nsys.path.insert(0, {str(ROOT / "tests" / "warm")!r})\n'
                    f'import client\nclient.main({sys.executable!r}, {str(sock)!r})\n')
        for name in ('python', 'python3'):
            (folder / name).write_text(launcher)
            (folder / name).chmod(0o755)
        atexit.register(_stop)
    return Path(str(_state['dir']))


def python_exe() -> str:
    """A ``python`` to start tools with: the warm launcher, or ``sys.executable``."""
    folder = python_dir()
    return sys.executable if folder is None else str(folder / 'python')
