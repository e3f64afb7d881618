"""Set similarity and matched prototypes against brute-force references."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from slpd_plugin.prototypes import (
    match_prototypes,
    max_matching_score,
    set_similarity,
    set_similarity_paired,
)


def _prototypes(n: int, k: int, seed: int, dim: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, k, dim, generator=g), dim=-1)


def _by_permutations(a: torch.Tensor, b: torch.Tensor) -> float:
    """Best matching of two sets (K, D) by trying every permutation."""
    k = len(a)
    return max(sum(float(a[i].double() @ b[p[i]].double()) for i in range(k))
               for p in itertools.permutations(range(k)))


def _by_hungarian(a: torch.Tensor, b: torch.Tensor) -> float:
    cost = (a.double() @ b.double().T).numpy()
    rows, cols = linear_sum_assignment(-cost)
    return float(cost[rows, cols].sum())


@pytest.mark.parametrize('k', [1, 2, 3, 4, 5])
def test_equals_permutation_search(k):
    a, b = _prototypes(4, k, seed=k), _prototypes(5, k, seed=100 + k)
    ref = torch.tensor([[_by_permutations(x, y) for y in b] for x in a], dtype=torch.float64)
    torch.testing.assert_close(set_similarity(a, b).double(), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize('k', [1, 3, 5, 6, 7, 9, 12, 16])
def test_equals_linear_sum_assignment(k):
    a, b = _prototypes(6, k, seed=k), _prototypes(7, k, seed=200 + k)
    ref = torch.tensor([[_by_hungarian(x, y) for y in b] for x in a], dtype=torch.float64)
    torch.testing.assert_close(set_similarity(a, b).double(), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize('k', [6, 7])
def test_max_matching_score_equals_permutation_search(k):
    g = torch.Generator().manual_seed(k)
    inner = torch.randn(3, k, k, generator=g)
    ref = [max(sum(float(m[i, p[i]]) for i in range(k))
               for p in itertools.permutations(range(k))) for m in inner]
    torch.testing.assert_close(max_matching_score(inner).double(),
                               torch.tensor(ref, dtype=torch.float64),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize('k', [4, 8])
def test_chunks_and_pairs_agree_with_full_matrix(k):
    a, b = _prototypes(9, k, seed=1), _prototypes(6, k, seed=2)
    full = set_similarity(a, b)
    torch.testing.assert_close(set_similarity(a, b, chunk_size=2), full)
    picks = torch.tensor([[0, 5], [3, 3], [1, 2]]).repeat(3, 1)
    paired = set_similarity_paired(a, b[picks], chunk_size=4)
    torch.testing.assert_close(paired, full.gather(1, picks))


def test_matched_prototype_is_the_argmax():
    a, b = _prototypes(5, 4, seed=3), _prototypes(5, 4, seed=4)
    ref = torch.tensor([[int(np.argmax([float(a[s, k] @ b[s, m]) for m in range(4)]))
                         for k in range(4)] for s in range(5)])
    assert torch.equal(match_prototypes(a, b), ref)


def test_matched_prototype_through_neighbors():
    bank = _prototypes(6, 3, seed=5)
    neighbors = torch.tensor([[1, 2], [0, -1], [5, 4], [-1, -1], [2, 0], [3, 1]])
    matched = match_prototypes(bank, bank, neighbors)
    assert matched.shape == (6, 3, 2)
    for s in range(6):
        for j in range(2):
            n = int(neighbors[s, j])
            expected = (torch.full((3,), -1) if n < 0
                        else match_prototypes(bank[s:s + 1], bank[n:n + 1])[0])
            assert torch.equal(matched[s, :, j], expected)


def test_mismatched_sets_raise():
    with pytest.raises(ValueError, match='share'):
        set_similarity(torch.zeros(2, 3, 4), torch.zeros(2, 2, 4))
