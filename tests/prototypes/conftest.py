"""Synthetic clustered region embeddings shared by the prototype tests."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import Tensor


def make_clustered(num_slides: int, length: int, dim: int, k: int, seed: int,
                   spread: float = 0.3) -> tuple[Tensor, Tensor]:
    """Padded points (S, L, D) drawn around k random centres per slide, and a mask.

    Each slide has between L // 2 and L valid points.
    """
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_slides, k, dim, generator=g)
    labels = torch.randint(0, k, (num_slides, length), generator=g)
    points = torch.gather(centres, 1, labels[..., None].expand(-1, -1, dim))
    points = points + spread * torch.randn(num_slides, length, dim, generator=g)
    counts = torch.randint(length // 2, length + 1, (num_slides,), generator=g)
    mask = torch.arange(length)[None, :] < counts[:, None]
    return points, mask


def make_regions(counts: list[int], dim: int, seed: int, k: int = 3) -> tuple[Tensor, Tensor]:
    """Region embeddings (N, D) and a shuffled slide index (N,) with the given counts."""
    g = torch.Generator().manual_seed(seed)
    slide_index = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    slide_index = slide_index[torch.randperm(len(slide_index), generator=g)]
    centres = torch.randn(len(counts), k, dim, generator=g)
    labels = torch.randint(0, k, (len(slide_index),), generator=g)
    embeddings = centres[slide_index, labels] + 0.5 * torch.randn(len(slide_index), dim,
                                                                  generator=g)
    return embeddings, slide_index


@pytest.fixture
def clustered() -> Callable[..., tuple[Tensor, Tensor]]:
    return make_clustered


@pytest.fixture
def regions() -> Callable[..., tuple[Tensor, Tensor]]:
    return make_regions
