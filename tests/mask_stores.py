"""Stores with holes (tissue masks with False cells), written through the real writers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from slpd_plugin.datasets.stores import open_writer


def holey_slides(num_slides: int = 4, regions: int = 6, channels: int = 8, keep: float = 0.7,
                 seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{slide_id: (grids (n, C, 16, 16) float32, masks (n, 16, 16) bool)}`` with random
    holes; missing cells are zero, as ingest writes them."""
    rng = np.random.default_rng(seed)
    slides = {}
    for s in range(num_slides):
        masks = rng.random((regions, 16, 16)) < keep
        masks[:, 8, 8] = True  # every region keeps some tissue
        grids = rng.standard_normal((regions, channels, 16, 16)).astype(np.float32)
        slides[f'slide_{s}'] = (grids * masks[:, None], masks)
    return slides


def write_holey_store(location: str | Path, slides: dict, fill: float | None = None,
                      seed: int = 1, dtype: str = 'float16') -> str:
    """Write ``slides`` (from :func:`holey_slides`) with ``open_writer``; ``fill`` puts
    ``fill * N(0, 1)`` values into the missing cells instead of zeros."""
    rng = np.random.default_rng(seed)
    with open_writer(str(location), dtype=dtype) as writer:
        for name, (grids, masks) in slides.items():
            if fill is not None:
                noise = fill * rng.standard_normal(grids.shape).astype(np.float32)
                grids = np.where(masks[:, None], grids, noise)
            writer.add_slide(name, grids, masks=masks)
    return str(location)
