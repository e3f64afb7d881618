"""``python`` for the tests: runs the command in a child of the warm server
(:mod:`tests.warm.server`), or ``exec``\\ s the real interpreter when the server is not
running or the command line uses an option the server does not handle.

:func:`tests.warm.python_dir` writes ``python`` and ``python3`` launchers that run
:func:`main` in the real interpreter with ``-S -E`` (standard library only: it starts in
milliseconds). Signals it receives go to the command; it exits with the command's status
(or dies by its signal).
"""
import array
import json
import os
import signal
import socket
import sys

FLAGS = {'-u': 'unbuffered', '-B': None, '-s': None}


def _real(real: str) -> None:
    os.execv(real, [real, *sys.argv[1:]])


def _stdio() -> list[int]:
    """Descriptors 0-2, /dev/null in place of a closed one."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def _parse(argv: list[str]) -> dict | None:
    """``{'kind', 'target', 'args', 'unbuffered'}``, or None for a command line to leave
    to the real interpreter."""
    unbuffered = False
    for k, arg in enumerate(argv):
        if arg in FLAGS:
            unbuffered |= FLAGS[arg] == 'unbuffered'
        elif arg in ('-m', '-c'):
            if k + 1 >= len(argv):
                return None
            kind = 'module' if arg == '-m' else 'code'
            return dict(kind=kind, target=argv[k + 1], args=argv[k + 2:],
                        unbuffered=unbuffered)
        elif arg.startswith('-'):
            return None
        else:
            return dict(kind='script', target=arg, args=argv[k + 1:], unbuffered=unbuffered)
    return None


def main(real: str, server: str) -> None:
    """Run ``sys.argv[1:]`` on the warm server at the Unix socket ``server`` (else ``real``)."""
    request = _parse(sys.argv[1:])
    if request is None:
        _real(real)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(server)
    except OSError:  # not started yet, or gone: a cold interpreter does the same work
        _real(real)
    request.update(cwd=os.getcwd(), env=dict(os.environ),
                   executable=os.path.abspath(sys.argv[0]))
    fds = array.array('i', _stdio())
    conn.sendmsg([json.dumps(request).encode()],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
    replies = conn.makefile('rb')
    pid = json.loads(replies.readline())['pid']
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                signal.SIGUSR2):
        signal.signal(sig, lambda number, _frame: os.kill(pid, number))
    line = replies.readline()
    if not line:
        sys.exit(1)
    status = json.loads(line)['status']
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status if status >= 0 else 128 - status)
