"""Run a protocol on embedding folders and write its results.

This module is the one place that writes ``results.json``.

:func:`run_classification` (``knn``, ``linear``, ``mil``) evaluates one embedding folder
and writes into ``out``: ``summary.csv`` (HIPT's layout, :mod:`.report`),
``results.json``, ``predictions.csv`` (test probabilities) and ROC PNGs. The ``run_*`` of
survival, few-shot and retrieval read the labels, the splits and one or more embedding
folders (``{slide_id}.pt``/``.h5`` region or slide embeddings, or a TRIDENT
``slide_features_<encoder>/`` folder), evaluate every set on the same splits and write,
per set, ``summary.csv`` and ``results.json`` (into ``out`` for one set, ``out/<name>``
for several). Survival also writes ``predictions.csv`` and a Kaplan-Meier plot; few-shot
a curve. With several sets, ``comparison.md`` in ``out`` holds one table and, for
survival, paired bootstrap comparisons against the first set. They return the text to
print.

``results.json`` (NaN as ``null``, :mod:`.files`), by protocol:

- ``knn``/``linear``/``mil``: ``protocol``, ``fraction`` (``spec``, ``value``,
  ``description``), ``seed``, ``class_names``, ``num_folds``, ``auc_undefined_folds``,
  ``summary`` (per metric ``mean``/``std``/``n`` over splits of ``test_auc``,
  ``val_auc``, ``test_acc``, ``val_acc``), ``folds`` (per split ``fold``, ``n_train``,
  ``n_val``, ``n_test``, the four metrics, ``C`` or ``best_epoch`` where chosen),
  ``embeddings``, ``num_slides_evaluated``, ``embedding_dim``, ``bootstrap`` (per metric
  the 95 % interval: ``point``, ``lo``, ``hi``, ``num_resamples``, ``num_undefined``;
  empty without resamples), and what the caller adds (``tools/eval_slides.py``: ``task``,
  ``csv``, ``splits``, ``label_col``, ``label_map``, ``class_counts``, counts of
  labelled, unlabelled and missing slides);
- ``survival_cox``/``survival_mil``: ``protocol``, ``embeddings``, for MIL
  ``mil_protocol`` (``default`` or ``hipt``) and ``alpha`` (the NLL's), ``summary``
  (c-index ``mean``/``std``/``n``), ``bootstrap`` (as above), ``folds`` (``fold``,
  ``n_train``, ``n_val``, ``val_cindex``, ``alpha`` for Cox);
- ``fewshot``: ``protocol``, ``embeddings``, ``num_draws``, ``shots``, ``linear`` (the
  logistic-regression preset), ``class_names``,
  ``curve_bacc`` (per classifier, k -> [mean, std] over splits), ``cells`` (per split
  and k: ``fold``, ``k``, ``<classifier>_<bacc|auc>`` -> ``mean``/``std``/``lo``/``hi``
  over draws);
- ``retrieval``: ``protocol``, ``embeddings``, ``similarity`` (``l2`` or ``cosine``),
  ``summary`` (``acc@1``, ``acc@3``, ``acc@5``, ``mvacc@3``, ``mvacc@5``:
  ``mean``/``std``/``n``), ``folds`` (``fold``, ``n_train``, ``n_test`` and the five
  metrics).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from slpd_plugin.datasets.labels import LabelTable

from ..data.embeddings import SlideEmbeddings, load_slide_embeddings, report_missing
from ..data.fractions import TrainFraction
from ..data.splits import Split
from ..data.survival_data import SurvivalTable
from ..protocols.fewshot import FEWSHOT_MODELS, evaluate_fewshot
from ..protocols.linear_knn import ProtocolResult, evaluate_splits
from ..protocols.mil import MILConfig, evaluate_mil, load_bags
from ..protocols.retrieval import RETRIEVAL_COLUMNS, evaluate_retrieval
from ..protocols.survival import CoxConfig, SurvivalResult, evaluate_cox, evaluate_survival_mil
from ..stats.bootstrap import BootstrapCI, bootstrap_ci, metric_cindex, paired_bootstrap, verdict
from ..stats.metrics import mean_std
from .files import write_json_file
from .plots import plot_fewshot_curves, plot_kaplan_meier
from .report import write_predictions, write_roc_plots, write_summary_csv
from .statistics import classification_cis
from .summaries import write_fewshot_summary, write_retrieval_summary, write_survival_summary

__all__ = ['ClassificationRun', 'run_classification', 'run_fewshot', 'run_retrieval',
           'run_survival', 'write_json']


def write_json(result: ProtocolResult, path: str | Path,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Write per-split results, the mean ± std summary and ``extra`` (e.g. counts).

    NaN is written as ``null``.
    """
    payload: dict[str, Any] = {
        'protocol': result.protocol,
        'fraction': {'spec': result.fraction.spec, 'value': result.fraction.value,
                     'description': result.fraction.description},
        'seed': result.seed,
        'class_names': result.class_names,
        'num_folds': len(result.folds),
        'auc_undefined_folds': result.auc_undefined_folds,
        'summary': result.summary(),
        'folds': [f.as_dict() for f in result.folds],
    }
    if extra:
        payload.update(extra)
    return write_json_file(path, payload)


