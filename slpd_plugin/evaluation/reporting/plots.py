"""Plots of the survival and few-shot protocols (matplotlib ``Figure``, no pyplot state).

- :func:`plot_kaplan_meier`: Kaplan-Meier curves of the scored patients split at the
  median predicted risk of their fold (high vs low risk), pooled over folds, with
  censoring ticks, the log-rank p-value and a number-at-risk table.
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
from matplotlib.ticker import MaxNLocator, NullLocator

from ..protocols.linear_knn import ProtocolResult
from ..protocols.survival import SurvivalResult
from ..stats.metrics import roc_curves

__all__ = ['kaplan_meier', 'kaplan_meier_figure', 'logrank_p', 'plot_fewshot_curves',
           'plot_kaplan_meier', 'plot_roc_sets', 'risk_groups']


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step points of the Kaplan-Meier estimate: times (T+1,) from 0, survival (T+1,)."""
    times = np.unique(time[event.astype(bool)])
    surv, s = [1.0], 1.0
    for t in times:
        at_risk = (time >= t).sum()
        s *= 1 - ((time == t) & event.astype(bool)).sum() / at_risk
        surv.append(s)
    return np.concatenate([[0.0], times]), np.array(surv)


def risk_groups(result: SurvivalResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split the scored patients into low- and high-risk groups, pooled over folds.

    Each fold is split at its own median predicted risk (above it: high risk).

    Returns:
        ``{'low risk', 'high risk'}`` -> (times (P_g,) float, events (P_g,) bool).
    """
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {'low risk': [], 'high risk': []}
    for f in result.folds:
        high = f.risk > np.median(f.risk)
        groups['high risk'].append((f.time[high], f.event[high]))
        groups['low risk'].append((f.time[~high], f.event[~high]))
    return {label: (np.concatenate([p[0] for p in parts]).astype(float),
                    np.concatenate([p[1] for p in parts]).astype(bool))
            for label, parts in groups.items()}


def logrank_p(groups: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """Log-rank test p-value between the groups (scikit-survival's ``compare_survival``).

    Args:
        groups: Group name -> (times, events), as :func:`risk_groups` returns.

    Returns:
        The p-value; NaN when it is undefined (fewer than two non-empty groups, or no
        event).
    """
    from sksurv.compare import compare_survival  # heavy import: only when used
    parts = [(t, e) for t, e in groups.values() if len(t)]
    if len(parts) < 2 or not any(e.any() for _, e in parts):
        return float('nan')
    time = np.concatenate([t for t, _ in parts])
    event = np.concatenate([e for _, e in parts])
    group = np.concatenate([np.full(len(t), i) for i, (t, _) in enumerate(parts)])
    y = np.array(list(zip(event, time)), dtype=[('event', bool), ('time', float)])
    return float(compare_survival(y, group)[1])


def kaplan_meier_figure(result: SurvivalResult, title: str = '') -> Figure:
    """High- vs low-risk Kaplan-Meier curves of a survival result (:func:`risk_groups`).

    The figure has censoring ticks (+), the log-rank p-value in the legend's title and
    a number-at-risk table under the axes.
    """
    groups = risk_groups(result)
    fig = Figure(figsize=(5, 4.4))
    ax, table = fig.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=(4, 1)))
    horizon = max((t.max() for t, _ in groups.values() if len(t)), default=1.0)
    ticks = [x for x in MaxNLocator(5).tick_values(0, horizon) if 0 <= x <= horizon]
    for row, ((label, (time, event)), color) in enumerate(zip(groups.items(),
                                                               ('tab:blue', 'tab:red'))):
        if not len(time):
            continue
        t, s = kaplan_meier(time, event)
        t, s = np.append(t, time.max()), np.append(s, s[-1])  # on to the last follow-up
        ax.step(t, s, where='post', color=color, label=f'{label} (n={len(time)})')
        censored = np.sort(time[~event])
        at = s[np.searchsorted(t, censored, side='right') - 1]
        ax.plot(censored, at, '+', color=color, ms=6, mew=1)
        for x in ticks:
            table.text(x, row, str(int((time >= x).sum())), color=color, ha='center',
                       va='center', fontsize=7)
    p = logrank_p(groups)
    ax.set(ylabel='survival probability', ylim=(0, 1.02),
           title=title or f'Kaplan-Meier by predicted risk ({result.protocol})')
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, title=f'log-rank p = {p:.3g}' if np.isfinite(p) else
              'log-rank p undefined', title_fontsize=8)
    table.set(xlabel='months', ylim=(-0.6, 1.6), yticks=[0, 1],
              yticklabels=list(groups), xticks=ticks)
    table.set_title('number at risk', fontsize=8, loc='left')
    table.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_kaplan_meier(result: SurvivalResult, out: str | Path, title: str = '') -> Path:
    """Write :func:`kaplan_meier_figure` as a PNG."""
    kaplan_meier_figure(result, title).savefig(out, dpi=100)
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
    ks_all = sorted({k for c in curves.values() for m in c.values() for k in m})
    ax.set_xticks(ks_all, [str(k) for k in ks_all])  # k = 1, 2, 4, ... not 2^0, 2^1, ...
    ax.xaxis.set_minor_locator(NullLocator())
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
