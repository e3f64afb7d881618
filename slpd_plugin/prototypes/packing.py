"""Regions grouped by slide into a padded (slides, regions, dim) tensor, without loops.

Shapes: N = regions, S = slides, C = slides packed, L = padded length, D = dim.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class SlideLayout(NamedTuple):
    """Where each slide's regions sit once regions are sorted by slide.

    Attributes:
        order: Region indices sorted by slide (stable), shape (N,).
        counts: Regions per slide, shape (S,).
        offsets: Position of each slide's first region in ``order``, shape (S,).
    """

    order: Tensor
    counts: Tensor
    offsets: Tensor


def slide_layout(slide_index: Tensor, num_slides: int) -> SlideLayout:
    """Sort regions by slide once, for any number of later :func:`pack_slides` calls.

    Args:
        slide_index: Slide of each region, shape (N,), long in [0, S).
        num_slides: Number of slides S.

    Returns:
        SlideLayout: order (N,), counts (S,), offsets (S,).
    """
    order = torch.argsort(slide_index, stable=True)
    counts = torch.bincount(slide_index, minlength=num_slides)
    return SlideLayout(order, counts, torch.cumsum(counts, 0) - counts)


def pack_slides(embeddings: Tensor, layout: SlideLayout, slides: Tensor,
                length: int) -> tuple[Tensor, Tensor, Tensor]:
    """Regions of the given slides, padded (or truncated) to ``length`` per slide.

    Padding positions hold arbitrary regions (no zeroing pass): read them only through
    the mask.

    Args:
        embeddings: Region embeddings with shape (N, D).
        layout: Layout from :func:`slide_layout`.
        slides: Slides to pack, shape (C,), long.
        length: Padded length L.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Points (C, L, D); mask (C, L), bool; region
        index of each point (C, L), long, -1 at padding.
    """
    steps = torch.arange(length, device=embeddings.device)
    mask = steps[None, :] < layout.counts[slides][:, None]
    pos = (layout.offsets[slides][:, None] + steps[None, :]).clamp_max(len(layout.order) - 1)
    regions = torch.where(mask, layout.order[pos], -1)
    points = embeddings.index_select(0, layout.order[pos].flatten())
    return points.view(*pos.shape, embeddings.shape[1]), mask, regions
