"""The CPU demo's pipeline: SLPD vs DINO-4K on a synthetic WSI benchmark, in minutes.

End to end; run by ``python -m slpd_plugin.cli.run_demo`` and ``tools/run_demo.py``.

Steps of :func:`run_demo` (logged under ``out``):
  1. make the synthetic WSI benchmark (labels depend on tissue composition; HIPT-format
     labels.csv and splits/), or reuse it if ``out`` already holds one made identically;
  2. reference rows: knn/linear on the true phenotype composition (oracle) and on the
     mean raw input features (no encoder);
  3. per seed: train DINO-4K and SLPD with the same data, budget and seed
     (``python -m slpd_plugin.cli.train`` in a subprocess, with configs/demo_bench_*.py,
     or configs/demo_quick_*.py for ``quick``), embed every region with the frozen
     teacher and run knn and linear
     (:func:`slpd_plugin.evaluation.reporting.runs.run_classification`);
  4. survival (Cox c-index on the benchmark's survival outcomes, bootstrap CIs, paired
     comparisons) and few-shot curves for the references and seed 0's encoders;
  5. write report.md, loss_curves.png, auc_bars.png, prototype_map.png (SLPD's
     prototypes of one slide and its neighbour), phenotype_map.png (that slide's true
     phenotypes) and demo_results.json (every fold AUC).
Results are reported as measured; a difference is only discussed with >= 3 seeds.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from slpd_plugin.checkpoints import load_encoder
from slpd_plugin.checkpoints.extract import extract_embeddings
from slpd_plugin.datasets import StoreError, open_store
from slpd_plugin.datasets.labels import load_labels
from slpd_plugin.demo.plots import plot_auc_bars, plot_loss_curves, plot_prototypes_beside_truth
from slpd_plugin.demo.references import write_reference_embeddings
from slpd_plugin.demo.report import compare_methods, fold_aucs, write_report
from slpd_plugin.demo.synthetic_wsi import ensure_wsi_benchmark
from slpd_plugin.evaluation.data.splits import load_splits
from slpd_plugin.evaluation.data.survival_data import load_survival_labels, load_survival_splits
from slpd_plugin.evaluation.reporting.runs import run_classification, run_fewshot, run_survival
from slpd_plugin.utils.cli import UserError

#: The checkout holding ``configs/`` (the demo's configs) and this package.
ROOT = Path(__file__).resolve().parents[2]

METHODS = ('DINO-4K', 'SLPD')
PROTOCOLS = ('knn', 'linear')
REFERENCES = {'composition (oracle)': 'composition', 'raw mean features': 'raw_mean'}
PRESETS = {
    'full': dict(
        benchmark=dict(num_slides=64, channels=384, region_scale=0.12, num_folds=10,
                       val_frac=0.1, test_frac=0.2),
        configs={'DINO-4K': 'configs/demo_bench_dino4k.py',
                 'SLPD': 'configs/demo_bench_slpd.py'}),
    'quick': dict(
        benchmark=dict(num_slides=24, channels=32, region_scale=0.1, num_folds=3,
                       val_frac=0.2, test_frac=0.25),
        configs={'DINO-4K': 'configs/demo_quick_dino4k.py',
                 'SLPD': 'configs/demo_quick_slpd.py'}),
}


class DemoError(UserError):
    """A step failed: one line, exit status 1."""


def _run(cmd: list[str], log: Path, step: str) -> None:
    """Run a command in a subprocess (training: mmengine keeps global state)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])]))
    with log.open('w') as fh:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = [line for line in log.read_text().splitlines() if line.strip()][-1:]
        raise DemoError(f'{step} failed (exit {code}); see {log}: '
                        f'{tail[0] if tail else "no output"}')


