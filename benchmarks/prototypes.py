"""Benchmark of the prototype refresh: batched torch backend vs the original's loops.

Prints tables and writes JSON (``--out``). Sections:

1. Full refresh (clustering + assignments + neighbours + matched prototypes) on synthetic
   embeddings at TCGA-NSCLC scale (1,041 slides, ~62,853 regions, 256-d, K = 4,
   min_regions = 32) and at ``--scale`` times that: the torch backend
   (``cluster_slides`` + ``finish_bank``), the faiss backend, and the original's way (a
   faiss k-means per slide, then a Python loop over slide pairs scoring every
   permutation; ``baselines/original_prototypes.py``), interleaved in one process, best
   of ``--repeats`` at scale 1. Where the pair loop is too slow it runs on a sample of
   slides and is extrapolated (marked in the table).
2. Neighbour search time against the number of slides (exact up to 20,000 valid
   slides, shortlist above) and set-similarity time against K.
3. Recall@1 of the shortlist path against the exact search.

Region counts per slide: ``tcga_lung_WSI.json`` has one entry per slide, so it gives no
counts; ``tcga_brca_4k_subset.json`` has one entry per region (180 slides, 6-124
regions). Counts are drawn from those 180 BRCA counts and rescaled to the NSCLC mean
(62,853 / 1,041 regions per slide).

Usage: ``python benchmarks/prototypes.py [--quick] [--scale 1 10] [--threads N]
[--out PATH]``.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines.original_prototypes import (cluster_per_slide,  # noqa: E402
                                           neighbours_by_permutations)

from slpd_plugin.prototypes import (build_bank, cluster_slides,  # noqa: E402
                                    find_neighbors, finish_bank, set_similarity)

REPO = Path(__file__).resolve().parents[1]
COUNTS_JSON = 'data/slpd/tcga_brca_4k_subset.json'
LUNG_SLIDES, LUNG_REGIONS = 1041, 62853
DIM, K, MIN_REGIONS, TISSUES = 256, 4, 32, 32


# ============ measuring ============
def _status_kb(field: str) -> int:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise KeyError(field)


def measure(fn: Callable[[], Any], repeats: int = 1) -> tuple[Any, float, float]:
    """Result, best wall time (s) and peak RSS increase (MB) over ``repeats`` runs.

    Peak RSS: /proc/self/status VmHWM after resetting it through /proc/self/clear_refs,
    minus VmRSS before the run (counts numpy, torch and faiss allocations alike).
    """
    best, peak = float('inf'), 0.0
    result = None
    for _ in range(repeats):
        Path('/proc/self/clear_refs').write_text('5')
        before = _status_kb('VmRSS')
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
        peak = max(peak, (_status_kb('VmHWM') - before) / 1024)
    return result, best, peak


# ============ synthetic data ============
def region_counts(num_slides: int, seed: int) -> np.ndarray:
    """Per-slide region counts: BRCA subset counts rescaled to the NSCLC mean."""
    path = next(p / COUNTS_JSON for p in (REPO / 'shared', Path('/work/shared'))
                if (p / COUNTS_JSON).exists())
    entries = json.loads(path.read_text()).values()
    brca = np.array(list(collections.Counter(e['slide_index'] for e in entries).values()))
    drawn = np.random.default_rng(seed).choice(brca, num_slides)
    return np.maximum(1, np.round(drawn * LUNG_REGIONS / LUNG_SLIDES / brca.mean())).astype(
        np.int64)


def _slide_mixtures(num_slides: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Tissue directions (T, D), per-slide tissue weights (S, T) and shifts (S, D)."""
    tissues = F.normalize(torch.randn(TISSUES, DIM, generator=g), dim=-1)
    logits = torch.randn(num_slides, TISSUES, generator=g)
    keep = logits.topk(6, dim=1).indices
    weights = torch.zeros(num_slides, TISSUES).scatter_(
        1, keep, torch.rand(num_slides, 6, generator=g) + 0.1)
    shifts = 0.35 * F.normalize(torch.randn(num_slides, DIM, generator=g), dim=-1)
    return tissues, weights, shifts


