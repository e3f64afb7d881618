"""The one way an array becomes bytes for a store: a flat C-contiguous ``uint8`` view.

Clients and hash functions see a numpy array through the buffer protocol, and they do
not agree on what a multi-dimensional buffer means: ``len()`` of a ``(10, 100)`` float16
memoryview is 10 (its first dimension), not its 2,000 bytes. A Redis client that takes
``len(value)`` as the bulk length then sends a malformed command, and the server waits for
bytes that never come. Every value written to a store and every checksum goes through
:func:`flat_bytes`, whose ``len()`` is the byte count whatever the array's shape or dtype.
"""
from __future__ import annotations

import numpy as np


def flat_bytes(array: np.ndarray) -> memoryview:
    """A one-dimensional ``uint8`` memoryview of ``array``'s bytes in C order.

    No copy when ``array`` is already C-contiguous; ``len()`` and ``nbytes`` of the result
    are both the array's byte count.

    Example:
        >>> v = flat_bytes(np.zeros((10, 100), np.float16))
        >>> len(v), v.format, v.ndim
        (2000, 'B', 1)
    """
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
