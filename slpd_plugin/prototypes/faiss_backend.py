"""k-means through faiss, slide by slide, with the original SLPD settings.

Shapes: S = slides, L = padded regions per slide, D = embedding dim, K = clusters.

faiss has no batched k-means, so this loops over slides; it reuses one index (reset
between slides) and, when faiss was built with GPU support and CUDA is available, one
``StandardGpuResources`` for the whole call. It returns the same ``KMeansResult`` as
:func:`~slpd_plugin.prototypes.kmeans.batched_kmeans`, so the two are interchangeable.
"""
from __future__ import annotations

import faiss
import numpy as np
import torch
from torch import Tensor

from .kmeans import KMeansResult


def _flat_l2_index(dim: int) -> tuple[faiss.Index, object]:
    """A flat L2 index, on the GPU when faiss and torch both have one, and its resources.

    The resources (None on the CPU) must outlive the index, so they are returned too.
    """
    if hasattr(faiss, 'StandardGpuResources') and faiss.get_num_gpus() > 0 \
            and torch.cuda.is_available():
        resources = faiss.StandardGpuResources()
        return faiss.GpuIndexFlatL2(resources, dim), resources
    return faiss.IndexFlatL2(dim), None


def faiss_kmeans(x: Tensor, mask: Tensor, k: int, iters: int = 10, restarts: int = 5,
                 seed: int = 0) -> KMeansResult:
    """k-means of each slide with ``faiss.Clustering`` (L2, random init), as SLPD does.

    faiss keeps the restart with the lowest objective. A slide with fewer than ``k``
    valid points (faiss refuses those) gets its points repeated cyclically as centroids;
    a slide with none gets zero centroids. The returned assignments and inertia are
    recomputed against the returned centroids.

    Args:
        x: Points with shape (S, L, D). Values at masked positions are ignored.
        mask: Validity of each point with shape (S, L), bool.
        k: Number of clusters K.
        iters: Lloyd iterations (faiss ``niter``). Defaults to 10.
        restarts: faiss ``nredo``. Defaults to 5.
        seed: faiss ``seed``, the same for every slide. Defaults to 0.

    Returns:
        KMeansResult: centroids (S, K, D), assignments (S, L), inertia (S,), on the
        device of ``x``.
    """
    if x.dim() != 3 or mask.shape != x.shape[:2]:
        raise ValueError(f'x must be (S, L, D) and mask (S, L), got {tuple(x.shape)} '
                         f'and {tuple(mask.shape)}')
    if k < 1 or iters < 0 or restarts < 1:
        raise ValueError(f'need k >= 1, iters >= 0, restarts >= 1; got k={k}, '
                         f'iters={iters}, restarts={restarts}')
    num_slides, length, dim = x.shape
    points = x.detach().float().cpu().numpy()
    valid = mask.cpu().numpy()
    centroids = np.zeros((num_slides, k, dim), dtype=np.float32)
    assignments = np.full((num_slides, length), -1, dtype=np.int64)
    inertia = np.zeros(num_slides, dtype=np.float32)
    index, _resources = _flat_l2_index(dim)
    for s in range(num_slides):
        xs = np.ascontiguousarray(points[s][valid[s]])
        if len(xs) == 0:
            continue
        index.reset()
        if len(xs) < k:
            index.add(xs[np.arange(k) % len(xs)])
        else:
            clustering = faiss.Clustering(dim, k)
            clustering.niter = iters
            clustering.nredo = restarts
            clustering.seed = seed
            # Only silences faiss' "please provide at least K*39 points" warning.
            clustering.min_points_per_centroid = 1
            clustering.train(xs, index)
        centroids[s] = index.reconstruct_n(0, k)
        dist, nearest = index.search(xs, 1)
        assignments[s, valid[s]] = nearest[:, 0]
        inertia[s] = dist.sum()
    return KMeansResult(
        torch.from_numpy(centroids).to(x.device),
        torch.from_numpy(assignments).to(x.device),
        torch.from_numpy(inertia).to(x.device))
