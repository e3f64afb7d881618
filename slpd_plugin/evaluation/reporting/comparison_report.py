"""One markdown report comparing embedding sets over every protocol.

Embedding sets (and raw-feature baselines) side by side, with bootstrap CIs, paired
comparisons and plots.

:func:`run_report` evaluates each embedding set on the same splits and the same slides
(the slides every set has; others are left out with a warning, so that comparisons are
paired) and writes into ``out``:

- ``report.md``: per classification protocol (``knn``, ``linear``, ``mil``) a table of
  test AUC and balanced accuracy (mean ± std over splits, 95 % bootstrap CI of the fold
  mean); paired comparisons of every set against the first (paired bootstrap of the
  AUC and balanced-accuracy differences, DeLong's test of the AUC difference for binary
  tasks; "no claim" when the bootstrap interval covers 0); few-shot balanced accuracy by
  k; retrieval; survival (Cox c-index with CI and paired comparison) when survival
  inputs are given;
- ``report.json``: every number of the report;
- ``roc_<protocol>.png`` (mean ROC per set), ``fewshot.png`` (few-shot curves),
  ``km_<set>.png`` (Kaplan-Meier by predicted risk group: above / below the median
  predicted risk of each test fold).

With ``store``, a baseline set ``raw_features`` is added: the store's raw region
features (each region's grid averaged over its cells, :mod:`.baselines`), mean-pooled for
knn/linear/few-shot/retrieval/Cox, and as bags for a supervised FEATHER-like ABMIL
(:data:`.baselines.FEATHER_LIKE`) in the ``mil`` protocol.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from slpd_plugin.datasets.labels import LabelTable
from slpd_plugin.utils.progress import progress_bar

from ..data.embeddings import SlideEmbeddings, load_slide_embeddings
from ..data.splits import Split
from ..data.survival_data import SurvivalTable
from ..protocols.baselines import (
    FEATHER_LIKE,
    bags_to_slide_embeddings,
    num_parameters,
    raw_region_bags,
)
from ..protocols.fewshot import DEFAULT_SHOTS, FEWSHOT_MODELS, evaluate_fewshot
from ..protocols.linear_knn import ProtocolResult, evaluate_splits
from ..protocols.mil import MILConfig, evaluate_mil, load_bags
from ..protocols.retrieval import RETRIEVAL_COLUMNS, evaluate_retrieval
from ..protocols.survival import evaluate_cox
from ..stats.bootstrap import covers_zero, metric_bacc
from ..stats.metrics import mean_std
from .files import write_json_file
from .plots import plot_fewshot_curves, plot_kaplan_meier, plot_roc_sets
from .statistics import (
    classification_cis,
    compare_classification,
    compare_survival,
    survival_ci,
)

__all__ = ['BASELINE_NAME', 'REPORT_PROTOCOLS', 'SurvivalInputs', 'run_report']

REPORT_PROTOCOLS = ('knn', 'linear', 'mil', 'fewshot', 'retrieval')
CLASSIFIERS = ('knn', 'linear', 'mil')
BASELINE_NAME = 'raw_features'


@dataclass
class SurvivalInputs:
    """Outcomes and HIPT's survival splits (case ids) for the survival section."""

    table: SurvivalTable
    splits: list[Split]


@dataclass
class _Set:
    """One embedding set: slide embeddings, a bag loader for MIL, its MIL config."""

    name: str
    slides: SlideEmbeddings
    bags: Callable[[set[str]], Mapping[str, torch.Tensor]]
    mil: MILConfig


def _fmt(s: Mapping[str, float]) -> str:
    return 'n/a' if math.isnan(s['mean']) else (
        f'{s["mean"]:.3f}' + ('' if math.isnan(s['std']) else f' ± {s["std"]:.3f}'))


def _ci(d: Mapping[str, float], signed: bool = False) -> str:
    f = '{:+.3f}' if signed else '{:.3f}'
    return f'[{f.format(d["lo"])}, {f.format(d["hi"])}]'


def _restrict(slides: SlideEmbeddings, ids: set[str]) -> SlideEmbeddings:
    keep = [s for s in slides.ids if s in ids]
    return SlideEmbeddings(keep, slides.take(keep), list(slides.regions(keep)))


def _subset(bags: Mapping[str, torch.Tensor], ids: set[str]) -> dict[str, torch.Tensor]:
    """The bags of the slides ``ids`` that ``bags`` holds."""
    return {s: bags[s] for s in ids if s in bags}


