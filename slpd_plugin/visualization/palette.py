"""Categorical colours that stay distinct for the few classes a plot shows."""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps

#: Colour of things that have no category (unlabelled slides, regions without prototypes).
NO_CATEGORY = (0.78, 0.78, 0.78, 1.0)


def categorical_colors(count: int) -> np.ndarray:
    """``count`` RGBA colours: tab10 up to 10, tab20 up to 20, then evenly spaced hues.

    Args:
        count: Number of colours (>= 0).

    Returns:
        np.ndarray: Shape (count, 4), values in [0, 1].
    """
    if count > 20:
        return colormaps['hsv'](np.linspace(0, 1, count, endpoint=False))
    table = colormaps['tab10' if count <= 10 else 'tab20'].colors
    rgb = np.asarray(table[:count], dtype=float).reshape(count, 3)
    return np.concatenate([rgb, np.ones((count, 1))], axis=1)
