"""The demo's ``report.md`` and ``demo_results.json``: every row, as measured.

A row's result for one protocol is, per training seed, the test AUCs of the F splits
(``results.json`` of ``tools/eval_slides.py``); a row that involves no training (a
reference) has one entry. Reported: the mean ± std over all seeds and splits (and, with
several seeds, the std of the seed means), then the paired differences between rows
(:mod:`.paired`: same seed, same split, a difference claimed only with >= 3 seeds and a
95 % interval that excludes 0).

Letters: F splits, R seeds.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .paired import MIN_SEEDS, PairedDifference

__all__ = ['fold_aucs', 'format_cell', 'write_report']


def fold_aucs(eval_dir: str | os.PathLike) -> list[float]:
    """Test AUC of each split from an ``eval_slides.py`` output folder (NaN if undefined)."""
    result = json.loads((Path(eval_dir) / 'results.json').read_text())
    return [math.nan if f['test_auc'] is None else float(f['test_auc'])
            for f in result['folds']]


def format_cell(per_seed: Sequence[Sequence[float]]) -> str:
    """The table cell of one row and protocol.

    ``mean ± std (F splits)`` for one seed; for R seeds the mean ± std over all seeds and
    splits, with the std of the R seed means.
    """
    values = np.asarray(per_seed, float)
    defined = values[~np.isnan(values)]
    if len(defined) < 2:
        return f'{np.mean(defined) if len(defined) else math.nan:.3f}'
    cell = f'{defined.mean():.3f} ± {defined.std(ddof=1):.3f}'
    if len(values) == 1:
        return f'{cell} ({values.shape[1]} splits)'
    means = np.nanmean(values, axis=1)
    return (f'{cell} ({len(values)} seeds × {values.shape[1]} splits; seed means ± '
            f'{means.std(ddof=1):.3f})')


def _signed(x: float) -> str:
    return 'n/a' if math.isnan(x) else f'{x:+.3f}'


def _comparison_lines(comparisons: Sequence[PairedDifference]) -> list[str]:
    lines = ['| protocol | difference | mean | 95 % CI | verdict |',
             '| --- | --- | --- | --- | --- |']
    for c in comparisons:
        lines.append(f'| {c.protocol} | {c.other} − {c.base} | {_signed(c.mean)} | '
                     f'[{_signed(c.lo)}, {_signed(c.hi)}] | {c.verdict} |')
    return lines


def _table(results: Mapping[str, Mapping[str, Sequence[Sequence[float]]]]) -> list[str]:
    protocols = list(results)
    labels = list(dict.fromkeys(m for p in protocols for m in results[p]))
    lines = ['| method | ' + ' | '.join(f'{p} test AUC' for p in protocols) + ' |',
             '| --- |' + ' --- |' * len(protocols)]
    for label in labels:
        cells = [format_cell(results[p][label]) if label in results[p] else '–'
                 for p in protocols]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return lines


def write_report(out_dir: str | os.PathLike, *, title: str, setup: Sequence[str],
                 results: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
                 comparisons: Sequence[PairedDifference], figures: Mapping[str, str],
                 prototype_map: dict | None, timings: Mapping[str, float],
                 extra: Sequence[str] = ()) -> Path:
    """Write ``report.md`` and ``demo_results.json`` (every split AUC, every difference).

    Args:
        out_dir: The demo folder (figures are referenced relative to it).
        title: The methods, e.g. ``'DINO-4K vs SLPD'``.
        setup: Markdown bullet lines describing data, training and evaluation.
        results: Protocol -> row label -> per seed, the split test AUCs.
        comparisons: The paired differences (:func:`~.paired.paired_difference`).
        figures: Caption -> PNG file name inside ``out_dir``.
        prototype_map: Output of
            :func:`~slpd_plugin.demo.plots.plot_prototypes_beside_truth`, or None.
        timings: Step -> wall seconds.
        extra: Markdown lines of a "Survival" section (e.g. a c-index table).
            Defaults to () (no section).

    Returns:
        The report path.
    """
    out = Path(out_dir)
    total = sum(timings.values())
    lines = [f'# {title} on the synthetic WSI benchmark (CPU demo)', '',
             'Every number below was measured by `tools/run_demo.py` in this run; '
             f'total wall time {total:.0f} s.', '', '## Setup', '', *setup, '',
             '## Results', '', *_table(results), '',
             'Test AUC, mean ± std over all splits (one seed) or all seeds × splits, with '
             'the std of the seed means; the splits overlap (see docs/evaluation.md). '
             'Reference rows involve no training and do not depend on the seed.', '',
             '## Paired differences', '',
             'Same seed, same split; mean over seeds of the per-seed mean difference and '
             'its 95 % t-interval over seeds (one seed: over its splits, a spread only). '
             f'A difference is claimed only with at least {MIN_SEEDS} seeds and an interval '
             'that excludes 0; otherwise: no claim.', '', *_comparison_lines(comparisons)]
    if extra:
        lines += ['', '## Survival', '', *extra]
    lines += ['', '## Figures', '']
    for caption, name in figures.items():
        lines += [f'**{caption}**', '', f'![{caption}]({name})', '']
    if prototype_map is None:
        lines += ['No prototype map: no checkpoint has a slide with prototypes.', '']
    else:
        lines += [f'Prototype map: slide `{prototype_map["slide_id"]}`, '
                  f'{prototype_map["num_regions"]} regions, '
                  f'{prototype_map["num_prototypes"]} prototypes used; purity '
                  f'{prototype_map["purity"]:.2f} (share of regions whose prototype\'s '
                  'majority phenotype is their own).', '']
    lines += ['## Wall time', '', '| step | seconds |', '| --- | --- |']
    lines += [f'| {step} | {sec:.1f} |' for step, sec in timings.items()]
    lines += [f'| **total** | **{total:.1f}** |', '']
    path = out / 'report.md'
    path.write_text('\n'.join(lines))
    raw = {p: {m: [[None if math.isnan(a) else a for a in f] for f in per_seed]
               for m, per_seed in by_method.items()} for p, by_method in results.items()}
    (out / 'demo_results.json').write_text(json.dumps(
        dict(test_auc_per_seed_per_fold=raw,
             paired_differences=[c.as_dict() for c in comparisons],
             prototype_map=prototype_map, timings=dict(timings)), indent=1))
    return path
