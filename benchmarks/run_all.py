"""Run every benchmark, print one table of ratios, write JSON and PNG plots.

Each row compares the plugin's way of doing a step with the original code's way,
measured in the same run on the same machine (baselines in ``benchmarks/baselines/``):

- ``train_step.py``: batched on-device multi-crop + SDPA (+ bf16 / fp16 / compile)
  vs per-sample CPU crops, explicit attention, host sync per step (fp16 on GPU);
- ``stores.py``: batched float16 Redis reads; memmap vs one pickled float32 GET per
  region;
- ``prototypes.py``: batched k-means + batched exact matching vs per-slide faiss k-means
  and search + one (S, S, K!) permutation tensor;
- ``refresh_share.py``: refresh with ``source='memory'`` vs the full embedding pass;
- ``epoch.py``: one epoch with the Runner (refresh, steps, hooks, checkpoint) vs the
  original's loop over all of the above.

    python benchmarks/run_all.py --quick     # < 10 minutes on a 2-core CPU
    python benchmarks/run_all.py             # full sizes

Writes ``benchmarks/results/<machine>.json``, ``benchmarks/results/*.png`` and each
benchmark's own JSON next to them; ``--docs`` also rewrites ``docs/benchmarks.md``.
``--reuse --docs`` rewrites the summary, plots and ``docs/benchmarks.md`` from the saved
JSON files without running anything (e.g. after re-running one benchmark alone).
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
BENCHMARKS = ('train_step', 'stores', 'prototypes', 'refresh_share', 'epoch')


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
    """One row per comparison: benchmark, what, ours, baseline, unit, speedup, notes.

    ``speedup`` is ours / baseline for rates (``.../s``) and baseline / ours for times
    (``s``), so above 1 means the plugin is faster either way.
    """
    rows = []
    ts = {r['path']: r for r in results['train_step']['rows']}
    for path, r in ts.items():
        if path != 'naive':
            rows.append(dict(benchmark='train_step', what=f'{path} vs naive',
                             ours=r['regions_per_s'], baseline=ts['naive']['regions_per_s'],
                             unit='regions/s', extra=f"MFU {100 * r['mfu']:.0f}%, data wait "
                             f"{100 * r['data_share']:.0f}%{memory_note(r)}"))
    stores = results['stores']
    st, rss = stores['regions_per_s'], stores.get('peak_rss_mb', {})
    base = st['a_original_redis_pickle_fp32']
    for key, label in (('b_redis_store_fp16', 'redis fp16 batched vs pickle GETs'),
                       ('c_memmap_store_fp16_warm', 'memmap vs pickle GETs'),
                       ('loader_memmap_2workers', 'loader memmap, 2 workers vs pickle GETs')):
        if key in st:
            rows.append(dict(benchmark='stores', what=label, ours=st[key], baseline=base,
                             unit='regions/s',
                             extra=f'peak RSS {rss[key]:.0f} MB' if key in rss else ''))
    ref = results['prototypes']['refresh']
    ref = next(r for r in ref if r['scale'] == 1) if isinstance(ref, list) else ref
    rows.append(dict(benchmark='prototypes', what='refresh at TCGA scale vs the original way',
                     ours=ref['torch']['total_s'], baseline=ref['baseline']['total_s'],
                     unit='s', extra=f"peak RSS {ref['torch']['peak_rss_mb']:.0f} MB "
                     f"(baseline {ref['baseline']['peak_rss_mb']:.0f} MB)"))
    share = {r['source']: r for r in results['refresh_share']['rows']}
    rows.append(dict(benchmark='refresh_share', what='refresh: memory bank vs full pass',
                     ours=share['memory']['refresh_s'], baseline=share['pass']['refresh_s'],
                     unit='s', extra=f"share of epoch: pass {100 * share['pass']['share']:.1f}%"
                     f", memory {100 * share['memory']['share']:.1f}%"))
    ep = {r['side']: r for r in results['epoch']['rows']}
    for side, r in ep.items():
        if side != 'original':
            rows.append(dict(benchmark='epoch', what=f'{side} vs original, one epoch',
                             ours=r['seconds'], baseline=ep['original']['seconds'], unit='s',
                             extra=f"{results['epoch']['regions']} regions{memory_note(r)}"))
    for r in rows:
        r['ratio'] = (r['ours'] / r['baseline'] if r['unit'].endswith('/s')
                      else r['baseline'] / r['ours'])
    return rows


def memory_note(row: dict) -> str:
    """', peak RSS ... MB[, device ... MB]' of a row measured with memory probes."""
    note = f", peak RSS {row['peak_rss_mb']:.0f} MB" if 'peak_rss_mb' in row else ''
    if row.get('peak_device_mb') is not None:
        note += f", device {row['peak_device_mb']:.0f} MB"
    return note


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
    where a side was ``extrapolated`` are drawn hollow, sizes the baseline refused (its
    permutation tensor would not fit) are left out."""
    rows = sorted(rows, key=lambda r: r[x])
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, side, color in (('ours (torch backend)', 'torch', 'tab:blue'),
                               ('baseline (faiss loop + permutations)', 'baseline',
                                'tab:red')):
        kept = [r for r in rows if r[side]['total_s'] is not None]
        xs, ys = [r[x] for r in kept], [r[side]['total_s'] for r in kept]
        ax.plot(xs, ys, 'o-', color=color, label=label)
        hollow = [(a, b) for a, b, r in zip(xs, ys, kept) if r[side].get('extrapolated')]
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


