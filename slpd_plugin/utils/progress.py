"""Progress bars that suit both terminals and log files."""
from __future__ import annotations

import sys

from tqdm import tqdm


class PercentLines(tqdm):
    """A tqdm that prints a plain line each time another tenth of the work is done.

    For non-interactive output (log files, CI): no carriage returns, at most ~11 lines
    per bar. Without a known total it prints a line at most every 30 seconds.
    """

    def __init__(self, *args, **kwargs) -> None:
        self._next_fraction = 0.0
        self._lines = 0
        known_total = kwargs.get('total') is not None or hasattr(
            args[0] if args else kwargs.get('iterable'), '__len__')
        kwargs.setdefault('mininterval', 0 if known_total else 30)
        kwargs.setdefault('miniters', 1 if known_total else None)
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Print a line only once another tenth is done (tqdm calls this on each refresh)."""
        if self.total:
            fraction = self.n / self.total
            if fraction < self._next_fraction:
                return True
            self._next_fraction = (float('inf') if self.n >= self.total
                                   else (int(fraction * 10) + 1) / 10)
        # tqdm's close() ends the last line with its own newline.
        self.fp.write(('\n' if self._lines else '') + self.__str__())
        self.fp.flush()
        self._lines += 1
        return True


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)`` on a terminal, :class:`PercentLines` elsewhere."""
    stream = kwargs.get('file') or sys.stderr
    bar_class = tqdm if getattr(stream, 'isatty', lambda: False)() else PercentLines
    return bar_class(iterable, **kwargs)