def _load_sets(sets: Mapping[str, Path], wanted: set[str], store: str | Path | None,
               mil: MILConfig, baseline_mil: MILConfig) -> list[_Set]:
    out = []
    for name, folder in sets.items():
        slides = load_slide_embeddings(folder, wanted)
        if not len(slides):
            raise ValueError(f'{folder}: no embedding file for any of the {len(wanted)} '
                             f'slides of the splits (e.g. {sorted(wanted)[:1]})')
        out.append(_Set(name, slides, partial(load_bags, folder), mil))
    if store is not None:
        raw = raw_region_bags(store, wanted)
        out.append(_Set(BASELINE_NAME, bags_to_slide_embeddings(raw),
                        partial(_subset, raw), baseline_mil))
    common = set.intersection(*(set(s.slides.ids) for s in out))
    if len(common) < len(wanted):
        warnings.warn(f'{len(wanted) - len(common)} of the {len(wanted)} slides of the '
                      'splits are left out: not every embedding set has them (first '
                      f'{sorted(wanted - common)[:5]})', UserWarning, stacklevel=3)
    for s in out:
        s.slides = _restrict(s.slides, common)
    return out


def _classification(protocol: str, es: _Set, labels: LabelTable, splits: Sequence[Split],
                    seed: int) -> ProtocolResult:
    if protocol == 'mil':
        return evaluate_mil(es.bags(set(es.slides.ids)), labels.labels, splits,
                            labels.num_classes, labels.class_names, seed=seed, config=es.mil)
    return evaluate_splits(protocol, es.slides, labels.labels, splits, labels.num_classes,
                           labels.class_names, seed=seed)


def _model_note(protocol: str, es: _Set, num_classes: int) -> str:
    if protocol == 'knn':
        return 'KNN k=5'
    if protocol == 'linear':
        return 'logistic, C on val'
    params = num_parameters(es.mil, es.slides.dim, num_classes) / 1e6
    kind = 'FEATHER-like ABMIL' if es.name == BASELINE_NAME else 'gated-attention MIL'
    return f'{kind}, {params:.2f}M params, supervised'


def _classification_section(protocol: str, results: Mapping[str, ProtocolResult],
                            notes: Mapping[str, str], num_resamples: int, seed: int,
                            record: dict[str, Any]) -> list[str]:
    md = [f'## {protocol}: test part of each split', '',
          '| embeddings | model | test AUC | 95 % CI | balanced acc. | 95 % CI |',
          '| --- | --- | --- | --- | --- | --- |']
    rec: dict[str, Any] = {}
    for name, result in results.items():
        cis = classification_cis(result, num_resamples, seed)
        bacc = mean_std([metric_bacc(f.y_test, f.test_proba) for f in result.folds])
        auc = result.summary()['test_auc']
        md.append(f'| {name} | {notes[name]} | {_fmt(auc)} | {_ci(cis["test_auc"].as_dict())} '
                  f'| {_fmt(bacc)} | {_ci(cis["test_bacc"].as_dict())} |')
        rec[name] = dict(model=notes[name], test_auc=auc, test_bacc=bacc,
                         bootstrap={k: v.as_dict() for k, v in cis.items()},
                         folds=[f.as_dict() for f in result.folds])
    names = list(results)
    if len(names) > 1:
        md += ['', f'Paired comparisons against **{names[0]}** (same test slides; '
                   f'{num_resamples} paired bootstrap resamples; DeLong for binary AUC):', '',
               '| embeddings | ΔAUC | bootstrap 95 % CI | DeLong 95 % CI, p | Δbalanced acc. '
               '| bootstrap 95 % CI | verdict (AUC) |',
               '| --- | --- | --- | --- | --- | --- | --- |']
        for name in names[1:]:
            cmp = compare_classification(results[names[0]], results[name], num_resamples,
                                         seed)
            rec[name]['vs_' + names[0]] = cmp
            a, b, d = (cmp['test_auc']['bootstrap'], cmp['test_bacc']['bootstrap'],
                       cmp['test_auc']['delong'])
            delong = f'{_ci(d, True)}, p = {d["p"]:.3g}' if d else 'n/a (> 2 classes)'
            say = ('no claim (CI covers 0)' if cmp['test_auc']['no_claim'] else
                   f'{name if a["lo"] > 0 else names[0]} better')
            md.append(f'| {name} | {a["point"]:+.3f} | {_ci(a, True)} | {delong} | '
                      f'{b["point"]:+.3f} | {_ci(b, True)} | {say} |')
    record[protocol] = rec
    return md + ['', f'![ROC {protocol}](roc_{protocol}.png)', '']