NOTES = """\
Notes: each benchmark keeps its comparisons inside one run (training-step paths step in
turn, round robin; epoch sides run in turn, then in reverse order) so that other load on
the machine affects both sides alike. Peak RSS is per row: each training-step path and
each epoch side also runs alone in a fresh process (DataLoader workers not included).
`torch.compile` (`model.compile=True`) and bf16 or fp16 autocast (`tools/train.py --amp`,
`--amp fp16`) are options. GPU rows (fp16 original-style step, bf16/fp16 paths, data
wait and peak device memory) appear when the suite runs on a machine with CUDA
(`--device cuda` is the default there)."""


#: The GPU check's section of the page (tools/gpu_check.sh, benchmarks/gpu_check/),
#: hand-written in its own file, as this page is generated.
GPU_CHECK = ROOT / 'benchmarks' / 'gpu_check' / 'section.md'


def targets(results: dict) -> list[tuple[str, str, str]]:
    """The performance issue's targets: (target, measured, verdict)."""
    ts = {r['path']: r for r in results['train_step']['rows']}
    gpu = results['train_step'].get('device', 'cpu').startswith('cuda')
    out = []

    def check(name: str, value: float, bound: float, fmt: str) -> None:
        out.append((name, fmt.format(value), 'met' if value >= bound else 'NOT met'))
    if gpu:
        best = max((r for p, r in ts.items() if p != 'naive'), key=lambda r: r['regions_per_s'])
        check('GPU step >= 2x the original-style step (fp16, explicit attention, sync)',
              best['speedup_vs_naive'], 2.0, '{:.2f}x (' + best['path'] + ')')
        out.append(('GPU share of the step waiting for data', ', '.join(
            f"{p} {100 * r['data_share']:.1f}%" for p, r in ts.items()), 'measured'))
    else:
        if 'ours+bf16' in ts:
            check('CPU bf16 step >= 1.5x naive', ts['ours+bf16']['speedup_vs_naive'], 1.5,
                  '{:.2f}x')
        if 'ours' in ts:
            check('CPU fp32 step: no regression vs naive', ts['ours']['speedup_vs_naive'],
                  1.0, '{:.2f}x')
        out.append(('GPU step >= 2x the original-style step', 'no GPU in this run',
                    'not measured'))
    share = {r['source']: r['share'] for r in results['refresh_share']['rows']}
    out.append(('refresh <= 10% of an epoch at TCGA scale (default settings)',
                f"{100 * share['pass']:.1f}%", 'met' if share['pass'] <= 0.10 else 'NOT met'))
    return out


