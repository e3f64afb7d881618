"""Benchmark of the prototype refresh: batched torch backend vs the original's loops.

Prints tables and writes JSON (``--out``). Sections:

1. Full refresh vs slides (``refresh``): clustering + assignments + neighbours + matched
   prototypes on synthetic embeddings at ``--scale`` times TCGA-NSCLC (1,041 slides,
   ~62,853 regions, 256-d, K = 4, min_regions = 32; default 0.25, 0.5, 1 and, unless
   quick, 10): the torch backend (``cluster_slides`` + ``finish_bank``), the faiss
   backend, and the original's way (a faiss k-means and search per slide, then one
   (S, S, K!) tensor of permutation scores; ``baselines/original_prototypes.py``). The
   two sides run interleaved, best of ``--repeats`` at scales <= 1. When the
   permutation tensor would take more than 60 GFLOP (K >= 6 at TCGA scale), only its
   first rows are filled and the time is extrapolated linearly in rows
   (``extrapolated``). Agreement checks: inertia against the faiss backend, neighbours
   and matches against the baseline's rule applied to our prototypes.
2. Full refresh vs K (``refresh_vs_k``): the same comparison at scale 1 for each ``--k``.
3. Neighbour search time against the number of slides (exact up to 20,000 valid
   slides, shortlist above) and set-similarity time against K.
4. Recall@1 of the shortlist path against the exact search.

Peak RSS (``peak_rss_mb``, MB) of each row and side: this process's ``VmHWM``, reset
through ``/proc/self/clear_refs`` before each step, above its RSS before the side's
first step (so what a step keeps for the next, like the clustering for the matching,
counts); ``benchmarks/memory.py``'s ``measure``.

Region counts per slide: ``tcga_lung_WSI.json`` has one entry per slide, so it gives no
counts; ``tcga_brca_4k_subset.json`` has one entry per region (180 slides, 6-124
regions). Counts are drawn from those 180 BRCA counts and rescaled to the NSCLC mean
(62,853 / 1,041 regions per slide).

0. Profile (``profile``): cumulative seconds of ``build_bank``'s stages at TCGA scale
   (cProfile; ``--profile`` prints only this and writes nothing).

Usage: ``python benchmarks/prototypes.py [--quick] [--profile] [--scale 0.25 0.5 1 10]
[--k 2 3 4 6 8] [--repeats N] [--threads N] [--sections refresh matching] [--out PATH]``
(quick: best of 1, scales up to 1, the baseline refusing K = 8; with best of 3 it took
312 s of CPU, 19 min of wall time on 2 cores shared with other jobs at load 8-10).
``--sections refresh`` re-measures sections 0-2 and carries sections 3-4 over from the
JSON already at ``--out`` (``carried_over``).
"""
from __future__ import annotations

import argparse
import collections
import cProfile
import json
import math
import os
import platform
import pstats
import sys
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.baselines.original_prototypes import (  # noqa: E402
    cluster_per_slide,
    neighbours_by_permutations,
    upstream_refusal,
)
from benchmarks.memory import measure, reset_peak  # noqa: E402
from slpd_plugin.prototypes import (  # noqa: E402
    build_bank,
    cluster_slides,
    find_neighbors,
    finish_bank,
    set_similarity,
)

COUNTS_JSON = 'data/slpd/tcga_brca_4k_subset.json'
LUNG_SLIDES, LUNG_REGIONS = 1041, 62853
DIM, K, MIN_REGIONS, TISSUES = 256, 4, 32, 32


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
def baseline_rows(num_slides: int, k: int, max_gflop: float = 60.0) -> int:
    """Rows of the baseline's (S, S, K!) tensor to time: all of them unless its
    ``S * S * K! * K * D * 2`` FLOPs exceed ``max_gflop`` (K >= 6 at TCGA scale); then
    as many as fit, and the time is extrapolated linearly in rows."""
    flops = num_slides * num_slides * math.factorial(k) * k * DIM * 2
    return min(num_slides, max(1, int(num_slides * max_gflop * 1e9 / flops)))


