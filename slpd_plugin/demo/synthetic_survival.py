"""Survival outcomes for the synthetic WSI benchmark, in HIPT's survival layout.

Each slide is one patient (its ``case_id``). Its hazard depends on its tissue
composition ``h`` (from ``ground_truth.npz``): ``log hazard = z(h @ beta)`` with
``beta ~ N(0, 1)`` per phenotype and ``z`` standardising over slides. Death times are
exponential with median :data:`MEDIAN_MONTHS` at an average hazard,
``T = Exp(1) * MEDIAN_MONTHS / ln 2 * exp(-strength * z)``; censoring times are uniform
on ``[0, CENSOR_MONTHS]``; the patient is censored when censoring comes first. A
separate random stream (``[seed, 5]``) is used, so the rest of the benchmark is
unchanged by this step.

Files (read by :mod:`slpd_plugin.evaluation.data.survival_data` like HIPT's)::

    survival.csv                   ,case_id,slide_id,survival_months,censorship
    splits_survival/splits_k.csv   ,train,val   (case ids; a 5-fold partition)
    survival_truth.npz             beta (P,), log_hazard (S,), death, censor (S,)
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .synthetic_splits import write_labels_csv

__all__ = ['SURVIVAL_FILE', 'SURVIVAL_SPLITS_DIR', 'write_survival']

SURVIVAL_FILE, SURVIVAL_SPLITS_DIR = 'survival.csv', 'splits_survival'
SURVIVAL_TRUTH = 'survival_truth.npz'
MEDIAN_MONTHS, CENSOR_MONTHS, STRENGTH, NUM_FOLDS = 30.0, 120.0, 1.0, 5


def _write_two_part_split(path: Path, train: list[str], val: list[str]) -> None:
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['', 'train', 'val'])
        for i in range(max(len(train), len(val))):
            writer.writerow([i, *(p[i] if i < len(p) else '' for p in (train, val))])


def write_survival(root: str | os.PathLike, seed: int | None = None,
                   num_folds: int = NUM_FOLDS) -> Path:
    """Add survival outcomes and 5-fold case splits to a benchmark folder.

    Args:
        root: A benchmark folder (its ``ground_truth.npz`` and ``labels.csv`` are read).
        seed: Seed; None takes the benchmark's (``benchmark.json``). Defaults to None.
        num_folds: Folds of the case partition. Defaults to 5 (HIPT's).

    Returns:
        The path of ``survival.csv``.
    """
    root = Path(root)
    if seed is None:
        seed = int(json.loads((root / 'benchmark.json').read_text())['seed'])
    composition = np.load(root / 'ground_truth.npz')['slide_composition']  # (S, P)
    with (root / 'labels.csv').open(newline='') as fh:
        rows = [(r['case_id'], r['slide_id']) for r in csv.DictReader(fh)]
    rng = np.random.default_rng([seed, 5])
    beta = rng.standard_normal(composition.shape[1])
    score = composition @ beta
    z = (score - score.mean()) / (score.std() or 1.0)
    death = rng.exponential(size=len(z)) * MEDIAN_MONTHS / np.log(2) * np.exp(-STRENGTH * z)
    censor = rng.uniform(0, CENSOR_MONTHS, len(z))
    months = np.round(np.minimum(death, censor), 2)
    censored = (censor < death).astype(int)
    write_labels_csv(root / SURVIVAL_FILE,
                     [dict(case_id=c, slide_id=s, survival_months=f'{m:.2f}',
                           censorship=f'{float(e):.1f}')
                      for (c, s), m, e in zip(rows, months, censored)],
                     ['case_id', 'slide_id', 'survival_months', 'censorship'])
    split_dir = root / SURVIVAL_SPLITS_DIR
    split_dir.mkdir(exist_ok=True)
    cases = np.array([c for c, _ in rows])
    for k, val in enumerate(np.array_split(rng.permutation(len(cases)), num_folds)):
        train = np.setdiff1d(np.arange(len(cases)), val)
        _write_two_part_split(split_dir / f'splits_{k}.csv', list(cases[train]),
                              list(cases[np.sort(val)]))
    np.savez(root / SURVIVAL_TRUTH, beta=beta, log_hazard=STRENGTH * z, death=death,
             censor=censor)
    return root / SURVIVAL_FILE