def lattice_section(result: dict) -> list[str]:
    """Lines of the slide-lattice section (``benchmarks/lattice.py``'s JSON)."""
    lines = ['## Slide lattices (`python benchmarks/lattice.py`)', '',
             f"{result.get('note', '')}", '',
             '| patches | file MB | h5 read s | write+fsync s | convert s | patches/s | MB/s '
             '| x h5 read | peak RSS MB | region ingest patches/s |',
             '|---|---|---|---|---|---|---|---|---|---|']
    lines += [f"| {r['patches']} | {r['file_mb']:.0f} | {r['h5_read_s']:.2f} "
              f"| {r['write_floor_s']:.2f} | {r['lattice_s']:.2f} "
              f"| {r['lattice_patches_s']:.0f} | {r['lattice_mb_s']:.0f} "
              f"| {r['lattice_vs_read']:.1f} | {r['lattice_peak_rss_mb']:.0f} "
              f"| {r['regions_patches_s']:.0f} |" for r in result['rows']]
    lines += ['', f"Window gathers (windows/s, batch {result['batch']}, "
              f"{result['grid']}x{result['grid']}, one thread) and bytes on disk:", '',
              '| patches | lattice: random windows | lattice: regions | region store '
              '| h5 in place: windows | in place: first batch s | lattice MB | region store MB |',
              '|---|---|---|---|---|---|---|---|']
    lines += [f"| {r['patches']} | {r['gather_lattice_windows']:.0f} "
              f"| {r['gather_lattice_regions']:.0f} | {r['gather_region_store']:.0f} "
              f"| {r['gather_in_place_windows']:.0f} | {r['in_place_first_batch_s']:.2f} "
              f"| {r['lattice_bytes'] / 2 ** 20:.0f} | {r['regions_bytes'] / 2 ** 20:.0f} |"
              for r in result['rows']]
    return lines + ['']


def slide_encoding_section(result: dict) -> list[str]:
    """Lines of the whole-slide encoding section (``benchmarks/slide_encoding.py``'s JSON)."""
    depth = result.get('depth') or 'preset'
    lines = ['## Whole-slide encoding memory (`python benchmarks/slide_encoding.py`)', '',
             f"ALiBiViT `{result['arch']}` ({depth} blocks), C = {result['channels']}, "
             f"{100 * result['tissue']:.0f} % tissue in the bounding grid, one thread, chunk "
             f"{result['chunk_size']}; each row in a fresh process. {result.get('note', '')}",
             '', '| patches | grid | dense s | dense peak MB | chunked s | chunked peak MB '
             '| max abs diff |', '|---|---|---|---|---|---|---|']
    for r in result['rows']:
        dense = (f"{r['dense_s']:.2f} | {r['dense_peak_mb']:.0f}" if r['dense_ran'] else
                 f"not run | would need {r['dense_would_need_gb']:.0f} GB")
        diff = f"{r['max_abs_diff']:.1e}" if r['dense_ran'] else '-'
        lines.append(f"| {r['patches']} | {r['grid'][0]}x{r['grid'][1]} | {dense} "
                     f"| {r['chunked_s']:.2f} | {r['chunked_peak_mb']:.0f} | {diff} |")
    return lines + ['']


