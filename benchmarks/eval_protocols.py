"""Time every slide-level evaluation protocol on 1,000 synthetic slides (CPU), against a
CPU-minute budget.

Data (not timed): the demo's synthetic WSI benchmark
(:func:`slpd_plugin.demo.synthetic_wsi.make_wsi_benchmark`, 1,000 slides, C = 64 raw
channels, region counts of real TCGA-BRCA slides x 0.5, i.e. ~27 regions per slide, HIPT's
10 train/val/test splits) with its survival outcomes and 5-fold case splits
(:func:`slpd_plugin.demo.synthetic_survival.write_survival`), and one "encoder" embedding
set of D = 192 (ViT-4K-XS's width): ``tanh`` of a fixed random projection of each
region's raw features plus noise, one ``{slide_id}.pt`` per slide.

Timed, each through :func:`slpd_plugin.evaluation.reporting.comparison_report.run_report` (what
``tools/eval_slides.py report`` runs) on that set **and** the store's raw-feature
baseline (2 sets; bootstrap CIs, paired comparisons with DeLong, plots and report files
included): ``knn``, ``linear`` (C on val), ``mil`` (gated-attention MIL on the set,
FEATHER-like ABMIL on the raw features; ``--mil-epochs``, default HIPT's 20),
``fewshot`` (k = 1..32, ``--draws`` 50, both classifiers), ``retrieval``,
``survival cox`` (inner 5-fold CV); and ``survival mil`` (HIPT's discrete-time MIL on the
set, ``--mil-epochs``) through ``evaluate_survival_mil``.

    python benchmarks/eval_protocols.py            # 1,000 slides, the tools' defaults
    python benchmarks/eval_protocols.py --quick    # 40 slides, 3 splits, 1 epoch (tests)

Prints a markdown table and writes JSON (``--out``, default
``benchmarks/results/eval_protocols.json``): wall and CPU seconds per protocol, total CPU
minutes, the budget and whether it was met (``within_budget``), and the load average
(1-minute) before and after: the development machine is shared, so wall times depend on
the load; CPU seconds (``time.process_time``, all threads) much less.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slpd_plugin.datasets.labels import load_labels  # noqa: E402
from slpd_plugin.demo.synthetic_survival import write_survival  # noqa: E402
from slpd_plugin.demo.synthetic_wsi import make_wsi_benchmark  # noqa: E402
from slpd_plugin.evaluation import MILConfig, load_bags, load_splits  # noqa: E402
from slpd_plugin.evaluation.data.survival_data import (  # noqa: E402
    load_survival_labels,
    load_survival_splits,
)
from slpd_plugin.evaluation.protocols.baselines import raw_region_bags  # noqa: E402
from slpd_plugin.evaluation.protocols.survival import evaluate_survival_mil  # noqa: E402
from slpd_plugin.evaluation.reporting.comparison_report import SurvivalInputs, run_report  # noqa: E402

#: All protocols on 1,000 slides, 2 sets, the tools' defaults, on the 2-core CPU.
BUDGET_CPU_MIN = 45.0
CHANNELS, REGION_SCALE, DIM = 64, 0.5, 192


def make_data(root: Path, num_slides: int, num_folds: int, seed: int = 0) -> Path:
    """The synthetic benchmark, its survival files and the ``encoder`` embedding set."""
    bench = make_wsi_benchmark(root / 'bench', num_slides=num_slides, channels=CHANNELS,
                               region_scale=REGION_SCALE, num_folds=num_folds, seed=seed,
                               progress=False)
    write_survival(bench)
    rng = np.random.default_rng([seed, 1])
    proj = rng.standard_normal((CHANNELS, DIM)) / np.sqrt(CHANNELS)
    out = root / 'encoder'
    out.mkdir()
    for sid, raw in raw_region_bags(bench / 'store').items():
        emb = np.tanh(raw.numpy() @ proj) + 0.1 * rng.standard_normal((len(raw), DIM))
        torch.save(torch.as_tensor(emb, dtype=torch.float32), out / f'{sid}.pt')
    return bench


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--num-slides', type=int, default=1000)
    parser.add_argument('--splits', type=int, default=10,
                        help="train/val/test splits (default: HIPT's 10)")
    parser.add_argument('--mil-epochs', type=int, default=20)
    parser.add_argument('--draws', type=int, default=50)
    parser.add_argument('--bootstrap', type=int, default=1000)
    parser.add_argument('--quick', action='store_true',
                        help='40 slides, 3 splits, 1 MIL epoch, 2 draws, 100 resamples')
    parser.add_argument('--budget-cpu-min', type=float, default=BUDGET_CPU_MIN)
    parser.add_argument('--workdir', type=Path, default=None,
                        help='where the data and reports go (default: a temporary folder)')
    parser.add_argument('--out', type=Path,
                        default=ROOT / 'benchmarks' / 'results' / 'eval_protocols.json')
    args = parser.parse_args(argv)
    if args.quick:
        args.num_slides, args.splits, args.mil_epochs, args.draws, args.bootstrap = (
            40, 3, 1, 2, 100)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        load_start = os.getloadavg()
        t0 = time.perf_counter()
        bench = make_data(root, args.num_slides, args.splits)
        generate_s = time.perf_counter() - t0
        rows = _run(args, bench, root)
    total_cpu = sum(r['cpu_s'] for r in rows) / 60
    total_wall = sum(r['wall_s'] for r in rows) / 60
    load_end = os.getloadavg()
    result = dict(
        num_slides=args.num_slides, sets=['encoder (D=192)', f'raw_features (C={CHANNELS})'],
        mil_epochs=args.mil_epochs, draws=args.draws, bootstrap=args.bootstrap,
        generate_s=round(generate_s, 1), rows=rows, total_cpu_min=round(total_cpu, 2),
        total_wall_min=round(total_wall, 2), budget_cpu_min=args.budget_cpu_min,
        within_budget=total_cpu <= args.budget_cpu_min,
        load_average_1min=dict(start=load_start[0], end=load_end[0]),
        machine=dict(cpus=os.cpu_count(), platform=platform.platform(),
                     torch_threads=torch.get_num_threads()))
    print('| protocol | wall s | CPU s | what |\n| --- | --- | --- | --- |')
    for r in rows:
        print(f'| {r["protocol"]} | {r["wall_s"]} | {r["cpu_s"]} | {r["note"]} |')
    verdict = 'PASS' if result['within_budget'] else 'FAIL'
    print(f'| total | {total_wall * 60:.0f} | {total_cpu * 60:.0f} | {verdict}: '
          f'{total_cpu:.1f} CPU-min vs budget {args.budget_cpu_min:.0f} on '
          f'{args.num_slides} slides; load average {load_start[0]:.1f} -> '
          f'{load_end[0]:.1f} (shared machine) |')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + '\n')
    return 0


def _run(args: argparse.Namespace, bench: Path, root: Path) -> list[dict]:
    labels = load_labels(bench / 'labels.csv', 'oncotree_code')
    splits = load_splits(bench / 'splits')
    survival = SurvivalInputs(load_survival_labels(bench / 'survival.csv'),
                              load_survival_splits(bench / 'splits_survival'))
    sets = {'encoder': root / 'encoder'}
    mil = MILConfig(epochs=args.mil_epochs)
    common = dict(store=bench / 'store', mil=mil, draws=args.draws,
                  num_resamples=args.bootstrap)
    rows = []

    def add(name: str, note: str, fn) -> None:
        wall, cpu = timed(fn)
        rows.append(dict(protocol=name, wall_s=round(wall, 1), cpu_s=round(cpu, 1),
                         note=note))
        print(f'{name:<14} wall {wall:7.1f} s   cpu {cpu:7.1f} s   {note}', flush=True)

    splits_note = f'{len(splits)} splits x 2 sets, CIs + paired tests ({args.bootstrap})'
    for protocol, note in (('knn', splits_note), ('linear', splits_note + ', 7 C on val'),
                           ('mil', f'{splits_note}, {args.mil_epochs} epochs, raw: '
                                   'FEATHER-like ABMIL'),
                           ('fewshot', f'{len(splits)} splits x 6 k x {args.draws} draws '
                                       'x 2 classifiers x 2 sets'),
                           ('retrieval', f'{len(splits)} splits x 2 sets')):
        add(protocol, note, lambda p=protocol: run_report(
            sets, labels, splits, root / 'report' / p, [p], **common))
    add('survival cox', f'{len(survival.splits)} folds x 2 sets, inner 5-fold CV, CIs',
        lambda: run_report(sets, labels, splits, root / 'report' / 'cox', [],
                           survival=survival, **common))
    bags = load_bags(root / 'encoder', [s for ss in survival.table.slides.values() for s in ss])
    add('survival mil', f'{len(survival.splits)} folds x 1 set, {args.mil_epochs} epochs',
        lambda: evaluate_survival_mil(survival.table, bags, survival.splits, mil))
    return rows


if __name__ == '__main__':
    sys.exit(main())
