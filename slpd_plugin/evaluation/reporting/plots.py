"""Plots of the survival and few-shot protocols (matplotlib ``Figure``, no pyplot state).

- :func:`plot_kaplan_meier`: Kaplan-Meier curves of the scored patients split at the
  median predicted risk of their fold (high vs low risk), pooled over folds.
- :func:`plot_fewshot_curves`: balanced accuracy against k (log scale), one line per
  embedding set and classifier, with the std over folds as a band.
- :func:`plot_roc_sets`: one mean ROC curve (over splits) per embedding set, for one
  classification protocol.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..protocols.linear_knn import ProtocolResult
from ..protocols.survival import SurvivalResult
from ..stats.metrics import roc_curves

__all__ = ['kaplan_meier', 'plot_fewshot_curves', 'plot_kaplan_meier', 'plot_roc_sets']


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step points of the Kaplan-Meier estimate: times (T+1,) from 0, survival (T+1,)."""
    times = np.unique(time[event.astype(bool)])
    surv, s = [1.0], 1.0
    for t in times:
        at_risk = (time >= t).sum()
        s *= 1 - ((time == t) & event.astype(bool)).sum() / at_risk
        surv.append(s)
    return np.concatenate([[0.0], times]), np.array(surv)


def plot_kaplan_meier(result: SurvivalResult, out: str | Path, title: str = '') -> Path:
    """High- vs low-risk Kaplan-Meier curves (module docstring)."""
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {'low risk': [], 'high risk': []}
    for f in result.folds:
        high = f.risk > np.median(f.risk)
        groups['high risk'].append((f.time[high], f.event[high]))
        groups['low risk'].append((f.time[~high], f.event[~high]))
    fig = Figure(figsize=(4.5, 3.6))
    ax = fig.subplots()
    for (label, parts), color in zip(groups.items(), ('tab:blue', 'tab:red')):
        time = np.concatenate([p[0] for p in parts])
        event = np.concatenate([p[1] for p in parts])
        if len(time):
            t, s = kaplan_meier(time, event)
            ax.step(t, s, where='post', color=color, label=f'{label} (n={len(time)})')
    ax.set(xlabel='months', ylabel='survival probability', ylim=(0, 1.02),
           title=title or f'Kaplan-Meier by predicted risk ({result.protocol})')
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return Path(out)


def plot_fewshot_curves(curves: Mapping[str, Mapping[str, Mapping[int, tuple[float, float]]]],
                        out: str | Path) -> Path:
    """Few-shot curves: ``curves[set][classifier][k] = (mean, std over folds)``."""
    fig = Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    for name, by_model in curves.items():
        for model, curve in by_model.items():
            ks = np.array(sorted(curve))
            mean = np.array([curve[k][0] for k in ks])
            std = np.nan_to_num(np.array([curve[k][1] for k in ks]))
            line, = ax.plot(ks, mean, 'o-', ms=3, label=f'{name} {model}')
            ax.fill_between(ks, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set_xscale('log', base=2)
    ax.set(xlabel='k (labelled slides per class)', ylabel='balanced accuracy',
           title='few-shot: mean over folds of the draw means (± std over folds)')
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return Path(out)


def plot_roc_sets(results: Mapping[str, ProtocolResult], out: str | Path,
                  title: str = '', grid_size: int = 201) -> Path:
    """Mean ROC over splits (positive class, or macro one-vs-rest) of each set.

    Splits whose test AUC is undefined are skipped; the legend gives each set's mean AUC.
    """
    grid = np.linspace(0.0, 1.0, grid_size)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    for name, result in results.items():
        tprs = [roc_curves(f.y_test, f.test_proba, grid)[1] for f in result.folds
                if np.isfinite(f.test_auc)]
        if tprs:
            auc = result.summary()['test_auc']['mean']
            ax.plot(grid, np.mean(tprs, axis=0), lw=1.5, label=f'{name} (AUC {auc:.3f})')
    ax.plot([0, 1], [0, 1], ':', color='0.5', lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel='false positive rate',
           ylabel='true positive rate', title=title or 'ROC, mean over splits')
    ax.title.set_fontsize(9)
    ax.legend(loc='lower right', fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return Path(out)