def _fewshot_section(sets: Sequence[_Set], labels: LabelTable, splits: Sequence[Split],
                     shots: Sequence[int], draws: int, seed: int, out: Path,
                     record: dict[str, Any]) -> list[str]:
    curves = {}
    for es in sets:
        result = evaluate_fewshot(es.slides, labels.labels, splits, labels.num_classes, shots,
                                  draws, seed)
        curves[es.name] = {m: result.curve(m, 'bacc') for m in FEWSHOT_MODELS}
    plot_fewshot_curves(curves, out / 'fewshot.png')
    ks = sorted({k for c in curves.values() for m in c.values() for k in m})
    md = [f'## few-shot: balanced accuracy (mean ± std over splits of the {draws}-draw '
          'means)', '', '| embeddings | classifier | ' + ' | '.join(f'k={k}' for k in ks)
          + ' |', '| --- | --- |' + ' --- |' * len(ks)]
    for name, by_model in curves.items():
        for model, curve in by_model.items():
            md.append(f'| {name} | {model} | ' + ' | '.join(
                _fmt(dict(mean=curve[k][0], std=curve[k][1])) if k in curve else '—'
                for k in ks) + ' |')
    record['fewshot'] = {n: {m: {str(k): v for k, v in c.items()} for m, c in bm.items()}
                         for n, bm in curves.items()}
    return md + ['', '![few-shot curves](fewshot.png)', '']


def _retrieval_section(sets: Sequence[_Set], labels: LabelTable, splits: Sequence[Split],
                       record: dict[str, Any]) -> list[str]:
    md = ['## retrieval: test slides against train slides, L2 (mean ± std over splits)',
          '', '| embeddings | ' + ' | '.join(RETRIEVAL_COLUMNS) + ' |',
          '| --- |' + ' --- |' * len(RETRIEVAL_COLUMNS)]
    rec = {}
    for es in sets:
        folds = evaluate_retrieval(es.slides, labels.labels, splits)
        rec[es.name] = {c: mean_std([f.metrics[c] for f in folds]) for c in RETRIEVAL_COLUMNS}
        md.append(f'| {es.name} | ' + ' | '.join(_fmt(rec[es.name][c])
                                                  for c in RETRIEVAL_COLUMNS) + ' |')
    record['retrieval'] = rec
    return md + ['']


def _survival_section(sets: Sequence[_Set], survival: SurvivalInputs, out: Path,
                      num_resamples: int, seed: int, record: dict[str, Any]) -> list[str]:
    md = ['## survival: Cox (penalty by inner CV on train), c-index on the held-out fold',
          '', '| embeddings | c-index (mean ± std over folds) | 95 % CI | vs first set: '
          'Δ [95 % CI] | verdict |', '| --- | --- | --- | --- | --- |']
    results, rec = {}, {}
    for es in sets:
        result = evaluate_cox(survival.table, es.slides, survival.splits, seed=seed)
        results[es.name] = result
        ci = survival_ci(result, num_resamples, seed)
        plot_kaplan_meier(result, out / f'km_{es.name}.png', title=f'{es.name} (Cox)')
        cell = ['—', '—']
        rec[es.name] = dict(val_cindex=result.summary(), bootstrap=ci.as_dict(),
                            folds=[f.as_dict() for f in result.folds])
        first = sets[0].name
        if es.name != first:
            cmp = compare_survival(results[first], result, num_resamples, seed)
            rec[es.name]['vs_' + first] = cmp
            d = cmp['bootstrap']
            cell = [f'{d["point"]:+.3f} {_ci(d, True)}',
                    'no claim (CI covers 0)' if covers_zero(d['lo'], d['hi']) else
                    f'{es.name if d["lo"] > 0 else first} better']
        md.append(f'| {es.name} | {_fmt(result.summary())} | {_ci(ci.as_dict())} | '
                  f'{cell[0]} | {cell[1]} |')
    record['survival'] = rec
    md.append('')
    md += [f'![Kaplan-Meier {es.name}](km_{es.name}.png)' for es in sets]
    return md + ['']


