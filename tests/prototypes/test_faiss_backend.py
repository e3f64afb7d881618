"""The faiss backend: same output contract as the batched k-means."""
from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from slpd_plugin.prototypes import batched_kmeans, faiss_kmeans
from slpd_plugin.prototypes.faiss_backend import (
    GPU_RESOURCES,
    PerDeviceCache,
    _flat_l2_index,
    describe_refresh,
    faiss_gpu_device,
    faiss_info,
)


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


def test_per_device_cache_builds_once_per_device():
    made = []
    cache = PerDeviceCache(lambda device: made.append(device) or object())
    first = cache.get(0)
    assert cache.get(0) is first and cache.get(1) is not first
    assert cache.get(1) is cache.get(1) and made == [0, 1]


def test_device_choice_and_report_follow_the_installed_faiss():
    info = faiss_info()
    assert info['version'] == faiss.__version__
    assert info['gpu_build'] == hasattr(faiss, 'StandardGpuResources')
    usable = info['gpu_build'] and info['num_gpus'] > 0 and torch.cuda.is_available()
    assert (faiss_gpu_device(torch.device('cpu')) is not None) == usable
    line, warning = describe_refresh('faiss', torch.device('cpu'))
    assert f"faiss {info['version']}" in line and line.endswith('on cpu') and warning is None
    line, warning = describe_refresh('torch', torch.device('cpu'))
    assert 'backend torch on cpu' in line and 'shortlist' in line and warning is None
    if not usable:  # a CUDA run asking for faiss k-means gets told it falls back
        line, warning = describe_refresh('faiss', torch.device('cuda', 0))
        assert line.endswith('on cpu') and "pip install -e '.[gpu]'" in warning


@pytest.mark.cuda
@pytest.mark.skipif(not faiss_info()['gpu_build'],
                    reason="needs a GPU build of faiss (pip install -e '.[gpu]')")
def test_gpu_index_on_the_current_device_with_one_cached_resources(clustered):
    x, mask = clustered(4, 50, 8, 3, seed=11, spread=1.0)
    device = torch.cuda.device_count() - 1  # the last GPU: not faiss's default 0 if > 1
    with torch.cuda.device(device):
        assert faiss_gpu_device(torch.device('cpu')) == device
        assert faiss_gpu_device(x.cuda().device) == device
        first = faiss_kmeans(x.cuda(), mask.cuda(), 3)
        resources = GPU_RESOURCES.get(device)
        second = faiss_kmeans(x.cuda(), mask.cuda(), 3)
        assert GPU_RESOURCES.get(device) is resources
        index = _flat_l2_index(8, device)
        assert index.getDevice() == device
    assert first.centroids.device == x.cuda().device
    cpu = faiss_kmeans(x, mask, 3)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    torch.testing.assert_close(first.inertia.cpu(), cpu.inertia, rtol=1e-3, atol=1e-3)
