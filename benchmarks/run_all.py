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


def plot(results: dict, folder: Path, suffix: str = '') -> list[Path]:
    paths = []
    ts = results['train_step']['rows']
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([r['path'] for r in ts], [r['regions_per_s'] for r in ts], color='tab:blue')
    ax.set_ylabel('regions / s')
    ax.set_title('training step throughput (CPU)')
    paths.append(folder / f'train_step{suffix}.png')
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    proto = results['prototypes']
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    by_n = proto['matching_vs_slides']
    ax1.loglog([r['slides'] for r in by_n], [r['seconds'] for r in by_n], 'o-')
    ax1.set_xlabel('slides')
    ax1.set_ylabel('neighbour search s')
    by_k = proto['matching_vs_k']
    ax2.semilogy([r['k'] for r in by_k], [r['find_neighbors_s'] for r in by_k], 'o-')
    ax2.set_xlabel('prototypes per slide K')
    ax2.set_ylabel('neighbour search s')
    fig.suptitle('prototype matching time')
    paths.append(folder / f'matching{suffix}.png')
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    st = results['stores']['regions_per_s']
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(list(st), list(st.values()), color='tab:green')
    ax.set_xscale('log')
    ax.set_xlabel('regions / s (batch 128)')
    ax.set_title('store and loader read throughput')
    paths.append(folder / f'stores{suffix}.png')
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
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