def run_report(sets: Mapping[str, Path], labels: LabelTable, splits: Sequence[Split],
               out: Path, protocols: Sequence[str] = REPORT_PROTOCOLS,
               store: str | Path | None = None, survival: SurvivalInputs | None = None,
               mil: MILConfig | None = None, shots: Sequence[int] = DEFAULT_SHOTS,
               draws: int = 50, num_resamples: int = 1000, seed: int = 0,
               progress: bool = False) -> str:
    """Evaluate every set (and the raw-feature baseline) and write the report.

    Args:
        sets: Name -> embedding folder (``.pt``/``.h5`` region or slide embeddings).
        labels: Slide labels.
        splits: HIPT-style train/val/test splits.
        out: Output folder (created).
        protocols: Any of :data:`REPORT_PROTOCOLS`. Defaults to all.
        store: A feature store for the ``raw_features`` baseline. Defaults to None.
        survival: Outcomes and survival splits for the survival section. Defaults to
            None (no section).
        mil: MIL settings of the embedding sets (the baseline uses
            :data:`.baselines.FEATHER_LIKE` with the same epochs/lr). Defaults to None
            (``MILConfig()``).
        shots: Few-shot k values. Defaults to 1..32.
        draws: Few-shot draws. Defaults to 50.
        num_resamples: Bootstrap resamples. Defaults to 1000.
        seed: Seed. Defaults to 0.
        progress: Show a progress bar of protocols x sets (stderr). Defaults to False.

    Returns:
        The path of ``report.md``, as text.

    Raises:
        ValueError: On an unknown protocol or inputs without common slides.
    """
    unknown = set(protocols) - set(REPORT_PROTOCOLS)
    if unknown:
        raise ValueError(f'unknown protocol(s) {sorted(unknown)}; choose from '
                         f'{REPORT_PROTOCOLS}')
    mil = mil or MILConfig()
    baseline_mil = MILConfig(**{**FEATHER_LIKE.__dict__, 'epochs': mil.epochs, 'lr': mil.lr,
                                'weight_decay': mil.weight_decay, 'device': mil.device,
                                'progress': mil.progress})
    wanted = set().union(*(s.all_ids() for s in splits)) & set(labels.labels)
    if survival is not None:
        cases = set().union(*(set(s.train) | set(s.val) for s in survival.splits))
        wanted |= {s for c in cases & set(survival.table.time) for s in survival.table.slides[c]}
    if not wanted:
        raise ValueError('no slide of the splits has a label in the CSV')
    loaded = _load_sets(sets, wanted, store, mil, baseline_mil)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = dict(sets={es.name: str(sets.get(es.name, store)) for es in loaded},
                                  class_names=labels.class_names, num_splits=len(splits),
                                  num_slides=len(loaded[0].slides), seed=seed,
                                  num_resamples=num_resamples)
    md = ['# Slide-level evaluation report', '',
          f'Embedding sets: {", ".join(f"`{es.name}`" for es in loaded)}; classes '
          f'{labels.class_names}; {len(splits)} splits; {len(loaded[0].slides)} slides that '
          f'every set has. Intervals are 95 % bootstrap percentiles over {num_resamples} '
          'resamples of the test slides of each split (fold means); a comparison whose '
          'interval covers 0 makes no claim.', '']
    sections = [p for p in (*CLASSIFIERS, 'fewshot', 'retrieval') if p in protocols]
    bar = progress_bar(total=(len(sections) + (survival is not None)) * len(loaded),
                       desc='report', unit='set', disable=not progress)
    for protocol in (p for p in CLASSIFIERS if p in protocols):
        results = {}
        for es in loaded:
            bar.set_postfix_str(f'{protocol} {es.name}')
            results[es.name] = _classification(protocol, es, labels, splits, seed)
            bar.update()
        notes = {es.name: _model_note(protocol, es, labels.num_classes) for es in loaded}
        plot_roc_sets(results, out / f'roc_{protocol}.png', title=f'{protocol}: mean ROC')
        md += _classification_section(protocol, results, notes, num_resamples, seed, record)
    if 'fewshot' in protocols:
        bar.set_postfix_str('fewshot')
        md += _fewshot_section(loaded, labels, splits, shots, draws, seed, out, record)
        bar.update(len(loaded))
    if 'retrieval' in protocols:
        bar.set_postfix_str('retrieval')
        md += _retrieval_section(loaded, labels, splits, record)
        bar.update(len(loaded))
    if survival is not None:
        bar.set_postfix_str('survival')
        md += _survival_section(loaded, survival, out, num_resamples, seed, record)
        bar.update(len(loaded))
    bar.close()
    (out / 'report.md').write_text('\n'.join(md) + '\n')
    write_json_file(out / 'report.json', record, indent=1)
    return str(out / 'report.md')

