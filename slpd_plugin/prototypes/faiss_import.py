"""faiss is optional: the torch k-means backend (the default) trains without it.

Only the faiss k-means backend and the neighbour shortlist of very large datasets use
faiss; they import it through :func:`load_faiss`, which says in one line what to install
when it is missing. :func:`faiss_installed` lets a config check fail before training.
"""
from __future__ import annotations

import importlib.util
import types

from slpd_plugin.utils.cli import UserError

INSTALL_HINT = ("pip install -e '.[cpu]' (faiss-cpu), or -e '.[gpu]' (faiss-gpu, CUDA 12); "
                "or use the torch k-means backend (backend='torch', the default)")


class FaissMissing(UserError, ImportError):
    """Something that needs faiss was asked for, and faiss is not installed."""


def faiss_installed() -> bool:
    """Whether ``import faiss`` would find a module (without importing it)."""
    return importlib.util.find_spec('faiss') is not None


def load_faiss(needed_for: str) -> types.ModuleType:
    """The ``faiss`` module, imported on first use.

    Args:
        needed_for: What needs it, for the error message (e.g. ``'the faiss k-means
            backend'``).

    Raises:
        FaissMissing: one line naming what needs faiss and how to install it.
    """
    try:
        import faiss
    except ImportError:
        raise FaissMissing(f'{needed_for} needs faiss, which is not installed: '
                           f'{INSTALL_HINT}') from None
    return faiss