def synthetic_regions(counts: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Region embeddings (N, D): each slide mixes 6 of 32 tissue types, plus a slide
    shift and noise. Returns embeddings and a shuffled slide index (N,)."""
    g = torch.Generator().manual_seed(seed)
    tissues, weights, shifts = _slide_mixtures(len(counts), g)
    slide_index = torch.repeat_interleave(torch.arange(len(counts)), torch.from_numpy(counts))
    slide_index = slide_index[torch.randperm(len(slide_index), generator=g)]
    tissue = torch.multinomial(weights[slide_index], 1, generator=g)[:, 0]
    noise = 0.6 * F.normalize(torch.randn(len(slide_index), DIM, generator=g), dim=-1)
    return tissues[tissue] + shifts[slide_index] + noise, slide_index


def synthetic_prototypes(num_slides: int, k: int, seed: int) -> torch.Tensor:
    """Prototype sets (S, K, D) from the same model: each slide's k main tissues."""
    g = torch.Generator().manual_seed(seed)
    tissues, weights, shifts = _slide_mixtures(num_slides, g)
    main = weights.topk(k, dim=1).indices
    noise = 0.3 * F.normalize(torch.randn(num_slides, k, DIM, generator=g), dim=-1)
    return F.normalize(tissues[main] + shifts[:, None] + noise, dim=-1)


# ============ sections ============
def refresh(scale: int, quick: bool, repeats: int) -> tuple[dict[str, Any], Any]:
    """Full refresh: torch backend, faiss backend, original-style baseline.

    Returns the measurements and the torch backend's bank.
    """
    counts = region_counts(LUNG_SLIDES * scale, seed=scale)
    embeddings, slide_index = synthetic_regions(counts, seed=scale)
    num_slides = len(counts)
    cluster_slides(embeddings[:2000], slide_index[:2000] % 8, 8, K, 1, torch.arange(8))
    out: dict[str, Any] = {'scale': scale, 'slides': num_slides, 'regions': len(slide_index)}

    z, index = embeddings.numpy(), slide_index.numpy()
    times: dict[str, list[float]] = collections.defaultdict(list)
    peaks: dict[str, float] = collections.defaultdict(float)

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        result, seconds, peak = measure(fn)
        times[name].append(seconds)
        peaks[name] = max(peaks[name], peak)
        return result

    # Interleaved, so that both sides see the same background load; best of repeats.
    for _ in range(repeats):
        parts = timed('torch_cluster', lambda: cluster_slides(
            embeddings, slide_index, num_slides, K, MIN_REGIONS, torch.arange(num_slides)))
        bank = timed('torch_finish', lambda: finish_bank(embeddings, slide_index, *parts))
        centroids, valid, _ = timed('base_cluster', lambda: cluster_per_slide(
            z, index, num_slides, K, MIN_REGIONS))
    faiss_bank = timed('faiss_backend', lambda: build_bank(
        embeddings, slide_index, K, MIN_REGIONS, backend='faiss', num_slides=num_slides))
    best = {name: min(values) for name, values in times.items()}
    valid_ids = bank.valid.nonzero().squeeze(1).tolist()
    out['valid_slides'] = len(valid_ids)
    out['torch'] = dict(cluster_s=best['torch_cluster'], match_s=best['torch_finish'],
                        total_s=best['torch_cluster'] + best['torch_finish'],
                        peak_rss_mb=max(peaks['torch_cluster'], peaks['torch_finish']))
    out['faiss_backend'] = dict(total_s=best['faiss_backend'],
                                peak_rss_mb=peaks['faiss_backend'])
    out['inertia_torch_over_faiss'] = (bank.inertia[bank.valid].sum()
                                       / faiss_bank.inertia[faiss_bank.valid].sum()).item()
    full_loop = scale == 1 and not quick
    sample = valid_ids if full_loop else valid_ids[::max(1, len(valid_ids) // 50)]
    _, t_pairs, m_pairs = measure(lambda: neighbours_by_permutations(centroids, valid, sample))
    t_pairs_all = t_pairs * len(valid_ids) / len(sample)
    out['baseline'] = dict(cluster_s=best['base_cluster'], match_s=t_pairs_all,
                           total_s=best['base_cluster'] + t_pairs_all,
                           peak_rss_mb=max(peaks['base_cluster'], m_pairs),
                           pair_rows_timed=len(sample),
                           extrapolated=len(sample) < len(valid_ids))
    out['speedup_total'] = out['baseline']['total_s'] / out['torch']['total_s']
    out['speedup_cluster'] = best['base_cluster'] / best['torch_cluster']

    check = valid_ids[:40]
    theirs, matched = neighbours_by_permutations(bank.centroids.numpy(), bank.valid.numpy(),
                                                 check)
    out['neighbours_agree'] = int((bank.neighbors[check, 0].numpy() == theirs).sum())
    out['matched_agree'] = int((bank.matched[check, :, 0].numpy() == matched).all(1).sum())
    out['neighbours_checked'] = len(check)
    return out, bank


def matching_vs_slides(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    find_neighbors(synthetic_prototypes(200, K, seed=0), torch.ones(200, dtype=torch.bool))
    for n in sizes:
        protos = synthetic_prototypes(n, K, seed=n)
        valid = torch.ones(n, dtype=torch.bool)
        _, seconds, peak = measure(lambda: find_neighbors(protos, valid, 1))
        rows.append(dict(slides=n, path='exact' if n <= 20000 else 'shortlist 64',
                         seconds=seconds, peak_rss_mb=peak))
    return rows


def matching_vs_k(ks: list[int], num: int = 200, slides: int = 1000) -> list[dict[str, Any]]:
    """All-pairs set_similarity (num x num) and find_neighbors on ``slides`` slides."""
    rows = []
    for k in ks:
        protos = synthetic_prototypes(max(num, slides), k, seed=k)
        set_similarity(protos[:4], protos[:num])
        _, seconds, _ = measure(lambda: set_similarity(protos[:num], protos[:num]), repeats=2)
        valid = torch.ones(slides, dtype=torch.bool)
        _, search, _ = measure(lambda: find_neighbors(protos[:slides], valid, 1), repeats=2)
        rows.append(dict(k=k, path='permutations' if k <= 6 else 'hungarian',
                         set_similarity_us_per_pair=seconds / num / num * 1e6,
                         find_neighbors_s=search))
    return rows


def shortlist_recall(protos: torch.Tensor, shortlists: list[int],
                     label: str) -> list[dict[str, Any]]:
    valid = torch.ones(len(protos), dtype=torch.bool)
    exact, exact_sim = find_neighbors(protos, valid, 1)
    rows = []
    for m in shortlists:
        (found, sim), seconds, _ = measure(
            lambda: find_neighbors(protos, valid, 1, exact_max_slides=0, shortlist=m))
        rows.append(dict(data=label, slides=len(protos), shortlist=m, seconds=seconds,
                         recall_at_1=(found[:, 0] == exact[:, 0]).float().mean().item(),
                         similarity_ratio=(sim[:, 0] / exact_sim[:, 0]).mean().item()))
    return rows


# ============ output ============
def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f'\n{title}')
    keys = list(rows[0])
    cells = [[f'{r[k]:.4g}' if isinstance(r[k], float) else str(r[k]) for k in keys]
             for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print(' | '.join(k.ljust(w) for k, w in zip(keys, widths)))
    print('-+-'.join('-' * w for w in widths))
    for c in cells:
        print(' | '.join(v.ljust(w) for v, w in zip(c, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='small sweeps, < ~2 minutes')
    parser.add_argument('--scale', type=int, nargs='+', default=None,
                        help='multiples of TCGA-NSCLC size (default: 1, and 10 unless quick)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help='threads for torch and faiss (default: torch default)')
    parser.add_argument('--repeats', type=int, default=3, help='best-of repeats, torch runs')
    parser.add_argument('--out', default=str(REPO / 'benchmarks/results/prototypes.json'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    scales = args.scale or ([1] if args.quick else [1, 10])
    result: dict[str, Any] = dict(
        machine=dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                     threads=args.threads, torch=torch.__version__,
                     faiss=faiss.__version__, device='cpu',
                     load_average_at_start=os.getloadavg()),
        quick=args.quick)

    runs = [refresh(s, args.quick, args.repeats if s == 1 else 1) for s in scales]
    result['refresh'] = [out for out, _ in runs]
    print_table('Full refresh, seconds (best of repeats; baseline pair loop extrapolated '
                'from timed rows where marked)', [dict(
                    scale=r['scale'], slides=r['slides'], regions=r['regions'],
                    valid=r['valid_slides'], torch_cluster=r['torch']['cluster_s'],
                    torch_match=r['torch']['match_s'], torch_total=r['torch']['total_s'],
                    faiss_backend_total=r['faiss_backend']['total_s'],
                    base_cluster=r['baseline']['cluster_s'],
                    base_match=r['baseline']['match_s'],
                    base_total=r['baseline']['total_s'],
                    base_rows_timed=r['baseline']['pair_rows_timed'],
                    speedup_cluster=r['speedup_cluster'],
                    speedup_total=r['speedup_total']) for r in result['refresh']])
    print_table('Peak RSS increase, MB (VmHWM reset via /proc/self/clear_refs)', [dict(
        scale=r['scale'], torch=r['torch']['peak_rss_mb'],
        faiss_backend=r['faiss_backend']['peak_rss_mb'],
        baseline=r['baseline']['peak_rss_mb'],
        inertia_torch_over_faiss=r['inertia_torch_over_faiss'],
        neighbours_agree=f"{r['neighbours_agree']}/{r['neighbours_checked']}",
        matched_agree=f"{r['matched_agree']}/{r['neighbours_checked']}")
        for r in result['refresh']])

    sizes = [1000, 10000] if args.quick else [1000, 10000, 100000]
    result['matching_vs_slides'] = matching_vs_slides(sizes)
    print_table('find_neighbors vs number of slides (K = 4)', result['matching_vs_slides'])
    ks = [2, 4, 5, 6, 8, 16] if args.quick else [2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16]
    result['matching_vs_k'] = matching_vs_k(ks)
    print_table('set_similarity (200 x 200 slides, all pairs) and find_neighbors (1,000 '
                'slides) vs K', result['matching_vs_k'])

    recall_slides = 2000 if args.quick else 5000
    recall = shortlist_recall(synthetic_prototypes(recall_slides, K, seed=7), [16, 64],
                              'synthetic prototypes')
    tcga = runs[0][1]
    recall += shortlist_recall(tcga.centroids[tcga.valid], [16, 64],
                               f'k-means, scale {scales[0]} refresh')
    result['shortlist_recall'] = recall
    print_table('Shortlist path vs exact (recall@1; similarity ratio = found / best)', recall)

    result['machine']['load_average_at_end'] = os.getloadavg()
    print('\nmachine: ' + ', '.join(f'{k}={v}' for k, v in result['machine'].items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f'\nwrote {out}')


if __name__ == '__main__':
    main()
