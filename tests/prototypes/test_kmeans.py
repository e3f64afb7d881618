"""Batched k-means against brute-force references and against faiss."""
from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slpd_plugin.prototypes import batched_kmeans
from slpd_plugin.prototypes.kmeans import INITS, _distances, _update
from slpd_plugin.prototypes.seeding import slide_uniforms


def _reference_distances(points: torch.Tensor, centroids: torch.Tensor,
                         spherical: bool) -> torch.Tensor:
    """Plain float64 distances (n, K) between points (n, D) and centroids (K, D)."""
    points, centroids = points.double(), centroids.double()
    if spherical:
        return 1 - F.normalize(points, dim=-1) @ centroids.T
    return ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)


@pytest.mark.parametrize('init', INITS)
@pytest.mark.parametrize('spherical', [False, True])
def test_assignments_and_inertia_match_brute_force(clustered, init, spherical):
    x, mask = clustered(6, 40, 8, 3, seed=1, spread=1.0)
    result = batched_kmeans(x, mask, 3, init=init, spherical=spherical)
    assert result.centroids.shape == (6, 3, 8)
    for s in range(6):
        dist = _reference_distances(x[s][mask[s]], result.centroids[s], spherical)
        assigned = result.assignments[s][mask[s]]
        chosen = dist.gather(1, assigned[:, None]).squeeze(1)
        torch.testing.assert_close(chosen, dist.min(1).values, atol=1e-5, rtol=0)
        assert (result.assignments[s][~mask[s]] == -1).all()
        torch.testing.assert_close(result.inertia[s].double(), dist.min(1).values.sum(),
                                   atol=1e-3, rtol=1e-5)
    if spherical:
        torch.testing.assert_close(result.centroids.norm(dim=-1), torch.ones(6, 3))


def test_inertia_within_two_percent_of_faiss(clustered):
    x, mask = clustered(12, 120, 32, 4, seed=2, spread=1.5)
    ours = batched_kmeans(x, mask, 4, iters=10, restarts=5, seed=0).inertia.sum().item()
    theirs = 0.0
    for s in range(len(x)):
        points = np.ascontiguousarray(x[s][mask[s]].numpy())
        clustering = faiss.Clustering(32, 4)
        clustering.niter, clustering.nredo, clustering.seed = 10, 5, 0
        clustering.min_points_per_centroid = 1
        index = faiss.IndexFlatL2(32)
        clustering.train(points, index)
        theirs += float(index.search(points, 1)[0].sum())
    assert abs(ours - theirs) <= 0.02 * theirs


def test_restarts_never_increase_inertia(clustered):
    x, mask = clustered(16, 60, 8, 6, seed=3, spread=1.5)
    inertias = [batched_kmeans(x, mask, 6, iters=3, restarts=r, init='random').inertia
                for r in range(1, 6)]
    for fewer, more in zip(inertias, inertias[1:]):
        assert (more <= fewer).all()
    assert (inertias[-1] < inertias[0]).any()


def test_stopping_at_a_fixed_point_changes_nothing(clustered, monkeypatch):
    x, mask = clustered(8, 40, 8, 3, seed=9, spread=1.0)
    stopped = batched_kmeans(x, mask, 3, iters=25)
    equal = torch.equal
    monkeypatch.setattr(torch, 'equal', lambda a, b: False)
    every_iteration = batched_kmeans(x, mask, 3, iters=25)
    monkeypatch.undo()
    assert all(equal(a, b) for a, b in zip(stopped, every_iteration))


def test_recovers_well_separated_clusters(clustered):
    x, mask = clustered(5, 50, 16, 4, seed=4, spread=0.01)
    result = batched_kmeans(x, mask, 4)
    for s in range(5):
        points = x[s][mask[s]]
        truth = torch.cdist(points, points) < 0.5
        found = result.assignments[s][mask[s]]
        assert torch.equal(truth, found[:, None] == found[None, :])


def test_one_cluster_is_the_mean(clustered):
    x, mask = clustered(4, 30, 8, 2, seed=5)
    result = batched_kmeans(x, mask, 1)
    for s in range(4):
        mean = x[s][mask[s]].double().mean(0)
        torch.testing.assert_close(result.centroids[s, 0].double(), mean, atol=1e-5,
                                   rtol=0)
    assert (result.assignments[mask] == 0).all()


