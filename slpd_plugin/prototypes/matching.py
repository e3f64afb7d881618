"""Set-to-set similarity of prototype sets, and the matched prototype of a neighbour.

Shapes: A, B = slides on each side, K = prototypes per slide, D = embedding dim,
P = K! permutations, M = candidates per slide, S = slides, r = neighbours per slide.

SLPD's slide similarity is ``S(a, b) = max over permutations pi of
sum_k <a_k, b_pi(k)>``, an optimal one-to-one matching (a linear assignment problem).
For small K every permutation is scored at once: the (K, K) inner products of a pair,
flattened to K*K, times a fixed (K*K, P) 0/1 matrix give all P matching scores in one
matrix multiply. Beyond ``ENUMERATE_MAX_K`` that matrix grows as K! and each pair is
solved exactly by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``)
instead.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

# Largest K scored by enumerating the K! permutations (720 at K = 6). Measured on 1 CPU
# thread, 300 x 300 pairs, D = 256, best of 3 interleaved runs: K = 6 enumerating
# 2.7 us a pair, Hungarian loop 4.5 us; K = 7 enumerating 19.3 us, Hungarian 5.2 us.
ENUMERATE_MAX_K = 6
_CHUNK_BYTES = 256 * 2**20


@functools.lru_cache(maxsize=None)
def _permutation_matrix(k: int) -> Tensor:
    """0/1 matrix (K*K, P) whose column p selects entries (i, pi_p(i)) of a (K, K) grid."""
    perms = torch.tensor(list(itertools.permutations(range(k))), dtype=torch.long)
    matrix = torch.zeros(k * k, len(perms))
    flat = torch.arange(k)[None, :] * k + perms
    matrix[flat, torch.arange(len(perms))[:, None]] = 1
    return matrix


def max_matching_score(inner: Tensor) -> Tensor:
    """Best one-to-one matching score of each (K, K) matrix of inner products.

    Args:
        inner: Inner products with shape (..., K, K); ``inner[..., i, j] = <a_i, b_j>``.

    Returns:
        Tensor: ``max over pi of sum_i inner[..., i, pi(i)]`` with shape (...).
    """
    if inner.dim() < 2 or inner.shape[-1] != inner.shape[-2]:
        raise ValueError(f'inner must have shape (..., K, K), got {tuple(inner.shape)}')
    k = inner.shape[-1]
    lead = inner.shape[:-2]
    flat = inner.reshape(-1, k, k)
    if k <= ENUMERATE_MAX_K:
        perms = _permutation_matrix(k).to(device=inner.device, dtype=inner.dtype)
        return (flat.reshape(-1, k * k) @ perms).amax(-1).reshape(lead)
    costs = flat.detach().double().cpu().numpy()
    scores = np.empty(len(costs))
    for i, cost in enumerate(costs):
        rows, cols = linear_sum_assignment(cost, maximize=True)
        scores[i] = cost[rows, cols].sum()
    return torch.from_numpy(scores).to(device=inner.device, dtype=inner.dtype).reshape(lead)


def _rows_per_chunk(pairs_per_row: int, k: int) -> int:
    """Rows of ``a`` per chunk so that one chunk's work stays under _CHUNK_BYTES."""
    scores = math.factorial(k) if k <= ENUMERATE_MAX_K else 2 * k * k
    per_pair = 4 * (3 * k * k + scores)
    return max(1, _CHUNK_BYTES // max(1, pairs_per_row * per_pair))


def _check_sets(a: Tensor, b: Tensor, b_dims: int) -> None:
    if a.dim() != 3 or b.dim() != b_dims or a.shape[1:] != b.shape[-2:]:
        raise ValueError(f'prototype sets must share (K, D): got a {tuple(a.shape)} and '
                         f'b {tuple(b.shape)}')


def set_similarity(a: Tensor, b: Tensor, chunk_size: int | None = None) -> Tensor:
    """Set similarity of every slide of ``a`` with every slide of ``b``.

    Args:
        a: Prototype sets with shape (A, K, D).
        b: Prototype sets with shape (B, K, D).
        chunk_size: Rows of ``a`` scored at once. Defaults to None (chosen so that a
            chunk takes ~256 MB).

    Returns:
        Tensor: ``S(a_i, b_j)`` with shape (A, B).
    """
    _check_sets(a, b, 3)
    k = a.shape[1]
    rows = chunk_size or _rows_per_chunk(len(b), k)
    out = a.new_empty(len(a), len(b))
    for i in range(0, len(a), rows):
        inner = torch.einsum('akd,bld->abkl', a[i:i + rows], b)
        out[i:i + rows] = max_matching_score(inner)
    return out


def set_similarity_paired(a: Tensor, b: Tensor, chunk_size: int | None = None) -> Tensor:
    """Set similarity of each slide of ``a`` with each of its own candidates.

    Args:
        a: Prototype sets with shape (A, K, D).
        b: Candidate prototype sets with shape (A, M, K, D).
        chunk_size: Rows of ``a`` scored at once. Defaults to None (~256 MB chunks).

    Returns:
        Tensor: ``S(a_i, b_ij)`` with shape (A, M).
    """
    _check_sets(a, b, 4)
    if b.shape[0] != a.shape[0]:
        raise ValueError(f'b must have one row per slide of a ({len(a)}), got {len(b)}')
    rows = chunk_size or _rows_per_chunk(b.shape[1], a.shape[1])
    out = a.new_empty(b.shape[:2])
    for i in range(0, len(a), rows):
        inner = torch.einsum('akd,amld->amkl', a[i:i + rows], b[i:i + rows])
        out[i:i + rows] = max_matching_score(inner)
    return out


def match_prototypes(a: Tensor, b: Tensor, neighbors: Tensor | None = None) -> Tensor:
    """Nearest prototype of a neighbour for each prototype (argmax of inner product).

    This is SLPD's matched prototype ``m(a, k) = argmax_l <a_k, b_l>``, not the
    permutation that defines the set similarity.

    Args:
        a: Prototypes with shape (S, K, D).
        b: Without ``neighbors``: the neighbour of each slide, shape (S, K, D). With
            ``neighbors``: every slide's prototypes, shape (S', K, D).
        neighbors: Rows of ``b`` that are the neighbours of each slide of ``a``, shape
            (S, r), long, -1 for none. Defaults to None.

    Returns:
        Tensor: Without ``neighbors``, index of the matched prototype with shape (S, K).
        With ``neighbors``, shape (S, K, r), -1 where the neighbour is -1.
    """
    if neighbors is None:
        _check_sets(a, b, 3)
        if len(a) != len(b):
            raise ValueError(f'a and b must have the same number of slides, got '
                             f'{len(a)} and {len(b)}')
        return torch.einsum('skd,sld->skl', a, b).argmax(-1)
    _check_sets(a, b, 3)
    if neighbors.shape[0] != len(a) or neighbors.dim() != 2:
        raise ValueError(f'neighbors must have shape ({len(a)}, r), got '
                         f'{tuple(neighbors.shape)}')
    k = a.shape[1]
    out = torch.full((len(a), k, neighbors.shape[1]), -1, dtype=torch.long,
                     device=a.device)
    rows = max(1, _CHUNK_BYTES // (4 * k * a.shape[2] * max(1, neighbors.shape[1])))
    for i in range(0, len(a), rows):
        nb = neighbors[i:i + rows]
        sims = torch.einsum('skd,srld->skrl', a[i:i + rows], b[nb.clamp_min(0)])
        out[i:i + rows] = torch.where(nb[:, None, :] >= 0, sims.argmax(-1), -1)
    return out
