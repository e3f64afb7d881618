"""Nearest slides by set similarity of their prototypes.

Shapes: S = slides, V = slides with prototypes, K = prototypes per slide,
D = embedding dim, r = neighbours per slide, M = shortlist length.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .faiss_import import load_faiss
from .matching import max_matching_score, set_similarity_paired

_CHUNK_BYTES = 256 * 2**20


def find_neighbors(centroids: Tensor, valid: Tensor, num_neighbors: int = 1,
                   exact_max_slides: int = 20000,
                   shortlist: int = 64) -> tuple[Tensor, Tensor]:
    """Top-r other slides of each slide by set similarity of the prototype sets.

    Only slides with prototypes (``valid``) take part: an invalid slide gets a row of
    -1 and is never anyone's neighbour; a slide is never its own neighbour. Rows with
    fewer than r candidates are padded with -1 (similarity NaN).

    With at most ``exact_max_slides`` valid slides the search is exact, in chunks of
    rows (~256 MB each): every pair's (K, K) inner products are computed, and the best
    matching is solved for as many candidates as needed to prove the top r (see
    ``_exact``). Above that the V² inner products are too slow, so each slide first
    gets a shortlist of ``shortlist`` candidates from a faiss inner-product search
    (``IndexFlatIP``) over the mean of its prototypes, and only the shortlist is scored
    exactly. ``K * <mean(a), mean(b)>`` is the average score of all K! matchings of a
    and b, a lower bound of their best matching ``S(a, b)``: the shortlist misses a
    true neighbour whose best matching is much better than its average one. Measured
    recall@1 is in docs/prototypes.md (``benchmarks/prototypes.py``).

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
    if not 1 <= num_neighbors <= shortlist:
        raise ValueError(f'need 1 <= num_neighbors <= shortlist, got num_neighbors='
                         f'{num_neighbors} and shortlist={shortlist}')
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
    """Exact top-r among all V slides, self excluded -> ids (V, r), scores (V, r).

    Rows are processed in chunks. For each chunk one matrix multiply gives the (K, K)
    inner products with every slide, and ``U(a, b) = sum_k max_l <a_k, b_l>``, an
    upper bound of ``S(a, b)``, comes from them at almost no cost. The best matchings
    are then solved only for the candidates with the highest bounds, doubling their
    number until the r-th best score found is at least the bound of every candidate
    left out, which proves those cannot enter the top r.
    """
    num, k, dim = protos.shape
    flat = protos.reshape(num * k, dim)
    rows = max(1, _CHUNK_BYTES // (4 * k * k * num))
    ids, sims = [], []
    for i in range(0, num, rows):
        chunk = protos[i:i + rows]
        inner = (chunk.reshape(-1, dim) @ flat.T).view(len(chunk), k, num, k).transpose(1, 2)
        bound = inner.amax(-1).sum(-1)
        own = torch.arange(len(chunk), device=protos.device)
        bound[own, own + i] = float('-inf')
        chunk_ids, chunk_sims = _top_by_bound(inner, bound, r)
        ids.append(chunk_ids)
        sims.append(chunk_sims)
    return torch.cat(ids), torch.cat(sims)


def _top_by_bound(inner: Tensor, bound: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """Exact top-r from inner products (Q, V, K, K) and upper bounds (Q, V).

    Candidates with bound -inf are excluded.
    """
    num = bound.shape[1]
    ids = torch.full((len(bound), r), -1, dtype=torch.long, device=bound.device)
    sims = bound.new_full((len(bound), r), float('-inf'))
    todo = torch.arange(len(bound), device=bound.device)
    width = min(num, 4 * r)
    while len(todo):
        top_bound, cand = bound[todo].topk(min(width + 1, num), dim=1)
        scores = max_matching_score(inner[todo[:, None], cand[:, :width]])
        scores = torch.where(top_bound[:, :width] > float('-inf'), scores, float('-inf'))
        found_ids, found = _top(scores, cand[:, :width], r)
        if width >= num:
            done = torch.ones_like(todo, dtype=torch.bool)
        else:
            done = found[:, -1] >= top_bound[:, width]
        ids[todo[done]], sims[todo[done]] = found_ids[done], found[done]
        todo = todo[~done]
        width = min(num, 2 * width)
    return ids, sims


def _shortlisted(protos: Tensor, r: int, shortlist: int) -> tuple[Tensor, Tensor]:
    """Shortlist by mean-prototype inner product (faiss), re-rank exactly."""
    num, k, dim = protos.shape
    faiss = load_faiss(f'the neighbour shortlist of {num} slides (more than exact_max_slides)')
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
        gathered = protos.index_select(0, cand.clamp_min(0).flatten()).view(*cand.shape, k, dim)
        scores = set_similarity_paired(protos[i:i + rows], gathered)
        scores = torch.where(cand >= 0, scores, float('-inf'))
        chunk_ids, chunk_sims = _top(scores, cand, r)
        ids.append(chunk_ids)
        sims.append(chunk_sims)
    return torch.cat(ids), torch.cat(sims)
