"""Baseline for benchmarks/prototypes.py: the prototype refresh as the original SLPD does it.

A plain re-implementation written for timing, not the original code. Per slide: a new
``faiss.Clustering`` (L2, 10 iterations, 5 restarts, seed 0) and a new
``faiss.IndexFlatL2``. Then a Python loop over all ordered pairs of valid slides,
scoring each pair by every one of the K! permutations. Numpy scores a pair's K!
permutations in one fancy-indexing call, which is faster than a Python loop over
permutations, so if anything the baseline is flattered.

Shapes: N = regions, D = dim, S = slides, K = prototypes per slide.
"""
from __future__ import annotations

import itertools

import faiss
import numpy as np


def cluster_per_slide(embeddings: np.ndarray, slide_index: np.ndarray, num_slides: int,
                      k: int, min_regions: int, iters: int = 10, restarts: int = 5,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One faiss k-means per slide with enough regions.

    Args:
        embeddings: Region embeddings (N, D), float32.
        slide_index: Slide of each region (N,).
        num_slides: Number of slides S.
        k: Prototypes per slide K.
        min_regions: Fewest regions a slide needs.
        iters: faiss ``niter``. Defaults to 10.
        restarts: faiss ``nredo``. Defaults to 5.
        seed: faiss ``seed``. Defaults to 0.

    Returns:
        tuple: Normalised prototypes (S, K, D); validity (S,); assignment of each region
        (N,), -1 for regions of slides without prototypes.
    """
    z = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    members: list[list[int]] = [[] for _ in range(num_slides)]
    for region, slide in enumerate(slide_index.tolist()):
        members[slide].append(region)
    dim = z.shape[1]
    centroids = np.zeros((num_slides, k, dim), dtype=np.float32)
    valid = np.zeros(num_slides, dtype=bool)
    assignments = np.full(len(z), -1, dtype=np.int64)
    for slide, regions in enumerate(members):
        if len(regions) < min_regions:
            continue
        x = np.ascontiguousarray(z[regions])
        clustering = faiss.Clustering(dim, k)
        clustering.niter, clustering.nredo, clustering.seed = iters, restarts, seed
        clustering.min_points_per_centroid = 1
        index = faiss.IndexFlatL2(dim)
        clustering.train(x, index)
        c = faiss.vector_to_array(clustering.centroids).reshape(k, dim)
        centroids[slide] = c / np.linalg.norm(c, axis=1, keepdims=True)
        assignments[regions] = (x @ centroids[slide].T).argmax(1)
        valid[slide] = True
    return centroids, valid, assignments


def neighbours_by_permutations(centroids: np.ndarray, valid: np.ndarray,
                               rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Most similar other valid slide of each slide in ``rows``, and matched prototypes.

    Args:
        centroids: Prototypes (S, K, D).
        valid: Validity (S,).
        rows: Slides to find a neighbour for.

    Returns:
        tuple: Neighbour of each row (len(rows),), -1 if none; matched prototype of each
        of its prototypes (len(rows), K).
    """
    k = centroids.shape[1]
    perms = np.array(list(itertools.permutations(range(k))))
    diagonal = np.arange(k)[None, :]
    candidates = np.flatnonzero(valid).tolist()
    neighbours = np.full(len(rows), -1, dtype=np.int64)
    matched = np.full((len(rows), k), -1, dtype=np.int64)
    for i, a in enumerate(rows):
        if not valid[a]:
            continue
        best_score = -np.inf
        for b in candidates:
            if b == a:
                continue
            inner = centroids[a] @ centroids[b].T
            score = inner[diagonal, perms].sum(1).max()
            if score > best_score:
                best_score, neighbours[i] = score, b
        if neighbours[i] >= 0:
            matched[i] = (centroids[a] @ centroids[neighbours[i]].T).argmax(1)
    return neighbours, matched
