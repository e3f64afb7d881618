"""Block-wise token masks over grids with holes, for iBOT's masked feature modelling.

Letters: ``B`` grids, ``H x W`` cells.

The scheme is iBOT's (Zhou et al., ICLR 2022) and DINOv2's: only some grids of a batch
are masked; their mask ratios are spread evenly over ``[min_ratio, max_ratio]``; each
mask is a union of random rectangles. lightly's ``random_block_mask`` follows the same
scheme but is not used: it draws from Python's ``random`` (not torch's generator, so a
run seeded through torch does not reproduce it), masks a fixed ``int(B * ratio)``
grids, and knows nothing of missing cells, which here must never be masked (a missing
cell has no input to predict).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from slpd_plugin.registry import MODELS


@MODELS.register_module()
class BlockMaskGenerator:
    """Random rectangular token masks inside the tissue of a batch of grids.

    Per batch of ``B`` grids with tissue masks ``(B, H, W)``:

    1. each grid is masked with probability ``mask_probability``; say ``n`` are;
    2. their target ratios are spread over ``[min_ratio, max_ratio]``: ratio ``k`` is
       drawn uniformly from the ``k``-th of ``n`` equal sub-intervals, and the ``n``
       ratios are dealt to the ``n`` grids in random order (iBOT, DINOv2); the grid's
       target is ``int(ratio * tissue cells)`` cells;
    3. rectangles are added while ``min_num_patches`` or more cells are left to the
       target: area uniform in
       ``[min_num_patches, min(max_num_patches, remaining)]`` cells, aspect ratio
       (height / width) log-uniform in ``[min_aspect, max_aspect]``, sides rounded,
       position uniform; a rectangle is kept when its rounded sides still have at least
       ``min_num_patches`` cells and an aspect ratio in range, and it adds between 1 and
       ``min(max_num_patches, remaining)`` tissue cells not yet masked (only those
       cells are masked, so a rectangle meets missing cells without covering them);
       the grid is also done after ``max_attempts`` rectangles in a row were not kept.
       So a grid may end below its target (a grid whose target is under
       ``min_num_patches`` cells stays unmasked), never above it; missing cells are
       never masked.

    Every call takes one draw from ``generator`` (torch's global generator by default),
    which seeds all its other draws, so a seeded run gives the same masks.

    Args:
        mask_probability: Probability that a grid is masked. Defaults to 0.5 (iBOT's
            and DINOv2's).
        min_ratio: Lowest mask ratio (of the tissue cells). Defaults to 0.1.
        max_ratio: Highest mask ratio. Defaults to 0.5.
        min_num_patches: Smallest rectangle, in cells. Defaults to 4.
        max_num_patches: Largest rectangle, in cells; None = no limit. Defaults to None.
        min_aspect: Smallest height/width ratio of a rectangle. Defaults to 0.3.
        max_aspect: Largest one; None = ``1 / min_aspect``. Defaults to None.
        max_attempts: Rectangles in a row that may fail before a grid is done.
            Defaults to 10.

    Shapes:
        ``__call__(tissue (B, H, W) bool) -> (B, H, W) bool`` (True = masked), a subset
        of ``tissue``.

    Example:
        >>> gen = BlockMaskGenerator(mask_probability=1.0)
        >>> masks = gen(torch.ones(4, 8, 8, dtype=torch.bool))
        >>> masks.shape, bool(masks.any())
        (torch.Size([4, 8, 8]), True)
    """

    def __init__(self, mask_probability: float = 0.5, min_ratio: float = 0.1,
                 max_ratio: float = 0.5, min_num_patches: int = 4,
                 max_num_patches: int | None = None, min_aspect: float = 0.3,
                 max_aspect: float | None = None, max_attempts: int = 10) -> None:
        max_aspect = 1 / min_aspect if max_aspect is None and min_aspect > 0 else max_aspect
        if not 0 <= mask_probability <= 1 or not 0 <= min_ratio <= max_ratio <= 1:
            raise ValueError(f'BlockMaskGenerator: need 0 <= mask_probability <= 1 and '
                             f'0 <= min_ratio <= max_ratio <= 1, got {mask_probability}, '
                             f'{min_ratio}, {max_ratio}')
        if min_num_patches < 1 or (max_num_patches is not None
                                   and max_num_patches < min_num_patches):
            raise ValueError(f'BlockMaskGenerator: need 1 <= min_num_patches <= '
                             f'max_num_patches, got {min_num_patches}, {max_num_patches}')
        if not (min_aspect > 0 and max_aspect is not None and min_aspect <= max_aspect) \
                or max_attempts < 1:
            raise ValueError(f'BlockMaskGenerator: need 0 < min_aspect <= max_aspect and '
                             f'max_attempts >= 1, got {min_aspect}, {max_aspect}, '
                             f'{max_attempts}')
        self.mask_probability = mask_probability
        self.min_ratio = min_ratio
        self.max_ratio = max_ratio
        self.min_num_patches = min_num_patches
        self.max_num_patches = max_num_patches
        self.aspect_range = (min_aspect, max_aspect)
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect))
        self.max_attempts = max_attempts

    def ratios(self, num_masked: int, rng: np.random.Generator) -> np.ndarray:
        """``num_masked`` ratios, one per even sub-interval of the range, shuffled."""
        edges = np.linspace(self.min_ratio, self.max_ratio, num_masked + 1)
        return rng.permutation(rng.uniform(edges[:-1], edges[1:]))

    def __call__(self, tissue: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Token masks ``(B, H, W)`` bool, inside ``tissue`` ``(B, H, W)`` bool."""
        if tissue.dim() != 3 or tissue.dtype != torch.bool:
            raise ValueError(f'BlockMaskGenerator expects tissue masks (B, H, W) bool, got '
                             f'{tissue.dtype} {tuple(tissue.shape)}')
        # One draw from torch's generator seeds NumPy's, which makes the many small
        # draws of the loop below (several times faster than torch's on scalars).
        rng = np.random.default_rng(int(torch.randint(2**62, (), generator=generator)))
        cells = tissue.cpu().numpy()
        masks = np.zeros_like(cells)
        chosen = np.flatnonzero(rng.random(len(cells)) < self.mask_probability)
        for b, ratio in zip(chosen, self.ratios(len(chosen), rng)):
            self._fill(masks[b], cells[b], int(ratio * cells[b].sum()), rng)
        return torch.from_numpy(masks).to(tissue.device)

    def _fill(self, mask: np.ndarray, tissue: np.ndarray, target: int,
              rng: np.random.Generator) -> None:
        """Add rectangles of tissue cells to ``mask`` ``(H, W)`` in place, up to ``target``."""
        remaining, failures = target, 0
        while remaining >= self.min_num_patches and failures < self.max_attempts:
            added = self._add_block(mask, tissue, remaining, rng)
            remaining -= added
            failures = 0 if added else failures + 1

    def _add_block(self, mask: np.ndarray, tissue: np.ndarray, remaining: int,
                   rng: np.random.Generator) -> int:
        """Try one rectangle; return how many cells it masked (0 = rejected)."""
        height, width = mask.shape
        largest = remaining if self.max_num_patches is None else min(remaining,
                                                                     self.max_num_patches)
        area = rng.uniform(self.min_num_patches, largest)
        aspect = math.exp(rng.uniform(*self.log_aspect))
        rows = round(math.sqrt(area * aspect))
        cols = round(math.sqrt(area / aspect))
        low, high = self.aspect_range
        if not (1 <= rows <= height and 1 <= cols <= width
                and rows * cols >= self.min_num_patches and low <= rows / cols <= high):
            return 0
        top = int(rng.integers(height - rows + 1))
        left = int(rng.integers(width - cols + 1))
        window = (slice(top, top + rows), slice(left, left + cols))
        new = tissue[window] & ~mask[window]
        added = int(new.sum())
        if not 0 < added <= largest:
            return 0
        mask[window] |= new
        return added
