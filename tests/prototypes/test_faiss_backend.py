"""The faiss backend: same output contract as the batched k-means."""
from __future__ import annotations

import faiss
import numpy as np
import torch

from slpd_plugin.prototypes import batched_kmeans, faiss_kmeans


def test_matches_a_direct_faiss_call_per_slide(clustered):
    x, mask = clustered(4, 50, 8, 3, seed=11, spread=1.0)
    result = faiss_kmeans(x, mask, 3)
    for s in range(4):
        points = np.ascontiguousarray(x[s][mask[s]].numpy())
        clustering = faiss.Clustering(8, 3)
        clustering.niter, clustering.nredo, clustering.seed = 10, 5, 0
        clustering.min_points_per_centroid = 1
        index = faiss.IndexFlatL2(8)
        clustering.train(points, index)
        expected = faiss.vector_to_array(clustering.centroids).reshape(3, 8)
        assert np.array_equal(result.centroids[s].numpy(), expected)


def test_same_contract_as_batched_kmeans(clustered):
    x, mask = clustered(5, 40, 8, 3, seed=12, spread=1.0)
    ours, theirs = batched_kmeans(x, mask, 3), faiss_kmeans(x, mask, 3)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
    for s in range(5):
        points = x[s][mask[s]].double()
        dist = ((points[:, None] - theirs.centroids[s].double()[None]) ** 2).sum(-1)
        assert torch.equal(theirs.assignments[s][mask[s]], dist.argmin(1))
        assert (theirs.assignments[s][~mask[s]] == -1).all()
        torch.testing.assert_close(theirs.inertia[s].double(), dist.min(1).values.sum(),
                                   rtol=1e-4, atol=1e-4)


def test_fewer_points_than_clusters(clustered):
    x, mask = clustered(2, 10, 4, 2, seed=13)
    mask[0] = torch.arange(10) < 2
    mask[1] = False
    result = faiss_kmeans(x, mask, 3)
    assert torch.equal(result.centroids[0], x[0, [0, 1, 0]])
    assert (result.centroids[1] == 0).all() and (result.assignments[1] == -1).all()
