"""Confidence intervals and paired comparisons of classification and survival results.

- :func:`classification_cis`: 95 % bootstrap intervals of the fold-mean test AUC and
  balanced accuracy of a ``knn``/``linear``/``mil`` result (test slides resampled per
  split, see :mod:`.bootstrap`).
- :func:`compare_classification`: B minus A on the same test slides: paired bootstrap
  intervals of the AUC and balanced-accuracy differences and, for binary tasks, DeLong's
  test of the AUC difference (:mod:`.delong`).
- :func:`survival_ci` / :func:`compare_survival`: the same for the c-index.

A comparison whose interval covers 0 is reported as "no claim"
(:func:`.bootstrap.covers_zero`).

Example:
    >>> cis = classification_cis(result, num_resamples=1000)
    >>> str(cis['test_auc'])                      # '0.912 [0.871, 0.948]'
"""
from __future__ import annotations

from typing import Any

from ..protocols.linear_knn import ProtocolResult
from ..protocols.survival import SurvivalResult
from ..stats.bootstrap import (
    BootstrapCI,
    bootstrap_ci,
    covers_zero,
    metric_auc,
    metric_bacc,
    metric_cindex,
    paired_bootstrap,
)
from ..stats.delong import delong_folds

__all__ = ['CLASSIFICATION_METRICS', 'classification_cis', 'compare_classification',
           'compare_survival', 'survival_ci']

#: Name in the outputs -> bootstrap metric.
CLASSIFICATION_METRICS = {'test_auc': metric_auc, 'test_bacc': metric_bacc}


def _class_folds(result: ProtocolResult) -> list[tuple[Any, Any]]:
    return [(f.y_test, f.test_proba) for f in result.folds]


def _surv_folds(result: SurvivalResult) -> list[tuple[Any, Any, Any]]:
    return [(f.time, f.event, f.risk) for f in result.folds]


def classification_cis(result: ProtocolResult, num_resamples: int = 1000,
                       seed: int = 0) -> dict[str, BootstrapCI]:
    """``{'test_auc': CI, 'test_bacc': CI}`` of the fold means (module docstring)."""
    folds = _class_folds(result)
    return {name: bootstrap_ci(metric, folds, num_resamples, seed)
            for name, metric in CLASSIFICATION_METRICS.items()}


def survival_ci(result: SurvivalResult, num_resamples: int = 1000,
                seed: int = 0) -> BootstrapCI:
    """The bootstrap interval of the fold-mean c-index."""
    return bootstrap_ci(metric_cindex, _surv_folds(result), num_resamples, seed)


def _same_slides(a: list[list[str]], b: list[list[str]], what: str) -> None:
    if a != b:
        raise ValueError(f'a paired comparison needs the same test {what} in the same '
                         'splits for both embedding sets')


def compare_classification(a: ProtocolResult, b: ProtocolResult, num_resamples: int = 1000,
                           seed: int = 0) -> dict[str, Any]:
    """B minus A on the same test slides.

    Returns:
        ``{'test_auc': {'bootstrap': {...}, 'delong': {...} | None, 'no_claim': bool},
        'test_bacc': {'bootstrap': {...}, 'no_claim': bool}}``; DeLong is None for more
        than two classes. ``no_claim`` is True when the bootstrap interval covers 0.

    Raises:
        ValueError: If the two results do not have the same test slides per split.
    """
    _same_slides([f.test_ids for f in a.folds], [f.test_ids for f in b.folds], 'slides')
    out: dict[str, Any] = {}
    for name, metric in CLASSIFICATION_METRICS.items():
        diff = paired_bootstrap(metric, _class_folds(a), _class_folds(b), num_resamples,
                                seed)
        out[name] = dict(bootstrap=diff.as_dict(), no_claim=covers_zero(diff.lo, diff.hi))
    binary = len(a.class_names) == 2
    out['test_auc']['delong'] = (delong_folds(_class_folds(a), _class_folds(b)).as_dict()
                                 if binary else None)
    return out


def compare_survival(a: SurvivalResult, b: SurvivalResult, num_resamples: int = 1000,
                     seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap of the c-index of B minus A on the same cases."""
    _same_slides([f.cases for f in a.folds], [f.cases for f in b.folds], 'cases')
    diff = paired_bootstrap(metric_cindex, _surv_folds(a), _surv_folds(b), num_resamples,
                            seed)
    return dict(bootstrap=diff.as_dict(), no_claim=covers_zero(diff.lo, diff.hi))