@dataclass
class ClassificationRun:
    """What :func:`run_classification` evaluated and wrote.

    Attributes:
        result: Per-split metrics.
        cis: Metric name -> 95 % bootstrap interval of its fold mean (empty without
            resamples).
        num_evaluated: Slides with an embedding that were evaluated.
        dim: Embedding dimension D.
        pngs: The ROC PNGs written.
    """

    result: ProtocolResult
    cis: dict[str, BootstrapCI]
    num_evaluated: int
    dim: int
    pngs: list[Path]


def run_classification(protocol: str, embeddings: Path, table: LabelTable,
                       splits: Sequence[Split], out: Path, wanted: set[str], *,
                       fraction: str | TrainFraction = '1.0', seed: int = 0,
                       C: float | None = None, mil: MILConfig | None = None,
                       roc: str = 'all', num_resamples: int = 0,
                       extra: Mapping[str, Any] | None = None) -> ClassificationRun:
    """Evaluate ``knn``, ``linear`` or ``mil`` on the ``wanted`` slides of ``embeddings``.

    Writes ``summary.csv``, ``results.json``, ``predictions.csv`` and ROC PNGs into
    ``out``.

    Args:
        protocol: ``'knn'``, ``'linear'`` or ``'mil'``.
        embeddings: Folder of per-slide embedding files (region embeddings for ``mil``).
        table: The labels.
        splits: The splits.
        out: Output folder (created).
        wanted: Slide ids to evaluate (labelled slides of the splits).
        fraction: Share of each training part. Defaults to all.
        seed: Seed of the subsample, the MIL training and the bootstrap. Defaults to 0.
        C: Fixed C of the linear probe; None chooses it on val.
        mil: MIL settings for ``'mil'``. Defaults to :class:`MILConfig`.
        roc: ``'all'`` (per split and mean), ``'mean'`` or ``'none'``. Defaults to 'all'.
        num_resamples: Bootstrap resamples for the CIs; 0 = none. Defaults to 0.
        extra: More keys for ``results.json``.

    Returns:
        ClassificationRun: The result, its CIs and counts.

    Example:
        >>> run = run_classification('knn', Path('emb'), table, splits, Path('out'), wanted)
        >>> run.result.summary()['test_auc']['mean']
    """
    if protocol == 'mil':
        bags = load_bags(embeddings, wanted)
        num_evaluated, dim = len(bags), next(iter(bags.values())).shape[1]
        result = evaluate_mil(bags, table.labels, splits, table.num_classes,
                              table.class_names, fraction, seed=seed, config=mil)
    else:
        emb = load_slide_embeddings(embeddings, wanted)
        num_evaluated, dim = len(emb), emb.dim
        result = evaluate_splits(protocol, emb, table.labels, splits, table.num_classes,
                                 table.class_names, fraction, seed=seed, C=C)
    out.mkdir(parents=True, exist_ok=True)
    cis = classification_cis(result, num_resamples, seed) if num_resamples else {}
    write_summary_csv(result, out / 'summary.csv')
    write_json(result, out / 'results.json', {
        'embeddings': str(embeddings), 'num_slides_evaluated': num_evaluated,
        'embedding_dim': dim, **(extra or {}),
        'bootstrap': {name: ci.as_dict() for name, ci in cis.items()}})
    write_predictions(result, out / 'predictions.csv')
    pngs = [] if roc == 'none' else write_roc_plots(result, out, roc == 'all')
    return ClassificationRun(result, cis, num_evaluated, dim, pngs)


def _set_dir(out: Path, name: str, several: bool) -> Path:
    target = out / name if several else out
    target.mkdir(parents=True, exist_ok=True)
    return target


def _load_set(folder: Path, wanted: set[str], what: str) -> SlideEmbeddings:
    emb = load_slide_embeddings(folder, wanted)
    if not len(emb):
        raise ValueError(f'no overlap between the files in {folder} and the {len(wanted)} '
                         f'{what} (e.g. {sorted(wanted)[:1]})')
    report_missing(wanted, emb, what=f'embeddings in {folder}')
    return emb