@pytest.mark.parametrize('init', INITS)
def test_fewer_points_than_clusters(clustered, init):
    x, mask = clustered(3, 20, 8, 2, seed=6)
    mask[0] = torch.arange(20) < 2
    mask[1] = False
    result = batched_kmeans(x, mask, 4, init=init)
    assert torch.isfinite(result.centroids).all()
    used = {tuple(c.tolist()) for c in result.centroids[0]}
    assert used == {tuple(p.tolist()) for p in x[0, :2]}
    assert abs(result.inertia[0].item()) < 1e-4
    assert (result.centroids[1] == 0).all() and (result.assignments[1] == -1).all()
    alone = batched_kmeans(x[2:], mask[2:], 4, init=init, slide_ids=torch.tensor([2]))
    assert torch.equal(alone.centroids[0], result.centroids[2])


def test_duplicated_points_give_no_nan():
    x = torch.ones(2, 10, 4)
    x[1, 5:] = -1
    mask = torch.ones(2, 10, dtype=torch.bool)
    for spherical in (False, True):
        result = batched_kmeans(x, mask, 3, spherical=spherical)
        assert torch.isfinite(result.centroids).all()
        torch.testing.assert_close(result.inertia, torch.zeros(2), atol=1e-5, rtol=0)


def test_empty_cluster_takes_the_farthest_point():
    x = torch.tensor([[[0., 0.], [0.1, 0.], [0., 0.2], [1., 1.], [1.2, 1.], [3., 3.]]])
    mask = torch.ones(1, 6, dtype=torch.bool)
    gram = x @ x.transpose(1, 2)
    # Centroids as weights over the points: mean of points 0-2, point 3, 10 * point 5.
    weights = torch.tensor([[[[1 / 3, 1 / 3, 1 / 3, 0, 0, 0], [0, 0, 0, 1, 0, 0],
                              [0, 0, 0, 0, 0, 10]]]])
    updated = _update(gram, mask, _distances(gram, weights, spherical=False),
                      spherical=False)
    new_centroids = (updated @ x)[0, 0]
    ref = _reference_distances(x[0], (weights @ x)[0, 0], spherical=False)
    nearest = ref.argmin(1)
    assert (nearest != 2).all()
    for j in (0, 1):
        torch.testing.assert_close(new_centroids[j], x[0][nearest == j].mean(0))
    farthest = ref.min(1).values.argmax()
    assert torch.equal(new_centroids[2], x[0, farthest])


def test_all_clusters_used_when_enough_distinct_points():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(20, 6, 3, generator=g)
    mask = torch.ones(20, 6, dtype=torch.bool)
    result = batched_kmeans(x, mask, 5, iters=2, restarts=1)
    for s in range(20):
        assert torch.bincount(result.assignments[s], minlength=5).min() > 0


def test_seeded_by_slide_not_by_batch(clustered):
    x, mask = clustered(10, 30, 8, 3, seed=8, spread=1.0)
    full = batched_kmeans(x, mask, 3)
    again = batched_kmeans(x, mask, 3)
    rows = torch.tensor([7, 2, 5])
    part = batched_kmeans(x[rows], mask[rows], 3, slide_ids=rows)
    assert all(torch.equal(a, b) for a, b in zip(full, again))
    assert all(torch.equal(a[rows], b) for a, b in zip(full, part))
    other_seed = batched_kmeans(x, mask, 3, restarts=1, seed=1)
    assert not torch.equal(batched_kmeans(x, mask, 3, restarts=1).centroids,
                           other_seed.centroids)


def test_slide_uniforms_are_keyed_by_slide_and_restart():
    full = slide_uniforms(3, torch.arange(50), 4, 2)
    part = slide_uniforms(3, torch.tensor([40, 1]), 2, 2)
    assert torch.equal(part, full[[40, 1], :2])
    assert ((full >= 0) & (full < 1)).all()


@pytest.mark.parametrize('kwargs, match', [
    (dict(k=0), 'k >= 1'), (dict(k=2, restarts=0), 'restarts'),
    (dict(k=2, init='forgy'), 'forgy'),
])
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        batched_kmeans(torch.zeros(1, 4, 2), torch.ones(1, 4, dtype=torch.bool), **kwargs)
