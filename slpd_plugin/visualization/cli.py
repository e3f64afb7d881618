"""What the inspection and visualisation tools share: one-line errors, exit statuses.

Every tool validates its arguments before doing work and, on a problem, prints a single
line ``<prog>: error: <what was expected>`` to stderr: exit status 2 for a bad argument
(argparse's convention), 1 for bad input found while working (a checkpoint without a
prototype bank, an unknown slide, an incomplete store).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn

from slpd_plugin.datasets.stores import StoreError

#: Exceptions that carry a message meant for the user (everything else is a bug and
#: keeps its traceback).
USER_ERRORS = (StoreError, ValueError, FileNotFoundError)


class ToolParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line, without the usage.

    ``--help`` is unchanged (description, arguments, examples).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f'{self.prog}: error: {message}\n')


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def run_tool(prog: str, work: Callable[[], int | None]) -> int:
    """Run a tool's work; a user error becomes one line on stderr and exit status 1.

    Args:
        prog: The tool's name, printed before the error.
        work: The tool's work; returns an exit status (None means 0).

    Returns:
        int: The exit status.
    """
    try:
        status = work()
    except USER_ERRORS as err:
        print(f'{prog}: error: {first_line(err)}', file=sys.stderr)
        return 1
    return 0 if status is None else status
