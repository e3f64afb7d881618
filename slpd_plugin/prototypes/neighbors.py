"""Nearest slides by set similarity of their prototypes.

Shapes: S = slides, V = slides with prototypes, K = prototypes per slide,
D = embedding dim, r = neighbours per slide, M = shortlist length.
"""
from __future__ import annotations

import faiss
import torch
from torch import Tensor

from .matching import set_similarity, set_similarity_paired

_CHUNK_BYTES = 256 * 2**20


def find_neighbors(centroids: Tensor, valid: Tensor, num_neighbors: int = 1,
                   exact_max_slides: int = 20000,
                   shortlist: int = 64) -> tuple[Tensor, Tensor]:
    """Top-r other slides of each slide by set similarity of the prototype sets.

    Only slides with prototypes (``valid``) take part: an invalid slide gets a row of
    -1 and is never anyone's neighbour; a slide is never its own neighbour. Rows with
    fewer than r candidates are padded with -1 (similarity NaN).

    With at most ``exact_max_slides`` valid slides every pair is scored exactly, in
    chunks of rows (~256 MB each). Above that the V² exact pass is too slow, so each
    slide first gets a shortlist of ``shortlist`` candidates from a faiss inner-product
    search over the mean of its prototypes, and only the shortlist is scored exactly.
    ``K * <mean(a), mean(b)>`` is the average score of all K! matchings of a and b, a
    lower bound of their best matching ``S(a, b)``; the shortlist therefore misses a true
    neighbour whose best matching is much better than its average one. The recall of
    the shortlist is measured in ``benchmarks/prototypes.py`` (see docs/prototypes.md).

    Args:
        centroids: Prototypes with shape (S, K, D), L2-normalised.
        valid: Whether each slide has prototypes, shape (S,), bool.
        num_neighbors: Neighbours per slide r. Defaults to 1.
        exact_max_slides: Largest number of valid slides scored exactly. Defaults to
            20000.
        shortlist: Candidates per slide on the shortlist path. Defaults to 64.

    Returns:
        tuple[Tensor, Tensor]: Neighbour slide indices with shape (S, r), long, -1 where
        none, best first; and their set similarity with shape (S, r), NaN where none.
    """
    if centroids.dim() != 3 or valid.shape != centroids.shape[:1]:
        raise ValueError(f'centroids must be (S, K, D) and valid (S,), got '
                         f'{tuple(centroids.shape)} and {tuple(valid.shape)}')
    if num_neighbors < 1 or shortlist < 1:
        raise ValueError(f'num_neighbors and shortlist must be >= 1, got '
                         f'{num_neighbors} and {shortlist}')
    num_slides = len(centroids)
    neighbors = torch.full((num_slides, num_neighbors), -1, dtype=torch.long,
                           device=centroids.device)
    similarity = centroids.new_full((num_slides, num_neighbors), float('nan'))
    ids = valid.nonzero().squeeze(1)
    if len(ids) < 2:
        return neighbors, similarity
    protos = centroids[ids]
    if len(ids) <= exact_max_slides:
        local, sims = _exact(protos, num_neighbors)
    else:
        local, sims = _shortlisted(protos, num_neighbors, shortlist)
    found = local >= 0
    neighbors[ids] = torch.where(found, ids[local.clamp_min(0)], -1)
    similarity[ids] = torch.where(found, sims, float('nan'))
    return neighbors, similarity


def _top(scores: Tensor, candidates: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """Top-r of scores (Q, C) over candidate ids (Q, C); -inf scores become id -1."""
    values, order = scores.topk(min(r, scores.shape[1]), dim=1)
    ids = torch.where(values > float('-inf'), torch.gather(candidates, 1, order), -1)
    pad = r - values.shape[1]
    if pad:
        values = torch.cat([values, values.new_full((len(values), pad), float('-inf'))], 1)
        ids = torch.cat([ids, ids.new_full((len(ids), pad), -1)], 1)
    return ids, values


def _exact(protos: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """Exact top-r among all V slides, self excluded -> ids (V, r), scores (V, r)."""
    num = len(protos)
    rows = max(1, _CHUNK_BYTES // (4 * 2 * num))
    ids, sims = [], []
    all_ids = torch.arange(num, device=protos.device)
    for i in range(0, num, rows):
        scores = set_similarity(protos[i:i + rows], protos)
        own = all_ids[i:i + rows]
        scores[torch.arange(len(own), device=protos.device), own] = float('-inf')
        chunk_ids, chunk_sims = _top(scores, all_ids.expand(len(own), -1), r)
        ids.append(chunk_ids)
        sims.append(chunk_sims)
    return torch.cat(ids), torch.cat(sims)


def _shortlisted(protos: Tensor, r: int, shortlist: int) -> tuple[Tensor, Tensor]:
    """Shortlist by mean-prototype inner product (faiss), re-rank exactly."""
    num, k, dim = protos.shape
    summary = protos.mean(1).float().cpu().contiguous().numpy()
    index = faiss.IndexFlatIP(dim)
    index.add(summary)
    _, found = index.search(summary, min(shortlist + 1, num))
    candidates = torch.from_numpy(found).to(protos.device)
    own = torch.arange(num, device=protos.device)[:, None]
    candidates = torch.where(candidates == own, -1, candidates)
    rows = max(1, _CHUNK_BYTES // (4 * candidates.shape[1] * k * dim))
    ids, sims = [], []
    for i in range(0, num, rows):
        cand = candidates[i:i + rows]
        scores = set_similarity_paired(protos[i:i + rows], protos[cand.clamp_min(0)])
        scores = torch.where(cand >= 0, scores, float('-inf'))
        chunk_ids, chunk_sims = _top(scores, cand, r)
        ids.append(chunk_ids)
        sims.append(chunk_sims)
    return torch.cat(ids), torch.cat(sims)
