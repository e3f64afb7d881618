"""Time every slide-level evaluation protocol on 1,000 slides (CPU), against a budget.

Data: S slides of N ~ 50 region embeddings (D = 192, ViT-4K-XS's width) whose mean
carries the class and the log hazard, with HIPT-style splits (10 random train/val/test
splits for classification, a 5-fold case partition for survival). Each protocol runs
through the package exactly as ``tools/eval_slides.py`` calls it:

knn, linear (C on val), fewshot (k = 1..32, 50 draws, both classifiers), retrieval,
survival cox (inner 5-fold CV), survival mil (20 epochs), and 1,000 bootstrap resamples
of the c-index.

    python benchmarks/eval_protocols.py             # 1,000 slides
    python benchmarks/eval_protocols.py --quick     # 200 slides, 2 MIL epochs

Prints a table and writes JSON (``--out``, default benchmarks/results/eval_protocols.json)
with the wall and CPU seconds of each protocol, the total CPU minutes and the budget.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slpd_plugin.evaluation import MILConfig, SlideEmbeddings, Split, evaluate_splits  # noqa: E402
from slpd_plugin.evaluation.bootstrap import bootstrap_ci, metric_cindex  # noqa: E402
from slpd_plugin.evaluation.fewshot import evaluate_fewshot  # noqa: E402
from slpd_plugin.evaluation.retrieval import evaluate_retrieval  # noqa: E402
from slpd_plugin.evaluation.survival import evaluate_cox, evaluate_survival_mil  # noqa: E402
from slpd_plugin.evaluation.survival_data import SurvivalTable  # noqa: E402

BUDGET_CPU_MIN = 30.0  # all protocols on 1,000 slides, 2-core CPU


def make_data(num_slides: int, dim: int = 192, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f'BENCH-{i:05d}' for i in range(num_slides)]
    y = rng.integers(0, 2, num_slides)
    risk = rng.standard_normal(num_slides)
    direction = rng.standard_normal((2, dim))
    bags = {}
    for i, s in enumerate(ids):
        n = int(rng.integers(20, 80))
        centre = 0.5 * y[i] * direction[0] + 0.5 * risk[i] * direction[1]
        bags[s] = torch.as_tensor(rng.standard_normal((n, dim)) + centre, dtype=torch.float32)
    emb = SlideEmbeddings(ids, np.stack([b.mean(0).double().numpy() for b in bags.values()]),
                          [len(b) for b in bags.values()])
    labels = dict(zip(ids, y.tolist()))
    cls_splits = []
    for k in range(10):
        perm = rng.permutation(num_slides)
        n_te = n_val = num_slides // 10
        cls_splits.append(Split(k, [ids[i] for i in perm[n_te + n_val:]],
                                [ids[i] for i in perm[n_te:n_te + n_val]],
                                [ids[i] for i in perm[:n_te]]))
    death = rng.exponential(size=num_slides) * 30 * np.exp(-risk)
    censor = rng.uniform(0, 120, num_slides)
    table = SurvivalTable({s: float(min(d, c)) for s, d, c in zip(ids, death, censor)},
                          {s: int(d <= c) for s, d, c in zip(ids, death, censor)},
                          {s: [s] for s in ids})
    perm = rng.permutation(num_slides)
    surv_splits = []
    for k, val in enumerate(np.array_split(perm, 5)):
        train = np.setdiff1d(perm, val)
        surv_splits.append(Split(k, [ids[i] for i in train], [ids[i] for i in val], []))
    return emb, bags, labels, cls_splits, table, surv_splits


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='200 slides, 2 MIL epochs')
    parser.add_argument('--out', type=Path,
                        default=ROOT / 'benchmarks' / 'results' / 'eval_protocols.json')
    args = parser.parse_args(argv)
    num_slides, epochs = (200, 2) if args.quick else (1000, 20)
    emb, bags, labels, cls_splits, table, surv_splits = make_data(num_slides)
    rows = []

    def add(name, fn, note=''):
        value, wall, cpu = timed(fn)
        rows.append(dict(protocol=name, wall_s=round(wall, 1), cpu_s=round(cpu, 1), note=note))
        print(f'{name:<22} wall {wall:7.1f} s   cpu {cpu:7.1f} s   {note}', flush=True)
        return value

    add('knn', lambda: evaluate_splits('knn', emb, labels, cls_splits, 2), '10 splits')
    add('linear', lambda: evaluate_splits('linear', emb, labels, cls_splits, 2),
        '10 splits, 7 C on val')
    add('fewshot', lambda: evaluate_fewshot(emb, labels, cls_splits, 2, num_draws=50),
        '10 splits x 6 k x 50 draws x 2')
    add('retrieval', lambda: evaluate_retrieval(emb, labels, cls_splits), '10 splits')
    cox = add('survival cox', lambda: evaluate_cox(table, emb, surv_splits),
              '5 folds, inner 5-fold CV')
    add('survival mil', lambda: evaluate_survival_mil(table, bags, surv_splits,
                                                      MILConfig(epochs=epochs)),
        f'5 folds, {epochs} epochs')
    add('bootstrap c-index', lambda: bootstrap_ci(
        metric_cindex, [(f.time, f.event, f.risk) for f in cox.folds], 1000), '1000 resamples')
    total_cpu_min = sum(r['cpu_s'] for r in rows) / 60
    total_wall_min = sum(r['wall_s'] for r in rows) / 60
    load = os.getloadavg()
    result = dict(num_slides=num_slides, quick=args.quick, rows=rows,
                  total_cpu_min=round(total_cpu_min, 2), total_wall_min=round(total_wall_min, 2),
                  budget_cpu_min=BUDGET_CPU_MIN, within_budget=total_cpu_min <= BUDGET_CPU_MIN,
                  machine=dict(cpus=os.cpu_count(), platform=platform.platform(),
                               load_average_end=load))
    print(f'total: {total_cpu_min:.1f} CPU-min ({total_wall_min:.1f} min wall), budget '
          f'{BUDGET_CPU_MIN:.0f} CPU-min on {num_slides} slides; load average at the end '
          f'{load[0]:.1f} (shared machine)')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
