"""Neighbour slides against a brute-force ranking of all pairs."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from slpd_plugin.prototypes import find_neighbors


def _prototypes(n: int, k: int, seed: int, dim: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, k, dim, generator=g), dim=-1)


def _best_matching(inner: torch.Tensor) -> float:
    """Permutation search for K <= 5, the Hungarian algorithm above."""
    k = len(inner)
    if k <= 5:
        return max(sum(float(inner[i, p[i]]) for i in range(k))
                   for p in itertools.permutations(range(k)))
    rows, cols = linear_sum_assignment(inner.numpy(), maximize=True)
    return float(inner[rows, cols].sum())


def _brute_force(centroids: torch.Tensor, valid: torch.Tensor,
                 r: int) -> list[list[tuple[int, float]]]:
    """For each slide, its r best other valid slides, scoring every pair."""
    out = []
    for s in range(len(centroids)):
        if not valid[s]:
            out.append([])
            continue
        scores = []
        for t in range(len(centroids)):
            if t == s or not valid[t]:
                continue
            inner = centroids[s].double() @ centroids[t].double().T
            scores.append((t, _best_matching(inner)))
        out.append(sorted(scores, key=lambda item: -item[1])[:r])
    return out


def _check(neighbors, similarity, expected, r):
    for s, best in enumerate(expected):
        assert neighbors[s, :len(best)].tolist() == [t for t, _ in best]
        torch.testing.assert_close(similarity[s, :len(best)].double(),
                                   torch.tensor([v for _, v in best], dtype=torch.float64),
                                   atol=1e-5, rtol=0)
        assert (neighbors[s, len(best):] == -1).all()
        assert similarity[s, len(best):].isnan().all()


@pytest.mark.parametrize('k, r', [(1, 1), (3, 2), (4, 3), (7, 2), (16, 1)])
def test_exact_equals_brute_force(k, r):
    centroids = _prototypes(30, k, seed=k)
    valid = torch.rand(30, generator=torch.Generator().manual_seed(r)) > 0.3
    neighbors, similarity = find_neighbors(centroids, valid, num_neighbors=r)
    _check(neighbors, similarity, _brute_force(centroids, valid, r), r)
    rows = torch.arange(30)[:, None]
    assert not (neighbors == rows).any()
    assert valid[neighbors[neighbors >= 0]].all()
    assert (neighbors[~valid] == -1).all()


def test_exact_when_the_bound_is_loose():
    """Decoys (v, -v, -v), v close to all of slide 0's prototypes, have the highest
    upper bound sum_k max_l <a_k, b_l> for slide 0 but a poor one-to-one matching."""
    centroids = _prototypes(24, 3, seed=11)
    v = F.normalize(centroids[0].sum(0), dim=0)
    g = torch.Generator().manual_seed(12)
    decoys = torch.stack([v, -v, -v]) + 0.01 * torch.randn(12, 3, 6, generator=g)
    centroids[1:13] = F.normalize(decoys, dim=-1)
    valid = torch.ones(24, dtype=torch.bool)
    neighbors, similarity = find_neighbors(centroids, valid, num_neighbors=2)
    _check(neighbors, similarity, _brute_force(centroids, valid, 2), 2)
    assert neighbors[0, 0] > 12


def test_shortlist_with_every_candidate_equals_exact():
    centroids = _prototypes(40, 3, seed=7)
    valid = torch.ones(40, dtype=torch.bool)
    valid[[3, 17]] = False
    exact = find_neighbors(centroids, valid, num_neighbors=2)
    shortlisted = find_neighbors(centroids, valid, num_neighbors=2, exact_max_slides=5,
                                 shortlist=40)
    assert torch.equal(exact[0], shortlisted[0])
    torch.testing.assert_close(exact[1], shortlisted[1], equal_nan=True)


def test_short_shortlist_keeps_rules():
    centroids = _prototypes(50, 4, seed=8)
    valid = torch.arange(50) % 7 != 0
    neighbors, similarity = find_neighbors(centroids, valid, num_neighbors=3,
                                           exact_max_slides=0, shortlist=4)
    assert not (neighbors == torch.arange(50)[:, None]).any()
    assert valid[neighbors[neighbors >= 0]].all()
    assert (neighbors[~valid] == -1).all() and (neighbors[valid] >= 0).all()
    assert (similarity[valid][:, :-1] >= similarity[valid][:, 1:]).all()


def test_fewer_valid_slides_than_neighbours_pads():
    centroids = _prototypes(5, 2, seed=9)
    valid = torch.tensor([True, False, True, False, False])
    neighbors, similarity = find_neighbors(centroids, valid, num_neighbors=3)
    assert neighbors.tolist() == [[2, -1, -1], [-1] * 3, [0, -1, -1], [-1] * 3, [-1] * 3]
    assert similarity.isnan().sum() == 13


def test_single_slide_has_no_neighbour():
    neighbors, similarity = find_neighbors(_prototypes(1, 4, seed=10),
                                           torch.tensor([True]), num_neighbors=2)
    assert neighbors.tolist() == [[-1, -1]] and similarity.isnan().all()