def compare(embeddings: torch.Tensor, slide_index: torch.Tensor, num_slides: int, k: int,
            repeats: int) -> tuple[dict[str, Any], Any, dict[str, torch.Tensor]]:
    """Refresh with the torch backend vs the original's way, interleaved, best of repeats.

    Each repeat runs ours (``cluster_slides`` + ``finish_bank``) and then the baseline
    (per-slide faiss k-means and search, then the (S, S, K!) permutation tensor), so
    that both see the same background load. Where that whole tensor would not fit in
    this machine's memory the baseline runs its clustering only, and its row says so
    (``refused``: 'upstream way: would need N GB'; no total, no speedup). Peak RSS of a
    side: over its steps, above this process's RSS before its first step. Returns the
    measurements, the torch backend's bank and the baseline's refresh.
    """
    cluster_slides(embeddings[:2000], slide_index[:2000] % 8, 8, k, 1, torch.arange(8))
    times: dict[str, list[float]] = collections.defaultdict(list)
    peaks: dict[str, float] = collections.defaultdict(float)

    def timed(name: str, fn: Callable[[], Any], base_mb: float) -> Any:
        result, seconds, peak = measure(fn, base_mb=base_mb)
        times[name].append(seconds)
        peaks[name] = max(peaks[name], peak)
        return result

    sample = baseline_rows(num_slides, k)
    refusal = upstream_refusal(num_slides, k)
    for _ in range(repeats):
        parts = bank = centroids = theirs = None  # the previous repeat's results are freed
        base = reset_peak()
        parts = timed('torch_cluster', lambda: cluster_slides(
            embeddings, slide_index, num_slides, k, MIN_REGIONS, torch.arange(num_slides)),
            base)
        bank = timed('torch_finish', lambda: finish_bank(embeddings, slide_index, *parts),
                     base)
        parts = None
        base = reset_peak()
        centroids, valid, assignments = timed('base_cluster', lambda: cluster_per_slide(
            embeddings, slide_index, num_slides, k, MIN_REGIONS), base)
        theirs = dict(centroids=centroids, valid=valid, assignments=assignments)
        if refusal is None:
            theirs['neighbors'], theirs['matched'] = timed(
                'base_match', lambda: neighbours_by_permutations(centroids, rows=sample), base)
    best = {name: min(values) for name, values in times.items()}
    out: dict[str, Any] = dict(valid_slides=int(bank.valid.sum()), k=k, repeats=repeats)
    out['torch'] = dict(cluster_s=best['torch_cluster'], match_s=best['torch_finish'],
                        total_s=best['torch_cluster'] + best['torch_finish'],
                        peak_rss_mb=max(peaks['torch_cluster'], peaks['torch_finish']))
    if refusal is None:
        base_match = best['base_match'] * num_slides / sample
        out['baseline'] = dict(cluster_s=best['base_cluster'], match_s=base_match,
                               total_s=best['base_cluster'] + base_match,
                               peak_rss_mb=max(peaks['base_cluster'], peaks['base_match']),
                               match_rows_timed=sample, extrapolated=sample < num_slides)
        out['speedup_total'] = out['baseline']['total_s'] / out['torch']['total_s']
    else:  # the clustering runs; the matching's permutation tensor would not fit
        out['baseline'] = dict(cluster_s=best['base_cluster'], match_s=None, total_s=None,
                               peak_rss_mb=peaks['base_cluster'], match_rows_timed=0,
                               extrapolated=False, refused=refusal)
        out['speedup_total'] = None
    out['speedup_cluster'] = best['base_cluster'] / best['torch_cluster']
    return out, bank, theirs


