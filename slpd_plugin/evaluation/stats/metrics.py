"""Slide-level metrics as HIPT reports them: AUC, accuracy, mean ± std over folds.

Letters: M = slides scored, K = classes.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ['accuracy', 'auc_score', 'mean_std', 'missing_classes', 'roc_curves']


def missing_classes(y_true: np.ndarray, num_classes: int) -> list[int]:
    """Classes in ``range(num_classes)`` that do not occur in ``y_true``."""
    present = set(np.asarray(y_true).tolist())
    return [c for c in range(num_classes) if c not in present]


def auc_score(y_true: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC; NaN when it is undefined because a class is absent from ``y_true``.

    Binary tasks score the positive-class (label 1) probability; more classes give the
    macro average of the one-vs-rest AUCs (``roc_auc_score(..., multi_class='ovr',
    average='macro')``).

    Args:
        y_true: Integer labels of shape (M,).
        proba: Class probabilities of shape (M, K); column k is class k.

    Returns:
        The AUC, or NaN when some class of the K does not occur in ``y_true``.
    """
    num_classes = proba.shape[1]
    if len(y_true) == 0 or missing_classes(y_true, num_classes):
        return math.nan
    if num_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    return float(roc_auc_score(y_true, proba, multi_class='ovr', average='macro',
                               labels=list(range(num_classes))))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions; NaN for an empty set."""
    if len(y_true) == 0:
        return math.nan
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def mean_std(values: Sequence[float]) -> dict[str, float | int]:
    """Mean and sample standard deviation (ddof=1) of the finite values.

    NaN entries (e.g. folds whose AUC is undefined) are left out and counted.

    Args:
        values: One value per fold.

    Returns:
        ``{'mean', 'std', 'n', 'n_nan'}``; ``std`` is NaN with fewer than two values.
    """
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    n = int(finite.size)
    return {
        'mean': float(finite.mean()) if n else math.nan,
        'std': float(finite.std(ddof=1)) if n > 1 else math.nan,
        'n': n,
        'n_nan': int(arr.size - n),
    }


def roc_curves(y_true: np.ndarray, proba: np.ndarray,
               grid: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """ROC curves of one fold and their summary TPR on a common FPR grid.

    Binary: the one curve of the positive class. More classes: one one-vs-rest curve
    per class, summarised by the macro average of their TPRs interpolated on ``grid``.

    Args:
        y_true: Integer labels of shape (M,), every class present.
        proba: Class probabilities of shape (M, K).
        grid: Increasing FPR values in [0, 1], shape (G,).

    Returns:
        The raw ``(fpr, tpr)`` curves (one, or one per class) and the summary TPR of
        shape (G,).
    """
    num_classes = proba.shape[1]
    classes = [1] if num_classes == 2 else list(range(num_classes))
    curves = []
    interp = []
    for c in classes:
        fpr, tpr, _ = roc_curve(np.asarray(y_true) == c, proba[:, c])
        curves.append((fpr, tpr))
        tpr_grid = np.interp(grid, fpr, tpr)
        tpr_grid[0] = 0.0
        interp.append(tpr_grid)
    return curves, np.mean(interp, axis=0)
