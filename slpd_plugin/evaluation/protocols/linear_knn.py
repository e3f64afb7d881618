"""Slide-level KNN and linear-probe evaluation over HIPT's splits.

Both protocols take the mean-pooled slide embedding, fit on the ``train`` part of each
split, and score the ``test`` part (and, for reference, the ``val`` part):

- ``knn``: HIPT's protocol: ``sklearn.neighbors.KNeighborsClassifier()`` with its
  defaults (k=5, uniform weights, Euclidean distance) on the raw embeddings.
- ``linear``: logistic regression on standardised embeddings
  (``StandardScaler`` -> ``LogisticRegression(C, max_iter=1000)``). ``C`` is chosen per
  split from :data:`DEFAULT_C_GRID` by the AUC on the ``val`` part (accuracy when that
  AUC is undefined; ties go to the smaller C), then the model fit on ``train`` with that
  C scores ``test``. A fixed ``C`` skips the search.

The training part may be subsampled (see
:func:`~slpd_plugin.evaluation.data.fractions.parse_fraction`), seeded per split.

Letters: S = slides, D = embedding size, M = slides scored, K = classes.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.cohort import select_parts
from ..data.embeddings import SlideEmbeddings
from ..data.fractions import TrainFraction, parse_fraction
from ..data.splits import Split
from ..stats.metrics import accuracy, auc_score, mean_std, missing_classes

__all__ = [
    'DEFAULT_C_GRID',
    'FoldResult',
    'PROTOCOLS',
    'ProtocolResult',
    'class_names_or_numbers',
    'evaluate_splits',
    'fold_result',
    'make_knn',
    'make_linear',
]

PROTOCOLS = ('knn', 'linear')
DEFAULT_C_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
METRICS = ('test_auc', 'val_auc', 'test_acc', 'val_acc')


def make_knn() -> KNeighborsClassifier:
    """HIPT's KNN: scikit-learn's defaults (k=5, uniform weights, Euclidean)."""
    return KNeighborsClassifier()


def make_linear(C: float = 1.0, max_iter: int = 1000) -> Pipeline:
    """Standardise, then multinomial logistic regression (lbfgs, L2).

    Args:
        C: Inverse regularisation strength. Defaults to 1.0.
        max_iter: Solver iterations. Defaults to 1000.

    Returns:
        An unfitted scikit-learn pipeline.
    """
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))


@dataclass
class FoldResult:
    """Metrics of one split (NaN where undefined).

    Attributes:
        fold: The split's ``k``.
        n_train: Training slides used (after subsampling).
        n_val: Validation slides scored.
        n_test: Test slides scored.
        test_auc: Test AUC.
        test_acc: Test accuracy.
        val_auc: Validation AUC.
        val_acc: Validation accuracy.
        C: The linear probe's C (None otherwise).
        best_epoch: The MIL epoch kept by model selection (None otherwise).
        test_ids: Test slide ids, aligned with ``y_test`` and ``test_proba``.
        y_test: Test labels, shape (M,).
        test_proba: Test class probabilities, shape (M, K).
    """

    fold: int
    n_train: int
    n_val: int
    n_test: int
    test_auc: float
    test_acc: float
    val_auc: float
    val_acc: float
    C: float | None = None
    best_epoch: int | None = None
    test_ids: list[str] = field(default_factory=list, repr=False)
    y_test: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)
    test_proba: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready metrics (no per-slide arrays); NaN becomes None."""
        out: dict[str, object] = {'fold': self.fold, 'n_train': self.n_train,
                                  'n_val': self.n_val, 'n_test': self.n_test}
        for name in METRICS:
            value = getattr(self, name)
            out[name] = None if math.isnan(value) else value
        if self.C is not None:
            out['C'] = self.C
        if self.best_epoch is not None:
            out['best_epoch'] = self.best_epoch
        return out


@dataclass
class ProtocolResult:
    """Per-split results of one protocol and their mean ± std.

    Attributes:
        protocol: ``'knn'`` or ``'linear'``.
        fraction: The training fraction used.
        seed: Seed of the subsampling.
        class_names: Name of each class.
        folds: One result per split.
    """

    protocol: str
    fraction: TrainFraction
    seed: int
    class_names: list[str]
    folds: list[FoldResult]

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Mean ± std (ddof=1) over folds of each metric, NaN folds left out."""
        return {m: mean_std([getattr(f, m) for f in self.folds]) for m in METRICS}

    @property
    def auc_undefined_folds(self) -> list[int]:
        """Folds whose test AUC is undefined (a class absent from the test part)."""
        return [f.fold for f in self.folds if math.isnan(f.test_auc)]


def _predict(model: object, x: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions (M,) and class probabilities (M, K) of a fitted scikit-learn model.

    The probabilities have K columns even if the model saw fewer classes (the missing
    ones are 0).
    """
    if len(x) == 0:
        return np.zeros(0, int), np.zeros((0, num_classes))
    proba = np.zeros((len(x), num_classes))
    proba[:, model.classes_] = model.predict_proba(x)  # type: ignore[attr-defined]
    return model.predict(x), proba  # type: ignore[attr-defined]


