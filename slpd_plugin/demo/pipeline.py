"""The CPU demo's pipeline: pretraining recipes on a synthetic WSI benchmark, in minutes.

End to end; run by ``python -m slpd_plugin.cli.run_demo`` and ``tools/run_demo.py``.

Steps of :func:`run_demo` (logged under ``out``):
  1. make the synthetic WSI benchmark (labels depend on tissue composition; HIPT-format
     labels.csv and splits/), or reuse it if ``out`` already holds one made identically;
  2. reference rows: knn/linear on the true phenotype composition (oracle) and on the
     mean raw input features (no encoder);
  3. per seed: train every method of :data:`~.methods.METHODS` asked for (DINO-4K and
     SLPD by default) with the same data, budget and seed
     (``python -m slpd_plugin.cli.train`` in a subprocess, with the method's config of
     the preset), embed every slide by the method's route (frozen teacher, mean of the
     region embeddings) and run knn and linear
     (:func:`slpd_plugin.evaluation.reporting.runs.run_classification`); with
     ``baselines`` (``--compare``) also each method's untrained encoder (same config and
     seed, :mod:`.random_init`) and the supervised ABMIL on the raw region features;
  4. survival (Cox c-index on the benchmark's survival outcomes, bootstrap CIs, paired
     comparisons) and few-shot curves for the references and the first seed's encoders;
  5. paired differences (same seed, same split, :mod:`.paired`), then report.md,
     loss_curves.png, auc_bars.png, prototype_map.png (the first method's prototypes of
     one slide and its neighbour), phenotype_map.png (that slide's true phenotypes) and
     demo_results.json (every split AUC of every row and seed).
Results are reported as measured; a difference is only claimed with >= 3 seeds.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from slpd_plugin.datasets.labels import load_labels
from slpd_plugin.evaluation.data.splits import load_splits
from slpd_plugin.evaluation.data.survival_data import load_survival_labels, load_survival_splits
from slpd_plugin.evaluation.reporting.runs import run_fewshot, run_survival

from .methods import (
    ABMIL_PROTOCOL,
    ABMIL_ROW,
    DEFAULT_METHODS,
    METHODS,
    RAW_MEAN_ROW,
    REFERENCE_METHOD,
    SLIDE_ROUTES,
    planned_pairs,
    random_init_row,
)
from .paired import PairedDifference, paired_difference
from .plots import plot_auc_bars, plot_loss_curves, plot_prototypes_beside_truth
from .references import write_reference_embeddings
from .report import write_report
from .steps import (
    PROTOCOLS,
    ROOT,
    DemoError,
    TrainedRow,
    abmil_aucs,
    check_routes,
    evaluate,
    logged,
    random_init_row_aucs,
    train_row,
)
from .synthetic_wsi import ensure_wsi_benchmark

__all__ = ['PRESETS', 'ROOT', 'DemoError', 'Preset', 'run_demo']

REFERENCES = {'composition (oracle)': 'composition', RAW_MEAN_ROW: 'raw_mean'}
@dataclass(frozen=True)
class Preset:
    """Benchmark and evaluation settings of a preset (training: the methods' configs).

    Attributes:
        benchmark: Keyword arguments of the synthetic WSI benchmark.
        survival_resamples: Bootstrap resamples of the survival CIs and comparisons.
        shots: Few-shot k values.
        draws: Few-shot draws per split and k.
        abmil_epochs: Epochs of the supervised ABMIL baseline.
    """

    benchmark: dict
    survival_resamples: int
    shots: tuple[int, ...]
    draws: int
    abmil_epochs: int


PRESETS = {
    'full': Preset(dict(num_slides=64, channels=384, region_scale=0.12, num_folds=10,
                        val_frac=0.1, test_frac=0.2),
                   survival_resamples=1000, shots=(1, 2, 4, 8, 16), draws=50,
                   abmil_epochs=20),
    # k > 4 has too few slides per class on 24 slides; the quick preset is for the tests
    'quick': Preset(dict(num_slides=24, channels=32, region_scale=0.1, num_folds=3,
                         val_frac=0.2, test_frac=0.25),
                    survival_resamples=50, shots=(1, 2, 4), draws=3, abmil_epochs=5),
}


def _survival_fewshot(bench: Path, out: Path, sets: dict[str, Path], preset: Preset,
                      timings: dict) -> tuple[list[str], str]:
    """Survival and few-shot runs of ``eval_slides.py`` on several embedding sets.

    Returns the report lines and the few-shot figure (relative to ``out``).
    """
    start = time.time()
    with logged(out / 'survival' / 'eval.log', 'survival evaluation'):
        print(run_survival(sets, load_survival_labels(bench / 'survival.csv'),
                           load_survival_splits(bench / 'splits_survival'), out / 'survival',
                           num_resamples=preset.survival_resamples))
    with logged(out / 'fewshot' / 'eval.log', 'few-shot evaluation'):
        print(run_fewshot(sets, load_labels(bench / 'labels.csv'),
                          load_splits(bench / 'splits'), out / 'fewshot',
                          shots=preset.shots, num_draws=preset.draws))
    timings['survival + few-shot'] = time.time() - start
    lines = ['| embeddings | survival: Cox val c-index (5 folds) | 95 % bootstrap CI |',
             '| --- | --- | --- |']
    for name in sets:
        res = json.loads((out / 'survival' / name / 'results.json').read_text())
        s, ci = res['summary'], res['bootstrap']
        lines.append(f'| {name} | {s["mean"]:.3f} ± {s["std"]:.3f} | '
                     f'[{ci["lo"]:.3f}, {ci["hi"]:.3f}] |')
    comparison = (out / 'survival' / 'comparison.md').read_text().splitlines()
    lines += ['', f'Paired bootstrap of the c-index difference (same patients, '
              f'{preset.survival_resamples} resamples):', '',
              *[line for line in comparison if line.startswith('- ')]]
    return lines, 'fewshot/fewshot.png'


def _setup_lines(bench_params: dict, preset_name: str, methods: Sequence[str],
                 seeds: list[int], baselines: bool) -> list[str]:
    abmil_epochs = PRESETS[preset_name].abmil_epochs
    b = bench_params
    lines = [
        f'- Benchmark (`{"--quick" if preset_name == "quick" else "full"}` preset): '
        f'{b["num_slides"]} slides, '
        f'{b["num_regions"]} regions of C={b["channels"]} channels, {b["num_phenotypes"]} '
        f'phenotypes, {b["num_sites"]} sites, region counts = real TCGA-BRCA counts × '
        f'{b["region_scale"]}; labels {b["class_codes"]} = {b["class_counts"]} slides, '
        f'drawn from class-specific phenotype compositions; {b["num_folds"]} stratified '
        f'train/val/test splits (val {b["val_frac"]}, test {b["test_frac"]}).',
        '- Training: ' + ', '.join(f'{m} `{METHODS[m].config(preset_name)}`'
                                   for m in methods)
        + f', same data, epochs, batch and seed(s) {seeds}.',
        '- Evaluation: frozen teacher backbone, CLS of the full 16×16 grid; slide '
        'embeddings: ' + '; '.join(f'{m}: {SLIDE_ROUTES[METHODS[m].slide].description}'
                                   for m in methods)
        + '; knn = scikit-learn defaults (k=5), linear = logistic regression with C chosen '
        'on val; test AUC per split.',
    ]
    if baselines:
        lines += [
            '- Random init rows: the same config built and initialised with the same seed '
            '(as the training run starts), not trained, embedded and evaluated the same way.',
            f'- {ABMIL_ROW}: gated-attention MIL sized like FEATHER, trained per split on '
            'the raw region features (each region\'s grid averaged over its cells) with '
            f'the seed, {abmil_epochs} epochs, best val AUC kept; its test AUC is column '
            f'`{ABMIL_PROTOCOL}`.']
    return lines


def _pairs(results: dict, methods: Sequence[str], baselines: bool) -> list[PairedDifference]:
    """The paired differences of :func:`~.methods.planned_pairs` on every probe."""
    out = []
    for protocol in PROTOCOLS:
        for base, other, base_protocol in planned_pairs(methods, baselines):
            label = protocol if base_protocol is None else f'{protocol} vs {base_protocol}'
            out.append(paired_difference(results[base_protocol or protocol][base],
                                         results[protocol][other], base, other, label))
    return out


def _trained_rows(methods: Sequence[str], seeds: Sequence[int], bench: Path, out: Path,
                  preset_name: str, baselines: bool, results: dict,
                  timings: dict) -> dict[str, list[TrainedRow]]:
    """Train every method per seed; with ``baselines`` also its random init and the ABMIL.

    Adds their split AUCs to ``results`` and returns the trained rows by method.
    """
    trained: dict[str, list[TrainedRow]] = {m: [] for m in methods}
    for seed in seeds:
        seen: dict = {}  # random-init weights of this seed already evaluated
        for method in methods:
            row = train_row(method, seed, bench, out / f'seed{seed}' / method, preset_name,
                            timings)
            trained[method].append(row)
            for protocol in PROTOCOLS:
                results[protocol].setdefault(method, []).append(row.aucs[protocol])
            if baselines:
                aucs = random_init_row_aucs(method, seed, bench,
                                            out / f'seed{seed}' / f'{method}_random_init',
                                            preset_name, timings, seen)
                for protocol in PROTOCOLS:
                    results[protocol].setdefault(random_init_row(method), []).append(
                        aucs[protocol])
        if baselines:
            results.setdefault(ABMIL_PROTOCOL, {}).setdefault(ABMIL_ROW, []).append(abmil_aucs(
                out / 'reference' / 'raw_mean' / 'emb', bench, out / f'seed{seed}' / 'ABMIL',
                seed, PRESETS[preset_name].abmil_epochs, timings))
    return trained


def _prototype_figures(trained: dict[str, list[TrainedRow]], methods: Sequence[str],
                       seed: int, bench: Path, out: Path, figures: dict) -> dict | None:
    """The prototype map of the first method whose checkpoint has prototypes.

    Adds its figures to ``figures``; returns its summary, or None.
    """
    for method in methods:
        proto = plot_prototypes_beside_truth(trained[method][0].ckpt, bench, out)
        if proto is not None:
            figures[f'Prototypes of one slide and its neighbour ({method}, seed {seed}, '
                    'last epoch)'] = 'prototype_map.png'
            figures['True phenotypes of the same slide'] = 'phenotype_map.png'
            return proto
    return None


def run_demo(out: Path, seeds: list[int], quick: bool,
             methods: Sequence[str] = DEFAULT_METHODS, baselines: bool = False) -> Path:
    """Run the demo's steps (module docstring) into ``out``; return ``report.md``.

    Args:
        out: The demo folder.
        seeds: Training seeds.
        quick: The tiny preset (tests).
        methods: Keys of :data:`~.methods.METHODS`. Defaults to DINO-4K and SLPD.
        baselines: Add the random-init and ABMIL rows (``--compare``). Defaults to False.
    """
    check_routes(methods)
    preset_name = 'quick' if quick else 'full'
    preset = PRESETS[preset_name]
    load_start = os.getloadavg()[0]
    timings: dict[str, float] = {}
    start = time.time()
    bench = ensure_wsi_benchmark(out / 'benchmark', progress=False, **preset.benchmark)
    timings['benchmark'] = time.time() - start
    results: dict[str, dict[str, list[list[float]]]] = {p: {} for p in PROTOCOLS}
    start = time.time()
    for label, kind in REFERENCES.items():
        ref = out / 'reference' / kind
        shutil.rmtree(ref, ignore_errors=True)
        write_reference_embeddings(bench, kind, ref / 'emb')
        for protocol, aucs in evaluate(ref / 'emb', bench, ref, f'reference {kind}').items():
            results[protocol][label] = [aucs]
    timings['reference rows'] = time.time() - start
    trained = _trained_rows(methods, seeds, bench, out, preset_name, baselines, results,
                            timings)
    first = sorted(methods, key=lambda m: m != REFERENCE_METHOD)  # the reference first
    sets = {**{m: trained[m][0].emb for m in first},
            'oracle': out / 'reference' / 'composition' / 'emb',
            'raw_mean': out / 'reference' / 'raw_mean' / 'emb'}
    survival, fewshot_png = _survival_fewshot(bench, out, sets, preset, timings)
    start = time.time()
    figures = {f'Training losses (seed {seeds[0]})': plot_loss_curves(
                   {m: trained[m][0].work_dir for m in methods}, out / 'loss_curves.png').name,
               'Test AUC over splits and seeds': plot_auc_bars(
                   results, out / 'auc_bars.png').name}
    proto = _prototype_figures(trained, methods, seeds[0], bench, out, figures)
    figures[f'Few-shot balanced accuracy (seed {seeds[0]}; SimpleShot and logistic '
            'regression)'] = fewshot_png
    comparisons = _pairs(results, methods, baselines)
    timings['report'] = time.time() - start
    params = json.loads((bench / 'benchmark.json').read_text())
    machine = (f'- Machine: {os.cpu_count()} CPU cores; 1-minute load average '
               f'{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end '
               '(other processes slow the wall times below).')
    return write_report(
        out, title=' vs '.join(first), setup=[
            *_setup_lines(params, preset_name, methods, seeds, baselines), machine],
        results=results, comparisons=comparisons, figures=figures, prototype_map=proto,
        timings=timings, extra=survival)
