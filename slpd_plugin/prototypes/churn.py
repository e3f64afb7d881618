"""How much the prototype assignments changed between two refreshes."""
from __future__ import annotations

import torch
from torch import Tensor


def assignment_churn(old: Tensor, new: Tensor, slide_index: Tensor, num_clusters: int) -> float:
    """Fraction of regions whose prototype changed, up to renaming of prototypes.

    k-means numbers its clusters arbitrarily, so each new prototype of a slide is first
    mapped to the old prototype it shares most regions with; a region has churned when
    its old prototype is not the one its new prototype maps to. Only regions with a
    prototype in both refreshes count.

    Args:
        old: Assignments of the previous refresh, shape (N,), -1 for none.
        new: Assignments of this refresh, shape (N,), -1 for none.
        slide_index: Slide of each region, shape (N,).
        num_clusters: K.

    Returns:
        Churn in [0, 1]; NaN when no region has a prototype in both refreshes.
    """
    both = (old >= 0) & (new >= 0)
    if not bool(both.any()):
        return float('nan')
    k = num_clusters
    cell = (slide_index[both] * k + new[both]) * k + old[both]  # (slide, new, old)
    table = torch.bincount(cell, minlength=int(slide_index.max() + 1) * k * k)
    agreeing = table.view(-1, k, k).max(dim=2).values.sum()  # best old match per new
    return 1.0 - agreeing.item() / int(both.sum())