def extra_sections(folder: Path = ROOT / 'benchmarks' / 'results') -> list[str]:
    """Sections of the benchmarks that run on their own (no baseline to compare with),
    from their saved JSON when present: patch ingest, slide lattices, whole-slide encoding,
    the evaluation protocols and the iBOT block masks."""
    lines = []
    ingest = folder / 'ingest_patches.json'
    if ingest.is_file():
        lines += ['## Patch-feature ingest (`python benchmarks/ingest_patches.py`)', '',
                  '| patches | dim | regions | patches/s | peak RSS MB | file MB |',
                  '|---|---|---|---|---|---|']
        lines += [f"| {r['patches']} | {r['dim']} | {r['regions']} | {r['patches_per_s']:.0f} "
                  f"| {r['peak_rss_mb']:.0f} | {r['file_mb']:.0f} |"
                  for r in json.loads(ingest.read_text())['rows']]
        lines += ['']
    lattice = folder / 'lattice.json'
    if lattice.is_file():
        lines += lattice_section(json.loads(lattice.read_text()))
    slides = folder / 'slide_encoding.json'
    if slides.is_file():
        lines += slide_encoding_section(json.loads(slides.read_text()))
    protocols = folder / 'eval_protocols.json'
    if protocols.is_file():
        ev = json.loads(protocols.read_text())
        load = ev.get('load_average_1min', {})
        lines += [f"## Evaluation protocols on {ev['num_slides']} slides "
                  '(`python benchmarks/eval_protocols.py`)', '',
                  f"Sets: {', '.join(ev['sets'])}. Total {ev['total_cpu_min']:.1f} CPU-min "
                  f"(budget {ev['budget_cpu_min']:.0f}: "
                  f"{'met' if ev['within_budget'] else 'NOT met'}), "
                  f"{ev['total_wall_min']:.1f} min wall; 1-min load average "
                  f"{load.get('start', float('nan')):.1f} at the start, "
                  f"{load.get('end', float('nan')):.1f} at the end.", '',
                  '| protocol | CPU s | wall s | what |', '|---|---|---|---|']
        lines += [f"| {r['protocol']} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} | {r['note']} |"
                  for r in ev['rows']]
        lines += ['']
    masking = folder / 'masking.json'
    if masking.is_file():
        lines += masking_section(json.loads(masking.read_text()))
    return lines


def masking_section(data: dict) -> list[str]:
    """iBOT block masks per batch of global views, ours against lightly's."""
    lines = [f"## iBOT block masks (`python benchmarks/masking.py`, {data['side']}x"
             f"{data['side']} grids, median of {data['repeats']})", '',
             f"`ours holes`: {data['holes']:.0%} of the cells missing; the masks stay inside "
             'the tissue (`outside` counts masked missing cells).', '',
             '| path | grids | ms/batch | masked | of tissue | outside |',
             '|---|---|---|---|---|---|']
    lines += [f"| {r['path']} | {r['grids']} | {r['ms']:.1f} | {r['masked_share']:.3f} | "
              f"{r['masked_of_tissue']:.3f} | {r['outside_tissue']} |" for r in data['rows']]
    return lines + ['']