def run_survival(sets: Mapping[str, Path], table: SurvivalTable, splits: Sequence[Split],
                 out: Path, model: str = 'cox', cox: CoxConfig | None = None,
                 mil: MILConfig | None = None, seed: int = 0,
                 num_resamples: int = 1000, mil_protocol: str = 'default',
                 alpha: float = 0.0) -> str:
    """Cox or MIL survival for every embedding set (module docstring).

    Per set it writes ``summary.csv``, ``results.json`` (with a bootstrap CI of the mean
    val c-index), ``predictions.csv`` (per-case risk) and ``km.png``; with several sets,
    ``comparison.md`` pairs every set with the first.

    Args:
        sets: Name -> embedding folder (slide embeddings for Cox, region embeddings for
            MIL).
        table: Outcomes and slides per case.
        splits: The survival splits (case ids).
        out: Output folder.
        model: ``'cox'`` or ``'mil'``. Defaults to 'cox'.
        cox: Cox settings. Defaults to None (:class:`~.survival.CoxConfig`).
        mil: MIL settings. Defaults to None (:class:`~.mil.MILConfig`).
        seed: Seed of the models and of the bootstrap. Defaults to 0.
        num_resamples: Bootstrap resamples. Defaults to 1000.
        mil_protocol: As ``protocol`` of :func:`~.survival.evaluate_survival_mil`.
            Defaults to 'default'.
        alpha: As for :func:`~.survival.evaluate_survival_mil`. Defaults to 0.0.

    Returns:
        The lines to print: per set its c-index and CI, then the paired comparisons.
    """
    cases = set().union(*(set(s.train) | set(s.val) for s in splits)) & set(table.time)
    if not cases:
        raise ValueError('no case of the splits has an outcome in the survival CSV')
    wanted = {s for c in cases for s in table.slides[c]}
    results: dict[str, SurvivalResult] = {}
    lines = []
    for name, folder in sets.items():
        emb = _load_set(folder, wanted, 'slides of the split cases')
        if model == 'cox':
            result = evaluate_cox(table, emb, splits, cox, seed)
        else:
            result = evaluate_survival_mil(table, load_bags(folder, emb.ids), splits, mil,
                                           seed=seed, protocol=mil_protocol, alpha=alpha)
        results[name] = result
        target = _set_dir(out, name, len(sets) > 1)
        write_survival_summary(result, target / 'summary.csv')
        ci = bootstrap_ci(metric_cindex, [(f.time, f.event, f.risk) for f in result.folds],
                          num_resamples, seed)
        recipe = dict(mil_protocol=mil_protocol, alpha=alpha) if model == 'mil' else {}
        write_json_file(target / 'results.json', dict(
            protocol=f'survival_{model}', embeddings=str(folder), **recipe,
            summary=result.summary(), bootstrap=ci.as_dict(),
            folds=[f.as_dict() for f in result.folds]))
        with (target / 'predictions.csv').open('w', newline='') as fh:
            writer = csv.writer(fh)
            writer.writerow(['fold', 'case_id', 'survival_months', 'event', 'risk'])
            for f in result.folds:
                for row in zip(f.cases, f.time, f.event.astype(int), f.risk):
                    writer.writerow([f.fold, *row])
        plot_kaplan_meier(result, target / 'km.png', title=f'{name} ({model})')
        s = result.summary()
        lines.append(f'{name}: val c-index {s["mean"]:.3f} ± {s["std"]:.3f} over '
                     f'{s["n"]} folds; bootstrap 95 % CI of the fold mean {ci}')
    if len(sets) > 1:
        lines += _survival_comparison(results, out, seed, num_resamples)
    return '\n'.join(lines)


def _survival_comparison(results: Mapping[str, SurvivalResult], out: Path, seed: int,
                         num_resamples: int) -> list[str]:
    names = list(results)
    base = results[names[0]]
    md = ['# Survival: c-index per embedding set', '',
          '| embeddings | val c-index (mean ± std over folds) | 95 % bootstrap CI |',
          '| --- | --- | --- |']
    sentences = []
    for name, result in results.items():
        s = result.summary()
        ci = bootstrap_ci(metric_cindex, [(f.time, f.event, f.risk) for f in result.folds],
                          num_resamples, seed)
        md.append(f'| {name} | {s["mean"]:.3f} ± {s["std"]:.3f} | [{ci.lo:.3f}, {ci.hi:.3f}] |')
        if name == names[0]:
            continue
        if [f.cases for f in result.folds] != [f.cases for f in base.folds]:
            sentences.append(f'{name} vs {names[0]}: not the same cases, no paired comparison.')
            continue
        diff = paired_bootstrap(metric_cindex,
                                [(f.time, f.event, f.risk) for f in base.folds],
                                [(f.time, f.event, f.risk) for f in result.folds],
                                num_resamples, seed)
        sentences.append(verdict(diff, names[0], name))
    md += ['', '## Paired comparisons (same cases, paired bootstrap of the difference)', '']
    md += [f'- {s}' for s in sentences]
    (out / 'comparison.md').write_text('\n'.join(md) + '\n')
    return sentences


