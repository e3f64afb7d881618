"""The original SLPD/HIPT data path, kept only as a benchmark baseline.

One Redis key per region (``{prefix}:{i}``) holding a *pickled* float32 numpy array
``(C, 16, 16)``; the dataset's ``__getitem__`` sends one ``GET`` per region and unpickles
the reply, so a batch of ``b`` regions costs ``b`` round trips.

Pickle is used here only because the benchmark writes this data itself in the same run.
Never unpickle data from a shared server: a crafted value runs arbitrary code. The
plugin's stores (``slpd_plugin.datasets.stores``) hold raw bytes and never unpickle.
"""
from __future__ import annotations

import pickle
from typing import Sequence

import numpy as np
import redis


def write_regions(client: redis.Redis, prefix: str, grids: np.ndarray, first: int) -> None:
    """Store each region of one slide as a pickled float32 array under its own key.

    Args:
        client: Redis client.
        prefix: Key prefix of this benchmark.
        grids: One slide's grids ``(n, C, 16, 16)``.
        first: Global index of the slide's first region (keys ``first .. first+n-1``).
    """
    pipe = client.pipeline(transaction=False)
    for k, grid in enumerate(grids):
        pipe.set(f'{prefix}:{first + k}', pickle.dumps(np.asarray(grid, dtype=np.float32)))
    pipe.execute()


def read_batch(client: redis.Redis, prefix: str, indices: Sequence[int]) -> np.ndarray:
    """The original access pattern: one ``GET`` + ``pickle.loads`` per region.

    Returns:
        ``(len(indices), C, 16, 16)`` float32.
    """
    return np.stack([pickle.loads(client.get(f'{prefix}:{i}')) for i in indices])


def delete_regions(client: redis.Redis, prefix: str, count: int) -> None:
    """Remove the ``count`` keys written by :func:`write_regions`."""
    for start in range(0, count, 1000):
        client.unlink(*(f'{prefix}:{i}' for i in range(start, min(count, start + 1000))))