def synthetic_scale(scale: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Embeddings, slide index and slide count at ``scale`` times TCGA-NSCLC."""
    counts = region_counts(round(LUNG_SLIDES * scale), seed=round(100 * scale))
    return *synthetic_regions(counts, seed=round(100 * scale)), len(counts)


def refresh(scale: float, repeats: int) -> tuple[dict[str, Any], Any]:
    """Full refresh at ``scale``: :func:`compare`, the faiss backend and agreement checks.

    Agreement: the inertia of the torch and faiss backends (both L2 k-means of the
    normalised embeddings), and our neighbours and matches against those the baseline's
    permutation tensor finds from our prototypes (the same rule on the same prototypes;
    the rows of :func:`baseline_rows`). Returns the measurements and the torch backend's
    bank.
    """
    embeddings, slide_index, num_slides = synthetic_scale(scale)
    out: dict[str, Any] = {'scale': int(scale) if scale == int(scale) else scale,
                           'slides': num_slides, 'regions': len(slide_index)}
    measured, bank, _ = compare(embeddings, slide_index, num_slides, K, repeats)
    out.update(measured)
    faiss_bank, seconds, peak = measure(lambda: build_bank(
        embeddings, slide_index, K, MIN_REGIONS, backend='faiss', num_slides=num_slides))
    out['faiss_backend'] = dict(total_s=seconds, peak_rss_mb=peak)
    out['inertia_torch_over_faiss'] = (bank.inertia[bank.valid].sum()
                                       / faiss_bank.inertia[faiss_bank.valid].sum()).item()
    rows = baseline_rows(num_slides, K)
    theirs, matched = neighbours_by_permutations(bank.centroids, rows=rows)
    check = bank.valid[:rows]
    out['neighbours_agree'] = int((bank.neighbors[:rows][check, 0] == theirs[check, 0]).sum())
    out['matched_agree'] = int((bank.matched[:rows][check, :, 0] == matched[check, :, 0])
                               .all(1).sum())
    out['neighbours_checked'] = int(check.sum())
    return out, bank


STAGES = {  # profile row -> (module suffix, function) whose cumulative time it reports
    'build_bank (total)': ('build.py', 'build_bank'),
    'cluster_slides': ('build.py', 'cluster_slides'),
    '  packing (pack_slides, both passes)': ('packing.py', 'pack_slides'),
    '  k-means++ init': ('kmeans.py', '_kmeanspp_init'),
    '  Lloyd distances': ('kmeans.py', '_distances'),
    '  Lloyd updates': ('kmeans.py', '_update'),
    'finish_bank': ('build.py', 'finish_bank'),
    '  assignment': ('build.py', '_assign'),
    '  neighbours (find_neighbors)': ('neighbors.py', 'find_neighbors'),
    '    exact matchings of candidates': ('neighbors.py', '_top_by_bound'),
    '  matched prototypes': ('matching.py', 'match_prototypes'),
}


def profile_build_bank(repeats: int) -> list[dict[str, Any]]:
    """Where ``build_bank`` spends its time at TCGA scale: cProfile cumulative seconds of
    its stages, the fastest of ``repeats`` profiled runs (the cProfile overhead is small:
    the stages are a few hundred tensor calls)."""
    embeddings, slide_index, num_slides = synthetic_scale(1)
    build_bank(embeddings, slide_index, K, MIN_REGIONS, num_slides=num_slides)
    best: list[dict[str, Any]] | None = None
    for _ in range(repeats):
        profiler = cProfile.Profile()
        profiler.runcall(build_bank, embeddings, slide_index, K, MIN_REGIONS,
                         num_slides=num_slides)
        stats = pstats.Stats(profiler).stats  # (file, line, name) -> (..., cumtime, ...)
        cumulative = {(Path(f).name, name): row[3] for (f, _, name), row in stats.items()}
        rows = [dict(stage=stage, seconds=cumulative.get(key, 0.0))
                for stage, key in STAGES.items()]
        if best is None or rows[0]['seconds'] < best[0]['seconds']:
            best = rows
    total = best[0]['seconds']
    return [dict(row, share=row['seconds'] / total) for row in best]


def matmul_gflops(repeats: int = 5) -> float:
    """This CPU's float32 matmul rate, GFLOP/s: (4164 x 256) @ (256 x 4164), the shape of
    the TCGA-scale neighbour search's inner products (1,041 slides x K = 4), best of
    ``repeats``."""
    a = torch.randn(LUNG_SLIDES * K, DIM)
    _, seconds, _ = measure(lambda: a @ a.T, repeats=repeats)
    return 2 * a.shape[0] ** 2 * DIM / seconds / 1e9


def refresh_vs_k(ks: list[int], repeats: int,
                 done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`compare` at TCGA-NSCLC scale for each K; a K with a scale-1 row in ``done``
    (the refreshes vs slides) takes that row."""
    embeddings, slide_index, num_slides = synthetic_scale(1)
    known = {r['k']: r for r in done if r['scale'] == 1}
    rows = []
    for k in ks:
        if k not in known:
            measured, _, _ = compare(embeddings, slide_index, num_slides, k, repeats)
            known[k] = dict(scale=1, slides=num_slides, regions=len(slide_index), **measured)
        rows.append(known[k])
    return rows


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


def timing_row(r: dict[str, Any]) -> dict[str, Any]:
    """One line of a refresh table: seconds and peak RSS increase (MB) of both sides."""
    base = r['baseline']
    refused = base.get('refused')
    return dict(slides=r['slides'], k=r['k'], valid=r['valid_slides'],
                torch_cluster=r['torch']['cluster_s'], torch_match=r['torch']['match_s'],
                torch_total=r['torch']['total_s'], base_cluster=base['cluster_s'],
                base_match=refused or base['match_s'], base_total=base['total_s'] or '-',
                base_rows_timed=f"{base['match_rows_timed']}/{r['slides']}",
                speedup_total=r['speedup_total'] or '-',
                torch_peak_mb=r['torch']['peak_rss_mb'], base_peak_mb=base['peak_rss_mb'])


def sweep_sizes(quick: bool) -> tuple[list[float], list[int]]:
    """The default sweeps: scales of the refresh vs slides (K = 4) and K of the refresh
    vs K (scale 1). Quick: the baseline runs K = 2 and 4 and refuses K = 8 (its
    permutation tensor, 175 GB, fits nowhere), so that ``run_all.py --quick`` stays
    within 10 minutes."""
    if quick:
        return [0.25, 0.5, 1], [2, 4, 8]
    return [0.25, 0.5, 1, 10], [2, 3, 4, 6, 8]


SECTIONS = ('refresh', 'matching')  # refresh: profile, vs slides, vs K; matching: the rest
MATCHING_KEYS = ('matching_vs_slides', 'matching_vs_k', 'shortlist_recall')


def matching_sections(result: dict[str, Any], quick: bool, runs: list, scales: list) -> None:
    """Neighbour search vs slides and vs K, and the shortlist's recall, into ``result``;
    the recall on k-means prototypes uses the scale-1 refresh's bank when ``runs`` has
    one (else a fresh build_bank at scale 1)."""
    sizes = [1000, 10000] if quick else [1000, 10000, 100000]
    result['matching_vs_slides'] = matching_vs_slides(sizes)
    print_table('find_neighbors vs number of slides (K = 4)', result['matching_vs_slides'])
    result['matching_vs_k'] = matching_vs_k(
        [2, 4, 5, 6, 8, 16] if quick else [2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16])
    print_table('set_similarity (200 x 200 slides, all pairs) and find_neighbors (1,000 '
                'slides) vs K', result['matching_vs_k'])
    recall_slides = 2000 if quick else 5000
    recall = shortlist_recall(synthetic_prototypes(recall_slides, K, seed=7), [16, 64],
                              'synthetic prototypes')
    tcga = next((bank for s, (_, bank) in zip(scales, runs) if s == 1), None)
    if tcga is None:
        embeddings, slide_index, num_slides = synthetic_scale(1)
        tcga = build_bank(embeddings, slide_index, K, MIN_REGIONS, num_slides=num_slides)
    recall += shortlist_recall(tcga.centroids[tcga.valid], [16, 64],
                               'k-means, scale 1 refresh')
    result['shortlist_recall'] = recall
    print_table('Shortlist path vs exact (recall@1; similarity ratio = found / best)', recall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='small sweeps, best of 1, for run_all.py --quick')
    parser.add_argument('--scale', type=float, nargs='+', default=None,
                        help='multiples of TCGA-NSCLC size (default: 0.25 0.5 1, and 10 '
                             'unless quick)')
    parser.add_argument('--k', type=int, nargs='+', default=None,
                        help='K of the refresh sweep at scale 1 (default: 2 3 4 6 8; '
                             'quick: 2 4 8)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help='threads for torch and faiss (default: torch default)')
    parser.add_argument('--repeats', type=int, default=None,
                        help='best-of repeats of the clusterings, scales <= 1 (default 3; '
                             'quick: 1)')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS, default=list(SECTIONS),
                        help='sections to run; the others are carried over from the JSON '
                             'already at --out, if any (listed under "carried_over")')
    parser.add_argument('--profile', action='store_true',
                        help='only profile build_bank at TCGA scale (stage breakdown)')
    parser.add_argument('--out', default=str(REPO / 'benchmarks/results/prototypes.json'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    default_scales, default_ks = sweep_sizes(args.quick)
    scales, ks = args.scale or default_scales, args.k or default_ks
    args.repeats = args.repeats or (1 if args.quick else 3)
    result: dict[str, Any] = dict(
        machine=dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                     threads=args.threads, torch=torch.__version__,
                     faiss=faiss.__version__, device='cpu',
                     load_average_at_start=os.getloadavg()),
        quick=args.quick)

    result['profile'] = profile_build_bank(args.repeats)
    result['matmul_gflops'] = matmul_gflops()
    print_table('build_bank at TCGA scale: cumulative seconds of each stage (cProfile, '
                f"fastest of repeats); matmul {result['matmul_gflops']:.1f} GFLOP/s",
                result['profile'])
    if args.profile:
        print(f"\nmachine: load average {os.getloadavg()}")
        return
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    carried = [key for section, keys in (('refresh', ('refresh', 'refresh_vs_k')),
                                         ('matching', MATCHING_KEYS))
               if section not in args.sections for key in keys if key in previous]
    result.update({key: previous[key] for key in carried})
    result['carried_over'] = carried
    runs = []
    if 'refresh' in args.sections:
        runs = [refresh(s, args.repeats if s <= 1 else 1) for s in scales]
        result['refresh'] = [out for out, _ in runs]
        print_table(f'Full refresh vs slides (K = {K}), seconds and peak RSS increase, MB '
                    f'(best of repeats, the two sides interleaved)',
                    [dict(scale=r['scale'], **timing_row(r),
                          faiss_backend_total=r['faiss_backend']['total_s'],
                          faiss_backend_peak_mb=r['faiss_backend']['peak_rss_mb'])
                     for r in result['refresh']])
        print_table('Agreement of the torch backend with faiss and with the baseline', [dict(
            scale=r['scale'], inertia_torch_over_faiss=r['inertia_torch_over_faiss'],
            neighbours_agree=f"{r['neighbours_agree']}/{r['neighbours_checked']}",
            matched_agree=f"{r['matched_agree']}/{r['neighbours_checked']}")
            for r in result['refresh']])
        result['refresh_vs_k'] = refresh_vs_k(ks, args.repeats, result['refresh'])
        print_table('Full refresh vs K (scale 1), seconds and peak RSS increase, MB',
                    [timing_row(r) for r in result['refresh_vs_k']])
    if 'matching' in args.sections:
        matching_sections(result, args.quick, runs, scales)

    result['machine']['load_average_at_end'] = os.getloadavg()
    print('\nmachine: ' + ', '.join(f'{k}={v}' for k, v in result['machine'].items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f'\nwrote {out}')


if __name__ == '__main__':
    main()
