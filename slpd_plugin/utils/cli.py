"""Command-line helpers shared by the tools."""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Print every ``UserWarning`` as ``PROG: warning: message`` on stderr, each time.

    The previous warning filters and printer are restored on exit.
    """
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f'{prog}: warning: {message}', file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter('always', UserWarning)
        warnings.showwarning = show
        yield
