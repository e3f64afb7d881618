"""Run every benchmark, print one table of ratios, write JSON and PNG plots.

Each row compares the plugin's way of doing a step with the original code's way,
measured in the same run on the same machine (baselines in ``benchmarks/baselines/``):

| benchmark | ours | baseline |
|---|---|---|
| ``train_step.py`` | batched on-device multi-crop + SDPA (+ bf16 / compile) | per-sample CPU crops, explicit attention, host sync per step |
| ``stores.py`` | batched float16 Redis reads; memmap | one pickled float32 GET per region |
| ``prototypes.py`` | batched k-means + batched exact matching | per-slide faiss loop + Python permutation loop |
| ``refresh_share.py`` | refresh with ``source='memory'`` | refresh with the full embedding pass |

    python benchmarks/run_all.py --quick     # < 10 minutes on a 2-core CPU
    python benchmarks/run_all.py             # full sizes

Writes ``benchmarks/results/<machine>.json``, ``benchmarks/results/*.png`` and each
benchmark's own JSON next to them; ``--docs`` also rewrites ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ('train_step', 'stores', 'prototypes', 'refresh_share')


def run(name: str, out: Path, quick: bool) -> dict:
    cmd = [sys.executable, str(ROOT / 'benchmarks' / f'{name}.py'), '--out', str(out)]
    if quick:
        cmd.append('--quick')
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f'run_all.py: {name} failed:\n{proc.stderr[-3000:]}')
    print(f'[{name}] {time.perf_counter() - start:.0f} s')
    return json.loads(out.read_text())


def rows_from(results: dict) -> list[dict]:
    """One row per comparison: (benchmark, what, ours, baseline, unit, ratio)."""
    rows = []
    ts = {r['path']: r for r in results['train_step']['rows']}
    for path in ('ours', 'ours+bf16', 'ours+compile'):
        if path in ts:
            rows.append(dict(benchmark='train_step', what=f'{path} vs naive',
                             ours=ts[path]['regions_per_s'],
                             baseline=ts['naive']['regions_per_s'], unit='regions/s',
                             extra=f"MFU {100 * ts[path]['mfu']:.0f}%"))
    st = results['stores']['regions_per_s']
    base = st['a_original_redis_pickle_fp32']
    for key, label in (('b_redis_store_fp16', 'redis fp16 batched vs pickle GETs'),
                       ('c_memmap_store_fp16_warm', 'memmap vs pickle GETs'),
                       ('loader_memmap_2workers', 'loader memmap, 2 workers vs pickle GETs')):
        if key in st:
            rows.append(dict(benchmark='stores', what=label, ours=st[key], baseline=base,
                             unit='regions/s', extra=''))
    ref = results['prototypes']['refresh']
    ref = next(r for r in ref if r['scale'] == 1) if isinstance(ref, list) else ref
    rows.append(dict(benchmark='prototypes', what='refresh at TCGA scale vs per-slide loop',
                     ours=ref['baseline']['total_s'], baseline=ref['torch']['total_s'],
                     unit='s (baseline / ours)',
                     extra=f"peak RSS {ref['torch']['peak_rss_mb']:.0f} MB"))
    share = {r['source']: r for r in results['refresh_share']['rows']}
    rows.append(dict(benchmark='refresh_share', what='memory vs full pass (refresh s)',
                     ours=share['pass']['refresh_s'], baseline=share['memory']['refresh_s'],
                     unit='s (pass / memory)',
                     extra=f"share of epoch: pass {100 * share['pass']['share']:.1f}%, "
                           f"memory {100 * share['memory']['share']:.1f}%"))
    for r in rows:
        r['ratio'] = r['ours'] / r['baseline']
    return rows


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def data_ticks(ax: plt.Axes, values: list) -> None:
    """x ticks at the data's values, labelled plainly (also on a log axis)."""
    values = sorted(set(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(values, [f'{v:,}' for v in values])


def plot_refresh(rows: list[dict], x: str, xlabel: str, title: str, path: Path,
                 log_x: bool = False) -> Path:
    """Refresh seconds of ours and of the baseline against ``row[x]`` (log y); points
    where a side was ``extrapolated`` are drawn hollow."""
    rows = sorted(rows, key=lambda r: r[x])
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, side, color in (('ours (torch backend)', 'torch', 'tab:blue'),
                               ('baseline (faiss loop + permutations)', 'baseline',
                                'tab:red')):
        xs, ys = [r[x] for r in rows], [r[side]['total_s'] for r in rows]
        ax.plot(xs, ys, 'o-', color=color, label=label)
        hollow = [(a, b) for a, b, r in zip(xs, ys, rows) if r[side].get('extrapolated')]
        if hollow:
            ax.plot(*zip(*hollow), 'o', color=color, markerfacecolor='white',
                    label=f'{label}, extrapolated')
    ax.set_xscale('log' if log_x else 'linear')
    ax.set_yscale('log')
    data_ticks(ax, [r[x] for r in rows])
    ax.set_xlabel(xlabel)
    ax.set_ylabel('refresh s (k-means + matching)')
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot(results: dict, folder: Path, suffix: str = '') -> list[Path]:
    """PNG plots of the benchmarks' sweeps; returns their paths."""
    paths = []
    ts = results['train_step']
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if ts.get('batch_sweep'):
        for path in dict.fromkeys(r['path'] for r in ts['batch_sweep']):
            rows = [r for r in ts['batch_sweep'] if r['path'] == path]
            ax.plot([r['batch_size'] for r in rows], [r['regions_per_s'] for r in rows], 'o-',
                    label=path)
        ax.set_xscale('log', base=2)
        data_ticks(ax, [r['batch_size'] for r in ts['batch_sweep']])
        ax.set_xlabel('batch size (regions)')
        ax.legend(fontsize=8)
    else:
        ax.bar([r['path'] for r in ts['rows']], [r['regions_per_s'] for r in ts['rows']],
               color='tab:blue')
    ax.set_ylabel('regions / s')
    ax.set_title(f"training step throughput ({ts.get('device', 'cpu')})")
    paths.append(save(fig, folder / f'train_step{suffix}.png'))

    proto = results['prototypes']
    paths.append(plot_refresh(proto['refresh'], 'slides', 'slides (TCGA-NSCLC = 1,041)',
                              'prototype refresh time vs slides (K = 4)',
                              folder / f'refresh_vs_slides{suffix}.png', log_x=True))
    if 'refresh_vs_k' in proto:
        paths.append(plot_refresh(proto['refresh_vs_k'], 'k', 'prototypes per slide K',
                                  'prototype refresh time vs K (1,041 slides)',
                                  folder / f'refresh_vs_k{suffix}.png'))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    by_n = proto['matching_vs_slides']
    ax1.loglog([r['slides'] for r in by_n], [r['seconds'] for r in by_n], 'o-')
    ax1.set_xlabel('slides')
    ax1.set_ylabel('neighbour search s')
    by_k = proto['matching_vs_k']
    ax2.semilogy([r['k'] for r in by_k], [r['find_neighbors_s'] for r in by_k], 'o-')
    ax2.set_xlabel('prototypes per slide K')
    ax2.set_ylabel('neighbour search s')
    fig.suptitle('prototype matching time (ours)')
    paths.append(save(fig, folder / f'matching{suffix}.png'))

    st = results['stores']
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(list(st['regions_per_s']), list(st['regions_per_s'].values()), color='tab:green')
    ax.set_xscale('log')
    ax.set_xlabel(f"regions / s (batch {st.get('batch', 128)})")
    ax.set_title('store and loader read throughput')
    paths.append(save(fig, folder / f'stores{suffix}.png'))

    if 'loader_vs_workers' in st:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
        for store, color in (('redis', 'tab:red'), ('memmap', 'tab:green')):
            rows = sorted((r for r in st['loader_vs_workers'] if r['store'] == store),
                          key=lambda r: r['workers'])
            workers = [r['workers'] for r in rows]
            ax1.plot(workers, [r['regions_per_s'] for r in rows], 'o-', color=color,
                     label=store)
            ax2.plot(workers, [r['peak_rss_mb'] for r in rows], 'o-', color=color,
                     label=f'{store}, peak RSS (sum)')
            ax2.plot(workers, [r['pss_mb'] for r in rows], 's--', color=color,
                     label=f'{store}, PSS')
        ax1.set_ylabel(f"regions / s (batch {st.get('batch', 128)})")
        ax1.set_title('DataLoader read throughput')
        ax2.set_ylabel('MB added by the loader')
        ax2.set_title('DataLoader memory')
        for ax in (ax1, ax2):
            ax.set_xlabel('DataLoader workers')
            data_ticks(ax, [r['workers'] for r in st['loader_vs_workers']])
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
        paths.append(save(fig, folder / f'loader_vs_workers{suffix}.png'))
    return paths


def write_docs(rows: list[dict], results: dict, pngs: list[Path], quick: bool) -> Path:
    """``docs/benchmarks.md``: the table, each benchmark's own numbers, the plots."""
    machine = results['prototypes'].get('machine', {})
    lines = ['# Benchmarks', '',
             'Generated by `python benchmarks/run_all.py' + (' --quick' if quick else '')
             + ' --docs`; every ratio compares the plugin with the original code\'s way of '
             'doing the same step, measured in the same run on the same machine '
             '(baselines in `benchmarks/baselines/`).', '',
             f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, "
             f"{machine.get('cores', '?')} cores, torch {machine.get('torch', '?')}, "
             f"no GPU; run at {time.strftime('%Y-%m-%d %H:%M')}.", '',
             '| benchmark | comparison | ours | baseline | unit | ratio | notes |',
             '|---|---|---|---|---|---|---|']
    lines += [f"| {r['benchmark']} | {r['what']} | {r['ours']:.4g} | {r['baseline']:.4g} | "
              f"{r['unit']} | {r['ratio']:.2f}x | {r['extra']} |" for r in rows]
    lines += ['', '## Training step', '', '| path | regions/s | x naive | step s | MFU |',
              '|---|---|---|---|---|']
    lines += [f"| {r['path']} | {r['regions_per_s']:.2f} | {r['speedup_vs_naive']:.2f} | "
              f"{r['step_s']:.2f} | {100 * r['mfu']:.1f}% |"
              for r in results['train_step']['rows']]
    peaks = results['train_step']['matmul_peak_gflops']
    lines += ['', f"Matmul peak in the same run: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 "
              f"{peaks['bf16']:.0f} GFLOP/s.", '']
    lines += [f'![{p.stem}](../benchmarks/results/{p.name})' for p in pngs]
    out = ROOT / 'docs' / 'benchmarks.md'
    out.write_text('\n'.join(lines) + '\n')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='small sizes, < 10 minutes')
    parser.add_argument('--only', nargs='+', choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument('--results', default=str(ROOT / 'benchmarks' / 'results'))
    parser.add_argument('--docs', action='store_true', help='rewrite docs/benchmarks.md')
    parser.add_argument('--reuse', action='store_true',
                        help='summarise the JSON files of an earlier run instead of running')
    args = parser.parse_args()
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = '_quick' if args.quick else ''
    results = {name: (json.loads((folder / f'{name}{suffix}.json').read_text()) if args.reuse
                      else run(name, folder / f'{name}{suffix}.json', args.quick))
               for name in args.only}
    if set(args.only) != set(BENCHMARKS):
        return
    rows = rows_from(results)
    header = f"{'benchmark':<14} {'comparison':<42} {'ratio':>7}  notes"
    print('\n' + header + '\n' + '-' * len(header))
    for r in rows:
        print(f"{r['benchmark']:<14} {r['what']:<42} {r['ratio']:>6.2f}x  {r['extra']}")
    machine = platform.node() or 'machine'
    summary = folder / f'{machine}{suffix}.json'
    summary.write_text(json.dumps(dict(machine=machine, processor=platform.processor(),
                                       quick=args.quick, rows=rows, results=results),
                                  indent=1))
    pngs = plot(results, folder, suffix)
    print(f'wrote {summary} and {", ".join(p.name for p in pngs)}')
    if args.docs:
        print(f'wrote {write_docs(rows, results, pngs, args.quick)}')


if __name__ == '__main__':
    main()
