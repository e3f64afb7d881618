"""A dense reference of a slide's patch lattice, built the simple way (a dict of cells),
independently of the package: what every lattice window must equal."""
from __future__ import annotations

import numpy as np


def dense_slide(coords: np.ndarray, feats: np.ndarray, stride: float
                ) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """``(dense (R, C, D), present (R, C), phase)``: every lattice cell from the slide
    origin (lattice cell (0, 0)) to the last patch, zero where there is no patch."""
    phase = (float(coords[0][0] % stride), float(coords[0][1] % stride))
    cells = {}
    for (x, y), f in zip(coords, feats):
        cells[(round((y - phase[1]) / stride), round((x - phase[0]) / stride))] = f
    rows = 1 + max(r for r, _ in cells)
    cols = 1 + max(c for _, c in cells)
    dense = np.zeros((rows, cols, feats.shape[1]), dtype=feats.dtype)
    present = np.zeros((rows, cols), dtype=bool)
    for (r, c), f in cells.items():
        dense[r, c] = f
        present[r, c] = True
    return dense, present, phase


def window(dense: np.ndarray, present: np.ndarray, row: int, col: int, size: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """The ``size``-square window at lattice cell ``(row, col)`` (may stick out):
    ``((D, G, G), (G, G))``."""
    pad = size + 1
    d = np.pad(dense, ((pad, pad + size), (pad, pad + size), (0, 0)))
    p = np.pad(present, ((pad, pad + size), (pad, pad + size)))
    r, c = row + pad, col + pad
    return d[r:r + size, c:c + size].transpose(2, 0, 1), p[r:r + size, c:c + size]