def _fit_linear(x_tr: np.ndarray, y_tr: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                num_classes: int, C: float | None,
                C_grid: Sequence[float]) -> tuple[Pipeline, float]:
    if C is not None:
        return make_linear(C).fit(x_tr, y_tr), C
    if len(y_val) == 0:
        raise ValueError('the linear probe chooses C on the val part, but this split has '
                         'no val slide with an embedding: give a fixed C with --C (e.g. '
                         '--C 1.0), or make splits with a val part (tools/make_splits.py '
                         '--val-frac)')
    best: tuple[float, float, float] | None = None
    best_model = None
    for c in sorted(C_grid):
        model = make_linear(c).fit(x_tr, y_tr)
        pred, proba = _predict(model, x_val, num_classes)
        auc = auc_score(y_val, proba)
        score = (-math.inf if math.isnan(auc) else auc, accuracy(y_val, pred))
        if best is None or score > best[:2]:  # strict: ties keep the smaller C
            best, best_model = (*score, c), model
    assert best is not None and best_model is not None
    return best_model, best[2]


def evaluate_splits(protocol: str,
                    embeddings: SlideEmbeddings,
                    labels: Mapping[str, int],
                    splits: Sequence[Split],
                    num_classes: int,
                    class_names: Sequence[str] | None = None,
                    fraction: TrainFraction | str | float = '1.0',
                    seed: int = 0,
                    C: float | None = None,
                    C_grid: Sequence[float] = DEFAULT_C_GRID) -> ProtocolResult:
    """Run ``knn`` or ``linear`` on every split.

    Slides without a label or without an embedding are left out of each part (report
    them beforehand with :func:`~slpd_plugin.evaluation.data.embeddings.report_missing`).
    The training subsample of split ``k`` is drawn with
    ``np.random.default_rng([seed, k])``, so it does not depend on the other splits.

    Args:
        protocol: ``'knn'`` or ``'linear'``.
        embeddings: Mean-pooled slide embeddings.
        labels: Slide id -> label in ``[0, num_classes)``.
        splits: The splits.
        num_classes: K.
        class_names: Names for messages. Defaults to None (``'0'``, ``'1'``, ...).
        fraction: Training fraction (see :func:`parse_fraction`). Defaults to ``'1.0'``.
        seed: Seed of the training subsample. Defaults to 0.
        C: Fixed C of the linear probe; None chooses it on val. Defaults to None.
        C_grid: Candidates for C. Defaults to :data:`DEFAULT_C_GRID`.

    Returns:
        Per-split metrics and their summary.

    Raises:
        ValueError: On an unknown protocol, an empty test part, or a training part too
            small for the classifier.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f'unknown protocol {protocol!r}; choose one of {PROTOCOLS}')
    fraction = parse_fraction(fraction)
    names = class_names_or_numbers(class_names, num_classes)
    results = []
    for split in splits:
        train, val, test = select_parts(split, labels, embeddings, fraction, seed)
        x_tr, y_tr = embeddings.take(train), np.array([labels[s] for s in train])
        x_val, y_val = embeddings.take(val), np.array([labels[s] for s in val], dtype=int)
        x_te, y_te = embeddings.take(test), np.array([labels[s] for s in test])

        chosen_C = None
        if protocol == 'knn':
            knn = make_knn()
            if len(train) < knn.n_neighbors:
                raise ValueError(f'split {split.fold}: {len(train)} training slide(s), '
                                 f'fewer than k={knn.n_neighbors} for KNN')
            model: object = knn.fit(x_tr, y_tr)
        else:
            if len(set(y_tr.tolist())) < 2:
                raise ValueError(f'split {split.fold}: the training part has one class '
                                 'only; the linear probe needs two')
            model, chosen_C = _fit_linear(x_tr, y_tr, x_val, y_val, num_classes, C, C_grid)
        pred_val, proba_val = _predict(model, x_val, num_classes)
        pred_te, proba_te = _predict(model, x_te, num_classes)
        results.append(fold_result(split.fold, names, y_tr, (y_val, pred_val, proba_val),
                                   test, (y_te, pred_te, proba_te), C=chosen_C))
    return ProtocolResult(protocol, fraction, seed, names, results)


def class_names_or_numbers(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``class_names`` as a list, or ``'0'..'K-1'`` when none are given."""
    return list(class_names) if class_names else [str(i) for i in range(num_classes)]


Scored = tuple[np.ndarray, np.ndarray, np.ndarray]  # labels (M,), preds (M,), proba (M, K)


def fold_result(fold: int, class_names: Sequence[str], y_train: np.ndarray, val: Scored,
                test_ids: list[str], test: Scored, C: float | None = None) -> FoldResult:
    """Score one split; warn about classes absent from its train or test part."""
    num_classes = len(class_names)
    absent_train = missing_classes(y_train, num_classes)
    if absent_train:
        warnings.warn(f'split {fold}: class(es) {[class_names[c] for c in absent_train]} '
                      'absent from the training part; they get probability 0',
                      UserWarning, stacklevel=3)
    y_val, pred_val, proba_val = val
    y_te, pred_te, proba_te = test
    test_auc = auc_score(y_te, proba_te)
    if math.isnan(test_auc):
        absent = [class_names[c] for c in missing_classes(y_te, num_classes)]
        warnings.warn(f'split {fold}: class(es) {absent} absent from the test part; test '
                      'AUC undefined (NaN), left out of the mean', UserWarning, stacklevel=3)
    return FoldResult(fold=fold, n_train=len(y_train), n_val=len(y_val), n_test=len(y_te),
                      test_auc=test_auc, test_acc=accuracy(y_te, pred_te),
                      val_auc=auc_score(y_val, proba_val), val_acc=accuracy(y_val, pred_val),
                      C=C, test_ids=list(test_ids), y_test=y_te, test_proba=proba_te)