@contextlib.contextmanager
def _logged(log: Path, step: str):
    """Send a step's output to ``log``; a failure becomes a DemoError naming the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open('w') as fh:
        try:
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                yield
        except (StoreError, ValueError, KeyError, FileNotFoundError) as err:
            print(f'error: {err}', file=fh)
            raise DemoError(f'{step} failed; see {log}: {err}') from err


def _evaluate(emb: Path, bench: Path, out: Path, step: str) -> dict[str, list[float]]:
    """The knn and linear test AUCs of each split (HIPT's protocol; labels: oncotree_code)."""
    aucs = {}
    table = load_labels(bench / 'labels.csv')
    splits = load_splits(bench / 'splits')
    for protocol in PROTOCOLS:
        target = out / f'eval_{protocol}'
        with _logged(target / 'eval.log', f'{step} {protocol}'):
            wanted = set().union(*(s.all_ids() for s in splits)) & set(table.labels)
            run_classification(protocol, emb, table, splits, target, wanted, roc='mean')
        aucs[protocol] = fold_aucs(target)
    return aucs


def _train_extract(method: str, seed: int, bench: Path, run_dir: Path, preset: dict,
                   timings: dict) -> tuple[Path, dict[str, list[float]]]:
    shutil.rmtree(run_dir, ignore_errors=True)
    config = preset['configs'][method]
    work = run_dir / 'train'
    start = time.time()
    _run([sys.executable, '-m', 'slpd_plugin.cli.train', config, '--work-dir', str(work),
          '--cfg-options', f'train_dataloader.dataset.store={bench / "store"}',
          f'randomness.seed={seed}'], run_dir / 'train.log', f'training {method} seed {seed}')
    timings[f'train {method} (seed {seed})'] = time.time() - start
    ckpt = Path((work / 'last_checkpoint').read_text().strip())
    start = time.time()
    saved = work / Path(config).name  # the config as trained (store and seed applied)
    with _logged(run_dir / 'extract.log', f'extraction {method} seed {seed}'):
        extract_embeddings(load_encoder(saved, ckpt), open_store(bench / 'store'),
                           run_dir / 'emb', progress=False,
                           provenance=dict(config=str(saved), checkpoint=str(ckpt)))
    aucs = _evaluate(run_dir / 'emb', bench, run_dir, f'evaluation {method} seed {seed}')
    timings[f'extract + eval {method} (seed {seed})'] = time.time() - start
    return ckpt, aucs


def _survival_fewshot(bench: Path, out: Path, sets: dict[str, Path], draws: int,
                      timings: dict) -> tuple[list[str], str]:
    """Survival and few-shot runs of ``eval_slides.py`` on several embedding sets.

    Returns the report lines and the few-shot figure (relative to ``out``).
    """
    start = time.time()
    with _logged(out / 'survival' / 'eval.log', 'survival evaluation'):
        print(run_survival(sets, load_survival_labels(bench / 'survival.csv'),
                           load_survival_splits(bench / 'splits_survival'), out / 'survival'))
    with _logged(out / 'fewshot' / 'eval.log', 'few-shot evaluation'):
        print(run_fewshot(sets, load_labels(bench / 'labels.csv'),
                          load_splits(bench / 'splits'), out / 'fewshot',
                          shots=(1, 2, 4, 8, 16), num_draws=draws))
    timings['survival + few-shot'] = time.time() - start
    lines = ['| embeddings | survival: Cox val c-index (5 folds) | 95 % bootstrap CI |',
             '| --- | --- | --- |']
    for name in sets:
        res = json.loads((out / 'survival' / name / 'results.json').read_text())
        s, ci = res['summary'], res['bootstrap']
        lines.append(f'| {name} | {s["mean"]:.3f} ± {s["std"]:.3f} | '
                     f'[{ci["lo"]:.3f}, {ci["hi"]:.3f}] |')
    comparison = (out / 'survival' / 'comparison.md').read_text().splitlines()
    lines += ['', 'Paired bootstrap of the c-index difference (same patients):', '',
              *[line for line in comparison if line.startswith('- ')]]
    return lines, 'fewshot/fewshot.png'


def _setup_lines(bench_params: dict, preset: dict, seeds: list[int], quick: bool) -> list[str]:
    b = bench_params
    return [
        f'- Benchmark (`{"--quick" if quick else "full"}` preset): {b["num_slides"]} slides, '
        f'{b["num_regions"]} regions of C={b["channels"]} channels, {b["num_phenotypes"]} '
        f'phenotypes, {b["num_sites"]} sites, region counts = real TCGA-BRCA counts × '
        f'{b["region_scale"]}; labels {b["class_codes"]} = {b["class_counts"]} slides, '
        f'drawn from class-specific phenotype compositions; {b["num_folds"]} stratified '
        f'train/val/test splits (val {b["val_frac"]}, test {b["test_frac"]}).',
        f'- Training: {", ".join(f"{m} `{c}`" for m, c in preset["configs"].items())}, '
        f'same data, epochs, batch and seed(s) {seeds}.',
        '- Evaluation: frozen teacher backbone, CLS of the full 16×16 grid, mean-pooled '
        'per slide; knn = scikit-learn defaults (k=5), linear = logistic regression with '
        'C chosen on val; test AUC per split.',
    ]


def run_demo(out: Path, seeds: list[int], quick: bool) -> Path:
    """Run the demo's steps (module docstring) into ``out``; return ``report.md``."""
    preset = PRESETS['quick' if quick else 'full']
    load_start = os.getloadavg()[0]
    timings: dict[str, float] = {}
    start = time.time()
    bench = ensure_wsi_benchmark(out / 'benchmark', progress=False, **preset['benchmark'])
    timings['benchmark'] = time.time() - start
    results: dict[str, dict[str, list[list[float]]]] = {p: {} for p in PROTOCOLS}
    start = time.time()
    for label, kind in REFERENCES.items():
        ref = out / 'reference' / kind
        shutil.rmtree(ref, ignore_errors=True)
        write_reference_embeddings(bench, kind, ref / 'emb')
        for protocol, aucs in _evaluate(ref / 'emb', bench, ref, f'reference {kind}').items():
            results[protocol][label] = [aucs]
    timings['reference rows'] = time.time() - start
    ckpts: dict[str, list[Path]] = {m: [] for m in METHODS}
    for seed in seeds:
        for method in METHODS:
            ckpt, aucs = _train_extract(method, seed, bench, out / f'seed{seed}' / method,
                                        preset, timings)
            ckpts[method].append(ckpt)
            for protocol in PROTOCOLS:
                results[protocol].setdefault(method, []).append(aucs[protocol])
    sets = {**{m: ckpts[m][0].parents[1] / 'emb' for m in METHODS},  # DINO-4K first
            'oracle': out / 'reference' / 'composition' / 'emb',
            'raw_mean': out / 'reference' / 'raw_mean' / 'emb'}
    survival, fewshot_png = _survival_fewshot(bench, out, sets, 10 if quick else 50, timings)
    start = time.time()
    runs = {m: ckpts[m][0].parent for m in METHODS}
    figures = {f'Training losses (seed {seeds[0]})': plot_loss_curves(
                   runs, out / 'loss_curves.png').name,
               'Test AUC over splits and seeds': plot_auc_bars(
                   results, out / 'auc_bars.png').name}
    proto = plot_prototypes_beside_truth(ckpts['SLPD'][0], bench, out)
    if proto is not None:
        figures[f'Prototypes of one slide and its neighbour (SLPD, seed {seeds[0]}, last '
                'epoch)'] = 'prototype_map.png'
        figures['True phenotypes of the same slide'] = 'phenotype_map.png'
    figures[f'Few-shot balanced accuracy (seed {seeds[0]}; SimpleShot and logistic '
            'regression)'] = fewshot_png
    comparisons = {p: compare_methods(results[p]['DINO-4K'], results[p]['SLPD'])
                   for p in PROTOCOLS}
    timings['report'] = time.time() - start
    params = json.loads((bench / 'benchmark.json').read_text())
    machine = (f'- Machine: {os.cpu_count()} CPU cores; 1-minute load average '
               f'{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end '
               '(other processes slow the wall times below).')
    return write_report(out, setup=[*_setup_lines(params, preset, seeds, quick), machine],
                        results=results, comparisons=comparisons, figures=figures,
                        prototype_map=proto, timings=timings, extra=survival)
