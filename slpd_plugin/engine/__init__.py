"""Training engine: runner, hooks, optimizer wrapper."""
from . import hooks, optimizers  # noqa: F401
from .runner import SLPDRunner

__all__ = ['SLPDRunner']
