"""Argument checks that several tools share."""
from __future__ import annotations

from slpd_plugin.datasets.stores.uri import store_location_problem
from slpd_plugin.utils.cli import UsageError

__all__ = ['check_store_location']


def check_store_location(location: str, flag: str | None = None) -> None:
    """Raise :class:`UsageError` (exit status 2) when ``location`` cannot name a store.

    Args:
        location: A store folder or a ``redis://`` URI.
        flag: The option that gave it (``'--store'``), put before the message; None for
            a positional argument.
    """
    problem = store_location_problem(location)
    if problem:
        raise UsageError(f'{flag}: {problem}' if flag else problem)
