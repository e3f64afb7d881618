"""Classification results as a terminal table, ``summary.csv``, predictions and ROC PNGs.

``results.json`` is written by :mod:`.runs`.

``summary.csv`` keeps the columns of HIPT's (CLAM's) ``summary.csv``,
``folds,test_auc,val_auc,test_acc,val_acc``, without the nameless index column pandas
adds there; one row per split, an empty cell where a value is undefined (what pandas
writes for NaN).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..protocols.linear_knn import METRICS, ProtocolResult
from ..stats.metrics import roc_curves
from .files import csv_cell

__all__ = ['format_table', 'write_predictions', 'write_roc_plots', 'write_summary_csv']

SUMMARY_COLUMNS = ('folds', 'test_auc', 'val_auc', 'test_acc', 'val_acc')


def write_summary_csv(result: ProtocolResult, path: str | Path) -> Path:
    """Write per-split metrics in HIPT's ``summary.csv`` columns (no index column)."""
    path = Path(path)
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(SUMMARY_COLUMNS)
        for f in result.folds:
            writer.writerow([f.fold, csv_cell(f.test_auc), csv_cell(f.val_auc),
                             csv_cell(f.test_acc), csv_cell(f.val_acc)])
    return path


def write_predictions(result: ProtocolResult, path: str | Path) -> Path:
    """Write test-set class probabilities: ``fold,slide_id,label,prob_0..prob_{K-1}``."""
    path = Path(path)
    k = len(result.class_names)
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['fold', 'slide_id', 'label'] + [f'prob_{c}' for c in range(k)])
        for f in result.folds:
            for slide_id, y, p in zip(f.test_ids, f.y_test, f.test_proba):
                writer.writerow([f.fold, slide_id, int(y)] + [f'{v:.6g}' for v in p])
    return path


def format_table(result: ProtocolResult, title: str = '') -> str:
    """Per-split rows and a ``mean ± std`` row, as fixed-width text."""
    def num(v: float) -> str:
        return '   nan' if math.isnan(v) else f'{v:.4f}'

    head = f'{"fold":>4}  {"n_train":>7}  {"n_test":>6}  ' + '  '.join(
        f'{m:>15}' for m in METRICS)
    lines = [title] if title else []
    lines += [head, '-' * len(head)]
    for f in result.folds:
        lines.append(f'{f.fold:>4}  {f.n_train:>7}  {f.n_test:>6}  ' + '  '.join(
            f'{num(getattr(f, m)):>15}' for m in METRICS))
    lines.append('-' * len(head))
    summary = result.summary()
    cells = []
    for m in METRICS:
        s = summary[m]
        cells.append(f'{num(s["mean"])} ± {num(s["std"])}'.rjust(15))
    lines.append(f'{"mean ± std":<21}  ' + '  '.join(cells))
    undefined = result.auc_undefined_folds
    if undefined:
        lines.append(f'test AUC undefined in {len(undefined)} fold(s) {undefined}; '
                     'left out of the mean')
    return '\n'.join(lines)


def fraction_words(value: float) -> str:
    """``1.0`` -> ``'100 % of training slides'``."""
    return f'{100 * value:g} % of training slides'


def write_roc_plots(result: ProtocolResult, out_dir: str | Path,
                    per_fold: bool = True, grid_size: int = 201) -> list[Path]:
    """Plot ROC curves: ``roc_fold{k}.png`` per split and ``roc_mean.png``.

    Binary tasks plot the positive class; multi-class tasks plot one one-vs-rest curve
    per class and summarise a split by the macro average of their TPRs. ``roc_mean.png``
    shows each split's summary curve and their mean ± std band. Splits whose test AUC
    is undefined are skipped.

    Args:
        result: The evaluation result.
        out_dir: Folder for the PNGs.
        per_fold: Also write one PNG per split. Defaults to True.
        grid_size: Points of the common FPR grid. Defaults to 201.

    Returns:
        The written paths.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    grid = np.linspace(0.0, 1.0, grid_size)
    names = result.class_names
    binary = len(names) == 2
    written = []
    summaries = []
    for f in result.folds:
        if math.isnan(f.test_auc):
            continue
        curves, tpr = roc_curves(f.y_test, f.test_proba, grid)
        summaries.append(tpr)
        if not per_fold:
            continue
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        if binary:
            ax.plot(*curves[0], label=f'{names[1]} vs {names[0]}')
        else:
            for c, (fpr, tpr_c) in enumerate(curves):
                ax.plot(fpr, tpr_c, lw=1, label=f'{names[c]} vs rest')
            ax.plot(grid, tpr, 'k--', lw=1.5, label='macro average')
        _decorate(ax, f'{result.protocol}, {fraction_words(result.fraction.value)}, '
                      f'split {f.fold}: AUC {f.test_auc:.3f}')
        path = out_dir / f'roc_fold{f.fold}.png'
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    if summaries:
        stack = np.stack(summaries)
        mean, std = stack.mean(0), stack.std(0)
        auc = result.summary()['test_auc']
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        for tpr in stack:
            ax.plot(grid, tpr, color='0.7', lw=0.8)
        ax.plot(grid, mean, 'b', lw=2, label='mean over splits')
        ax.fill_between(grid, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1),
                        color='b', alpha=0.15, label='± 1 std')
        _decorate(ax, f'{result.protocol}, {fraction_words(result.fraction.value)}: AUC '
                      f'{auc["mean"]:.3f} ± {auc["std"]:.3f}')
        path = out_dir / 'roc_mean.png'
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def _decorate(ax: Any, title: str) -> None:
    ax.plot([0, 1], [0, 1], ':', color='0.5', lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel='false positive rate',
           ylabel='true positive rate', title=title)
    ax.title.set_fontsize(9)
    ax.legend(loc='lower right', fontsize=7)
    ax.figure.tight_layout()
