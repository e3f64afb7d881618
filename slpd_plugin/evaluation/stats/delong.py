"""DeLong's test for two correlated ROC AUCs on the same slides.

DeLong, DeLong and Clarke-Pearson (1988) estimate the covariance of AUCs computed on the
same cases from the *structural components* of the Mann-Whitney statistic: with scores
``X_i`` of the M positives and ``Y_j`` of the N negatives and ``psi(x, y) = 1`` if
``x > y``, ``1/2`` if equal, 0 else,

    V10_i = mean_j psi(X_i, Y_j)      (one per positive)
    V01_j = mean_i psi(X_i, Y_j)      (one per negative)
    AUC = mean_i V10_i,   Cov(AUC) = S10 / M + S01 / N,

``S10``/``S01`` the (ddof = 1) covariance matrices of the components across the
predictors. Sun and Xu (2014) compute the components from midranks in
``O((M + N) log(M + N))``: with ``Tz`` the midranks in the pooled sample and ``Tx``/``Ty``
the midranks within the positives/negatives, ``V10 = (Tz[X] - Tx) / N`` and
``V01 = 1 - (Tz[Y] - Ty) / M``. That is what :func:`delong_components` does.

For the difference ``AUC_b - AUC_a`` of two predictors, ``var = S_aa + S_bb - 2 S_ab``,
``z = diff / sqrt(var)``, two-sided p from the normal, 95 % interval ``diff ± 1.96 sd``.
Over several folds the fold-mean difference is tested with ``var = sum_k var_k / F^2``,
which treats the folds' test sets as independent (true for a partition; HIPT's ten random
splits overlap, so there it is optimistic, as is the per-fold bootstrap of
:mod:`.bootstrap`). Binary labels only.

- DeLong, DeLong, Clarke-Pearson. Comparing the areas under two or more correlated
  receiver operating characteristic curves: a nonparametric approach. Biometrics 1988.
- Sun, Xu. Fast implementation of DeLong's algorithm for comparing the areas under
  correlated receiver operating characteristic curves. IEEE Signal Process. Lett. 2014.

Letters: K predictors, M positives, N negatives, F folds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import norm, rankdata

__all__ = ['DeLongResult', 'delong_components', 'delong_covariance', 'delong_folds',
           'delong_paired']

Z95 = float(norm.ppf(0.975))


def _split_scores(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (K, M) of the positives and (K, N) of the negatives; checks the labels."""
    y = np.asarray(y)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if scores.shape[1] != len(y):
        raise ValueError(f'DeLong: {scores.shape[1]} scores for {len(y)} labels')
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError(f'DeLong needs binary labels 0/1, got {sorted(set(y.tolist()))}')
    pos = y == 1
    if pos.all() or not pos.any():
        raise ValueError('DeLong needs at least one positive and one negative slide')
    return scores[:, pos], scores[:, ~pos]


def delong_components(y: np.ndarray, scores: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (K,) and structural components V10 (K, M), V01 (K, N), by midranks.

    Args:
        y: Labels (M + N,), 1 = positive.
        scores: Scores (M + N,) of one predictor or (K, M + N) of K predictors; higher
            means more likely positive.
    """
    x, yneg = _split_scores(y, scores)
    m, n = x.shape[1], yneg.shape[1]
    tz = rankdata(np.concatenate([x, yneg], axis=1), axis=1)  # (K, M + N) midranks
    tx = rankdata(x, axis=1)
    ty = rankdata(yneg, axis=1)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return v10.mean(axis=1), v10, v01


def delong_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (K,) and their DeLong covariance matrix (K, K)."""
    auc, v10, v01 = delong_components(y, scores)
    s10 = np.atleast_2d(np.cov(v10)) if v10.shape[1] > 1 else np.zeros((len(auc),) * 2)
    s01 = np.atleast_2d(np.cov(v01)) if v01.shape[1] > 1 else np.zeros((len(auc),) * 2)
    return auc, s10 / v10.shape[1] + s01 / v01.shape[1]


@dataclass
class DeLongResult:
    """DeLong's test of ``AUC_b - AUC_a``.

    Attributes:
        auc_a: AUC of A (fold mean for several folds).
        auc_b: AUC of B.
        diff: ``auc_b - auc_a``.
        se: Standard error of ``diff``.
        z: ``diff / se`` (NaN when ``se`` is 0).
        p: Two-sided p-value.
        lo: ``diff - 1.96 se``.
        hi: ``diff + 1.96 se``.
        num_folds: Folds combined.
    """

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    p: float
    lo: float
    hi: float
    num_folds: int = 1

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return dict(self.__dict__)


def _result(auc_a: float, auc_b: float, var: float, num_folds: int) -> DeLongResult:
    diff, se = auc_b - auc_a, math.sqrt(max(var, 0.0))
    z = diff / se if se > 0 else math.nan
    p = float(2 * norm.sf(abs(z))) if se > 0 else (1.0 if diff == 0 else 0.0)
    return DeLongResult(float(auc_a), float(auc_b), float(diff), se, float(z), p,
                        diff - Z95 * se, diff + Z95 * se, num_folds)


def delong_paired(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> DeLongResult:
    """DeLong's test of two predictors scored on the same slides (binary ``y``)."""
    auc, cov = delong_covariance(y, np.stack([score_a, score_b]))
    return _result(auc[0], auc[1], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 1)


def delong_folds(folds_a: Sequence[tuple[np.ndarray, np.ndarray]],
                 folds_b: Sequence[tuple[np.ndarray, np.ndarray]]) -> DeLongResult:
    """DeLong's test of the fold-mean AUC difference (module docstring).

    Args:
        folds_a: Per fold, labels (M,) and class probabilities (M, 2) of A.
        folds_b: The same for B, same slides in the same order.

    Raises:
        ValueError: If the folds or labels of A and B differ, the task is not binary, or
            no fold has both classes (folds with one class are left out).
    """
    if len(folds_a) != len(folds_b) or not folds_a:
        raise ValueError('DeLong: A and B need the same, non-empty list of folds')
    aucs_a, aucs_b, var = [], [], 0.0
    for (ya, pa), (yb, pb) in zip(folds_a, folds_b):
        if not np.array_equal(ya, yb):
            raise ValueError('DeLong: A and B have different test slides or labels')
        if pa.shape[1] != 2 or pb.shape[1] != 2:
            raise ValueError(f'DeLong compares binary AUCs; got {pa.shape[1]} classes')
        if len(np.unique(ya)) < 2:  # AUC undefined: left out, as in the fold mean
            continue
        r = delong_paired(ya, pa[:, 1], pb[:, 1])
        aucs_a.append(r.auc_a)
        aucs_b.append(r.auc_b)
        var += r.se ** 2
    f = len(aucs_a)
    if not f:
        raise ValueError('DeLong: no fold has both classes in its test part')
    return _result(float(np.mean(aucs_a)), float(np.mean(aucs_b)), var / f ** 2, f)