def _labelled(labels: LabelTable, splits: Sequence[Split]) -> set[str]:
    in_splits = set().union(*(s.all_ids() for s in splits))
    wanted = in_splits & set(labels.labels)
    if not wanted:
        raise ValueError('no slide of the splits has a label in the CSV')
    return wanted


def run_fewshot(sets: Mapping[str, Path], labels: LabelTable, splits: Sequence[Split],
                out: Path, shots: Sequence[int], num_draws: int, seed: int = 0,
                linear: str = 'pathobench') -> str:
    """Few-shot SimpleShot and logistic regression for every embedding set.

    Per set it writes ``summary.csv``, ``results.json`` and ``fewshot.png`` (balanced
    accuracy by k); with several sets, one ``fewshot.png`` of all curves in ``out``.

    Args:
        sets: Name -> slide embedding folder.
        labels: The labels.
        splits: The splits.
        out: Output folder.
        shots: The k (slides per class).
        num_draws: Random support sets per (split, k).
        seed: Seed of the draws. Defaults to 0.
        linear: A key of :data:`~.fewshot.LINEAR_PRESETS`. Defaults to 'pathobench'.

    Returns:
        The lines to print: per set and classifier, balanced accuracy by k.
    """
    wanted = _labelled(labels, splits)
    curves, lines = {}, []
    for name, folder in sets.items():
        emb = _load_set(folder, wanted, 'labelled slides of the splits')
        result = evaluate_fewshot(emb, labels.labels, splits, labels.num_classes, shots,
                                  num_draws, seed, linear)
        target = _set_dir(out, name, len(sets) > 1)
        write_fewshot_summary(result, target / 'summary.csv')
        curve = {m: result.curve(m, 'bacc') for m in FEWSHOT_MODELS}
        curves[name] = curve
        write_json_file(target / 'results.json', dict(
            protocol='fewshot', embeddings=str(folder), num_draws=num_draws, shots=list(shots),
            linear=linear, class_names=labels.class_names,
            curve_bacc={m: {str(k): v for k, v in c.items()} for m, c in curve.items()},
            cells=[dict(fold=c.fold, k=c.k, **{f'{m}_{q}': c.stats(m, q)
                                               for m in FEWSHOT_MODELS for q in ('bacc', 'auc')})
                   for c in result.cells]))
        plot_fewshot_curves({name: curve}, target / 'fewshot.png')
        for m in FEWSHOT_MODELS:
            lines.append(f'{name} {m}: balanced accuracy by k (mean over folds of the '
                         f'{num_draws}-draw means): ' + ', '.join(
                             f'{k}: {v[0]:.3f}' for k, v in curve[m].items()))
    if len(sets) > 1:
        plot_fewshot_curves(curves, out / 'fewshot.png')
    return '\n'.join(lines)


def run_retrieval(sets: Mapping[str, Path], labels: LabelTable, splits: Sequence[Split],
                  out: Path, similarity: str = 'l2') -> str:
    """Slide retrieval (L2 by default, or cosine) for every embedding set."""
    wanted = _labelled(labels, splits)
    md = ['| embeddings | ' + ' | '.join(RETRIEVAL_COLUMNS) + ' |',
          '| --- |' + ' --- |' * len(RETRIEVAL_COLUMNS)]
    for name, folder in sets.items():
        emb = _load_set(folder, wanted, 'labelled slides of the splits')
        folds = evaluate_retrieval(emb, labels.labels, splits, similarity)
        target = _set_dir(out, name, len(sets) > 1)
        write_retrieval_summary(folds, target / 'summary.csv')
        summary = {c: mean_std([f.metrics[c] for f in folds]) for c in RETRIEVAL_COLUMNS}
        write_json_file(target / 'results.json', dict(
            protocol='retrieval', embeddings=str(folder), similarity=similarity,
            summary=summary,
            folds=[dict(fold=f.fold, n_train=f.n_train, n_test=f.n_test, **f.metrics)
                   for f in folds]))
        md.append(f'| {name} | ' + ' | '.join(
            f'{summary[c]["mean"]:.3f} ± {summary[c]["std"]:.3f}' for c in RETRIEVAL_COLUMNS)
            + ' |')
    if len(sets) > 1:
        (out / 'comparison.md').write_text('# Retrieval (mean ± std over splits)\n\n'
                                           + '\n'.join(md) + '\n')
    return '\n'.join(md)