def write_docs(rows: list[dict], results: dict, pngs: list[Path], quick: bool,
               reused: dict[str, str] | None = None) -> Path:
    """``docs/benchmarks.md``: the table, the targets, each benchmark's numbers, plots."""
    machine = results['prototypes'].get('machine', {})
    ts = results['train_step']
    device = ts.get('gpu') or 'no GPU'
    command = ('python benchmarks/run_all.py' + (' --quick' if quick else '')
               + (' --reuse' if reused else '') + ' --docs')
    when = ('summarised from the saved JSON results' if reused else 'run') + ' at'
    lines = ['# Benchmarks', '',
             f'Generated by `{command}`; every ratio compares the plugin with the original '
             'code\'s way of doing the same step, measured in the same run on the same machine '
             '(baselines in `benchmarks/baselines/`).', '',
             f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, "
             f"{machine.get('cores', '?')} cores, torch {machine.get('torch', '?')}, "
             f"{device}; {when} {time.strftime('%Y-%m-%d %H:%M')}.", '',
             '| benchmark | comparison | ours | baseline | unit | speedup | notes |',
             '|---|---|---|---|---|---|---|']
    if reused:
        lines[-3:-2] = ['Each JSON was written by its own run (machines of the same name may '
                        'differ in CPU between sessions; each ratio is within one run): '
                        + ', '.join(f'{k} {v}' for k, v in reused.items()) + '.', '']
    lines += [f"| {r['benchmark']} | {r['what']} | {r['ours']:.4g} | {r['baseline']:.4g} | "
              f"{r['unit']} | {r['ratio']:.2f}x | {r['extra']} |" for r in rows]
    lines += ['', '## Targets', '', '| target | measured | |', '|---|---|---|']
    lines += [f'| {t} | {m} | {v} |' for t, m, v in targets(results)]
    lines += ['', f"## Training step ({ts.get('device', 'cpu')})", '',
              '| path | regions/s | x naive | step s | data wait | MFU | peak RSS MB '
              '| peak device MB |', '|---|---|---|---|---|---|---|---|']
    lines += [f"| {r['path']} | {r['regions_per_s']:.2f} | {r['speedup_vs_naive']:.2f} | "
              f"{r['step_s']:.3f} | {100 * r['data_share']:.1f}% | {100 * r['mfu']:.1f}% | "
              f"{r.get('peak_rss_mb', float('nan')):.0f} | "
              f"{'-' if r.get('peak_device_mb') is None else round(r['peak_device_mb'])} |"
              for r in ts['rows']]
    peaks = ts['matmul_peak_gflops']
    lines += ['', 'Matmul peak in the same run (GFLOP/s): '
              + ', '.join(f'{k} {v:.0f}' for k, v in peaks.items()) + '.', '']
    if ts.get('masks'):
        lines += ['Tissue masks (ViT-4K `ours` step on the same batch; loader batch read):', '',
                  '| variant | step s | x unmasked | cells present |', '|---|---|---|---|']
        lines += [f"| {r['variant']} | {r['step_s']:.3f} | {r['ratio_vs_unmasked']:.2f} | "
                  f"{r['cells_present']:.2f} |" for r in ts['masks']['step']]
        lines += [f"| loader, {r['store']} | {r['batch_ms']:.2f} ms | "
                  f"{r['ratio_vs_no_holes']:.2f} (x no holes) | |" for r in ts['masks']['loader']]
        lines += ['']
    ep = results['epoch']
    lines += [f"## One SLPD epoch end to end ({ep['regions']} regions of {ep['slides']} "
              f"slides, best of {ep['config']['repeats']})", '',
              '| side | epoch s | regions/s | x original | steps | peak RSS MB |',
              '|---|---|---|---|---|---|']
    lines += [f"| {r['side']} | {r['seconds']:.1f} | {r['regions_per_s']:.2f} | "
              f"{r['speedup']:.2f} | {r['steps']} | {r['peak_rss_mb']:.0f} |"
              for r in ep['rows']]
    lines += [''] + extra_sections()
    lines += [f'![{p.stem}](../benchmarks/results/{p.name})' for p in pngs]
    lines += ['', NOTES, '', GPU_CHECK.read_text().rstrip('\n')]
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
    header = f"{'benchmark':<14} {'comparison':<42} {'speedup':>7}  notes"
    print('\n' + header + '\n' + '-' * len(header))
    for r in rows:
        print(f"{r['benchmark']:<14} {r['what']:<42} {r['ratio']:>6.2f}x  {r['extra']}")
    print('\ntargets:')
    for target, measured, verdict in targets(results):
        print(f'  {target}: {measured} -- {verdict}')
    machine = platform.node() or 'machine'
    summary = folder / f'{machine}{suffix}.json'
    summary.write_text(json.dumps(dict(machine=machine, processor=platform.processor(),
                                       quick=args.quick, rows=rows, results=results),
                                  indent=1))
    pngs = plot(results, folder, suffix)
    print(f'wrote {summary} and {", ".join(p.name for p in pngs)}')
    if args.docs:
        written = {name: time.strftime('%Y-%m-%d %H:%M', time.localtime(
            (folder / f'{name}{suffix}.json').stat().st_mtime)) for name in args.only}
        docs = write_docs(rows, results, pngs, args.quick, written if args.reuse else None)
        print(f'wrote {docs}')


if __name__ == '__main__':
    main()
