"""Random numbers keyed by slide id, so that a slide's draws do not depend on its batch.

Shapes: S = slides, R = restarts, K = draws per restart.
"""
from __future__ import annotations

import torch
from torch import Tensor


def slide_uniforms(seed: int, slide_ids: Tensor, restarts: int, draws: int) -> Tensor:
    """Uniform numbers in [0, 1) for each (slide, restart), keyed by slide id.

    Restart ``r`` has its own ``torch.Generator`` (seeded from ``seed`` and ``r``) whose
    stream is laid out as rows of ``draws`` numbers, row ``i`` belonging to slide id
    ``i``. A slide therefore gets the same numbers whatever other slides are clustered
    with it and however many restarts are run (restart ``r`` is the same in a run with
    more restarts). Generated on the CPU, so every device sees the same numbers.

    Args:
        seed: Seed of the whole stream.
        slide_ids: Slide ids with shape (S,), long, >= 0.
        restarts: Number of restarts R.
        draws: Numbers per restart K.

    Returns:
        Tensor: Uniform numbers with shape (S, R, K), float64, on the CPU.
    """
    slide_ids = slide_ids.cpu().long()
    if slide_ids.dim() != 1 or bool((slide_ids < 0).any()):
        raise ValueError(f'slide_ids must be a 1-d tensor of ids >= 0, got {slide_ids}')
    out = torch.empty(len(slide_ids), restarts, draws, dtype=torch.float64)
    if len(slide_ids) == 0:
        return out
    rows = int(slide_ids.max()) + 1
    restart_seeds = torch.randint(2**62, (restarts,),
                                  generator=torch.Generator().manual_seed(seed))
    for r, restart_seed in enumerate(restart_seeds.tolist()):
        generator = torch.Generator().manual_seed(restart_seed)
        table = torch.rand(rows, draws, generator=generator, dtype=torch.float64)
        out[:, r] = table[slide_ids]
    return out
