"""The one error convention of the command-line tools.

Every tool checks its arguments before doing work and, on a problem, prints a single line
``<prog>: error: <what was expected>`` to stderr and ends with

- exit status 2 for a bad argument: argparse's own errors (:class:`ToolParser` turns them
  into a :class:`UsageError`) and the checks a tool makes after parsing (a file that does
  not exist, a value out of range), which raise :class:`UsageError`;
- exit status 1 for bad input found while working (a checkpoint without a prototype bank,
  an unknown slide, an incomplete store): a :class:`UserError` (the stores'
  ``StoreError`` is one), a ``ValueError`` or a ``FileNotFoundError``.

Anything else is a bug and keeps its traceback. ``UserWarning`` s print as one line
``<prog>: warning: <message>`` each. A tool's ``main`` is::

    def main(argv: list[str] | None = None) -> int:
        return run_tool(PROG, lambda: work(build_parser().parse_args(argv)))
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, NoReturn


class UserError(Exception):
    """An error in what the user gave (a file, a store, a slide id), not a bug.

    Its message is printed as one line and the tool exits with status 1. Lower layers
    subclass it (``datasets.stores.StoreError``) so the tools need not know their errors.
    """


class UsageError(UserError):
    """A bad command-line argument, found by argparse or after parsing: exit status 2."""


#: Exceptions that carry a message meant for the user (exit status 1).
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, FileNotFoundError)


class ToolParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors raise :class:`UsageError`.

    :func:`run_tool` prints them as one line, without the usage, and returns 2. Sub-parsers
    made with ``add_subparsers`` are ToolParsers too. ``--help`` is unchanged.
    """

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` instead of printing usage and exiting."""
        raise UsageError(message)

    @classmethod
    def for_tool(cls, prog: str, doc: str | None, examples: str) -> ToolParser:
        """A tool's parser: its docstring above the options and examples below, as written."""
        return cls(prog=prog, description=doc, epilog=examples,
                   formatter_class=argparse.RawDescriptionHelpFormatter)



def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def error_text(error: BaseException) -> str:
    """What the user sees of an error: its first line, or all of a list of problems.

    An error class with ``lists_problems = True`` (such as the config check's) reports
    several problems at once, and all its lines are shown.
    """
    if getattr(error, 'lists_problems', False):
        return str(error).strip()
    return first_line(error)


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


def run_tool(prog: str, work: Callable[[], int | None],
             errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a tool's work under the convention of this module.

    Args:
        prog: The tool's name, printed before errors and warnings.
        work: Parses the arguments and does the tool's work; returns an exit status
            (None means 0).
        errors: More exception types whose message is meant for the user (exit 1), on
            top of :data:`USER_ERRORS`.

    Returns:
        int: The exit status: ``work``'s, 2 for a :class:`UsageError`, 1 for a user error,
        0 when the reader of the output closed it early (``tool | head``: no traceback).

    Example:
        >>> run_tool('demo.py', lambda: int('x'))  # prints "demo.py: error: invalid ..."
        1
    """
    with one_line_warnings(prog):
        try:
            status = work()
            sys.stdout.flush()  # a reader that stopped early (``| head``) shows here
        except BrokenPipeError:
            # The reader of our output closed it: not an error. Later flushes (at exit)
            # go to /dev/null instead of raising again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except UsageError as err:
            print(f'{prog}: error: {error_text(err)}', file=sys.stderr)
            return 2
        except USER_ERRORS + errors as err:
            print(f'{prog}: error: {error_text(err)}', file=sys.stderr)
            return 1
    return 0 if status is None else status


def tool_main(prog: str, build_parser: Callable[[], argparse.ArgumentParser],
              run: Callable[[argparse.Namespace], int | None], argv: list[str] | None = None,
              errors: tuple[type[BaseException], ...] = ()) -> int:
    """A tool's ``main``: parse ``argv`` with ``build_parser()``, then ``run(args)``.

    Both run under :func:`run_tool`'s convention.

    Example:
        >>> def main(argv=None):
        ...     return tool_main('inspect_store.py', build_parser, run, argv)
    """
    return run_tool(prog, lambda: run(build_parser().parse_args(argv)), errors)
