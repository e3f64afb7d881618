"""The demo's ``report.md``: DINO-4K vs SLPD on the synthetic WSI benchmark, as measured.

A method's result for one protocol is, per training seed, the test AUCs of the F splits
(``results.json`` of ``tools/eval_slides.py``). Reported: the fold mean ± fold std of
each seed and, over seeds, the mean ± std (ddof=1) of the fold means. A difference
between methods is only discussed with at least :data:`MIN_SEEDS` seeds, using the
per-seed paired differences.

Letters: F folds, R seeds.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ['MIN_SEEDS', 'compare_methods', 'fold_aucs', 'format_cell', 'write_report']

MIN_SEEDS = 3


def fold_aucs(eval_dir: str | os.PathLike) -> list[float]:
    """Test AUC of each split from an ``eval_slides.py`` output folder (NaN if undefined)."""
    result = json.loads((Path(eval_dir) / 'results.json').read_text())
    return [math.nan if f['test_auc'] is None else float(f['test_auc'])
            for f in result['folds']]


def _seed_means(per_seed: Sequence[Sequence[float]]) -> np.ndarray:
    return np.array([np.nanmean(f) for f in per_seed])


def format_cell(per_seed: Sequence[Sequence[float]]) -> str:
    """``mean ± fold std`` for one seed; ``mean ± std over seeds (R seeds)`` for more."""
    means = _seed_means(per_seed)
    if len(means) == 1:
        folds = np.asarray(per_seed[0], float)
        return f'{means[0]:.3f} ± {np.nanstd(folds, ddof=1):.3f} (folds)'
    return f'{means.mean():.3f} ± {means.std(ddof=1):.3f} ({len(means)} seeds)'


def compare_methods(base: Sequence[Sequence[float]], other: Sequence[Sequence[float]],
                    base_name: str = 'DINO-4K', other_name: str = 'SLPD') -> str:
    """One sentence on ``other - base``, paired by seed.

    With fewer than :data:`MIN_SEEDS` seeds no claim is made. Otherwise the mean paired
    difference ``d`` is compared with its standard error ``se = std(d) / sqrt(R)``: a
    difference is "larger than its seed-to-seed noise" when ``|d| > 2 se``.

    Args:
        base: Per seed, the fold AUCs of the baseline.
        other: Per seed, the fold AUCs of the other method (same seeds, same order).
        base_name: Name of the baseline. Defaults to 'DINO-4K'.
        other_name: Name of the other method. Defaults to 'SLPD'.

    Returns:
        The sentence.
    """
    diffs = _seed_means(other) - _seed_means(base)
    head = f'{other_name} − {base_name} = {diffs.mean():+.3f}'
    if len(diffs) < MIN_SEEDS:
        return (f'{head} with {len(diffs)} seed(s): no claim about a difference '
                f'(at least {MIN_SEEDS} seeds are needed).')
    se = diffs.std(ddof=1) / math.sqrt(len(diffs))
    verdict = ('larger than twice its standard error over seeds' if abs(diffs.mean()) > 2 * se
               else 'within twice its standard error over seeds: no difference shown')
    return (f'{head} ± {se:.3f} (mean ± s.e. of the paired per-seed differences, '
            f'{len(diffs)} seeds): {verdict}.')


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


def write_report(out_dir: str | os.PathLike, *, setup: Sequence[str],
                 results: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
                 comparisons: Mapping[str, str], figures: Mapping[str, str],
                 prototype_map: dict | None, timings: Mapping[str, float],
                 extra: Sequence[str] = ()) -> Path:
    """Write ``report.md`` (and ``demo_results.json`` with the raw fold AUCs).

    Args:
        out_dir: The demo folder (figures are referenced relative to it).
        setup: Markdown bullet lines describing data, training and evaluation.
        results: Protocol -> method label -> per seed, the fold test AUCs.
        comparisons: Protocol -> sentence from :func:`compare_methods`.
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
    lines = ['# SLPD vs DINO-4K on the synthetic WSI benchmark (CPU demo)', '',
             'Every number below was measured by `tools/run_demo.py` in this run; '
             f'total wall time {total:.0f} s.', '', '## Setup', '', *setup, '',
             '## Results', '', *_table(results), '',
             'One seed: fold mean ± std over the splits (the splits overlap, see '
             'docs/evaluation.md). Several seeds: mean ± std over seeds of the fold means. '
             'Reference rows involve no training and do not depend on the seed.', '',
             '## Verdict', '']
    lines += [f'- **{p}**: {sentence}' for p, sentence in comparisons.items()]
    if extra:
        lines += ['', '## Survival', '', *extra]
    lines += ['', '## Figures', '']
    for caption, name in figures.items():
        lines += [f'**{caption}**', '', f'![{caption}]({name})', '']
    if prototype_map is None:
        lines += ['No prototype map: the SLPD checkpoint has no slide with prototypes.', '']
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
        dict(test_auc_per_seed_per_fold=raw, comparisons=dict(comparisons),
             prototype_map=prototype_map, timings=dict(timings)), indent=1))
    return path
