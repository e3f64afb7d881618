"""A Python interpreter that has imported torch, mmengine, lightly and ``slpd_plugin`` once
and forks a child for every ``python ...`` command the tests run.

Started by :mod:`tests.warm` (``python -m tests.warm.server SOCKET PARENT_PID``). A client
(:mod:`tests.warm.client`, installed as ``python`` on the tests' PATH) sends its argv,
environment and working directory, and passes its stdin/stdout/stderr. For each request the
server forks a *monitor*, which forks the *child* that runs the command:

- the child gets the client's three file descriptors as 0/1/2, its environment, cwd and
  ``sys.argv``, starts its own process group, reseeds NumPy's global generator (as a fresh
  interpreter would) and runs the script, ``-m`` module or ``-c`` code as ``__main__``;
  its exit status is the one a fresh interpreter would have (``SystemExit`` semantics,
  1 after an uncaught exception, atexit handlers run);
- the monitor sends the child's pid to the client, waits for the child and sends its
  status (``-N`` when a signal ``N`` ended it); when the client goes away first (killed by
  a test's timeout), it kills the child's process group.

Only the import time is saved: every command still runs in a process of its own.
"""
from __future__ import annotations

import array
import atexit
import importlib
import io
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback

PRELOAD = ('torch', 'torchvision', 'mmengine.runner', 'lightly.loss', 'lightly.models',
           'h5py', 'sklearn.linear_model', 'matplotlib.pyplot', 'slpd_plugin')
MAX_MESSAGE = 1 << 20


def _preload() -> None:
    os.environ.setdefault('MPLBACKEND', 'Agg')
    for name in PRELOAD:
        importlib.import_module(name)
    import pkgutil

    import slpd_plugin.cli
    for info in pkgutil.iter_modules(slpd_plugin.cli.__path__):
        importlib.import_module(f'slpd_plugin.cli.{info.name}')


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    fds = array.array('i')
    msg, ancdata, _, _ = conn.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return json.loads(msg.decode()), list(fds)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _run_child(request: dict, fds: list[int]) -> None:
    """In the child: become the command and never return."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setpgrp()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    unbuffered = request['unbuffered'] or bool(os.environ.get('PYTHONUNBUFFERED'))
    sys.stdin = io.TextIOWrapper(io.FileIO(0, 'r', closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, 'w', closefd=False), line_buffering=True,
                                  write_through=unbuffered)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, 'w', closefd=False), write_through=True,
                                  errors='backslashreplace')
    import numpy as np
    np.random.seed(int.from_bytes(os.urandom(4), 'little'))
    threads = os.environ.get('OMP_NUM_THREADS')
    if threads and threads.isdigit():
        import torch
        torch.set_num_threads(int(threads))
    extra = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    sys.executable = request['executable']  # tools that start Python start a warm one
    kind, target, args = request['kind'], request['target'], request['args']
    first = {'script': os.path.dirname(os.path.abspath(target)), 'module': os.getcwd(),
             'code': ''}[kind]
    sys.path[:] = [first, *extra, *[p for p in sys.path[1:] if p not in extra]]
    code = 0
    try:
        if kind == 'script':
            sys.argv = [target, *args]
            runpy.run_path(target, run_name='__main__')
        elif kind == 'module':
            sys.argv = ['-m', *args]
            sys.modules.pop(target, None)  # preloaded: run its code afresh as __main__
            runpy.run_module(target, run_name='__main__', alter_sys=True)
        else:
            sys.argv = ['-c', *args]
            exec(compile(target, '<string>', 'exec'), {'__name__': '__main__'})
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:  # a fresh interpreter prints the traceback and exits with 1
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a closed pipe: nothing more to say
                pass
        os._exit(code)


def _monitor(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the monitor: run the child, report its pid and status, never return."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # so that waitpid sees the child
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_child(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({'pid': pid}).encode() + b'\n')
    status = None
    while status is None:
        ready, _, _ = select.select([conn], [], [], 0.2)
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(raw)
        elif ready and not conn.recv(1):  # the client is gone: so is its command
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            os._exit(0)
    try:
        conn.sendall(json.dumps({'status': status}).encode() + b'\n')
    finally:
        os._exit(0)


def serve(path: str, parent: int) -> None:
    """Preload, then answer requests on the Unix socket ``path``.

    Until terminated, or until the test process that started it is gone (a killed pytest
    leaves no server behind): ``parent`` is its pid.
    """
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path + '.tmp')
    os.rename(path + '.tmp', path)  # the client waits for this name
    server.listen(64)
    server.settimeout(5)
    while os.getppid() == parent:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        try:
            request, fds = _recv_request(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        if os.fork() == 0:
            server.close()
            _monitor(conn, request, fds)
        conn.close()
        for fd in fds:
            os.close(fd)


if __name__ == '__main__':
    serve(sys.argv[1], int(sys.argv[2]))
