"""Few-shot slide classification: k labelled slides per class, many random draws.

For every split, every ``k`` in :data:`DEFAULT_SHOTS` and each of ``num_draws`` draws,
``k`` slides per class are drawn without replacement from the split's ``train`` part
(with ``np.random.default_rng([seed, fold, k, draw])``), two classifiers are fit on
them and scored on the split's ``test`` part:

- ``simpleshot``: SimpleShot's CL2N nearest class mean (Wang et al. 2019): embeddings
  are centred on the mean of the whole ``train`` part (labels unused), L2-normalised,
  and a test slide goes to the class whose normalised support mean is nearest
  (Euclidean); class probabilities are the softmax of negative distances. Centring on
  the whole ``train`` part rather than on the k-shot support is SimpleShot's own choice
  (its mean is that of the base/training classes, not of the few labelled examples): the
  unlabelled train embeddings are available, and a mean of 1-2 slides per class would
  centre on the support itself.
- ``linear``: logistic regression (lbfgs, L2, 1000 iterations) with the settings of a
  :data:`LINEAR_PRESETS` entry: ``'pathobench'`` (default), Patho-Bench's linear probe,
  C = 0.5 with balanced class weights on the raw embeddings; ``'cl2n'``, C = 1 without
  class weights on the CL2N embeddings (this module's former default). No validation
  data exists at k shots, so C is fixed.

Metrics per draw: balanced accuracy and AUC (macro one-vs-rest for K > 2). Reported per
(split, k, classifier): mean, std (ddof=1) and the 2.5 / 97.5 % percentiles over draws.
A ``k`` larger than the smallest class of a split's ``train`` part is skipped there (a
warning names the split).

Letters: S slides, D embedding size, K classes, M test slides, R draws.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from threadpoolctl import threadpool_limits

from ..data.cohort import labelled_parts
from ..data.embeddings import SlideEmbeddings
from ..data.splits import Split
from ..stats.metrics import auc_score

__all__ = ['DEFAULT_SHOTS', 'FEWSHOT_METRICS', 'FEWSHOT_MODELS', 'LINEAR_PRESETS',
           'FewShotCell', 'FewShotResult', 'LinearProbe', 'cl2n', 'draw_support',
           'evaluate_fewshot', 'simpleshot_proba']

DEFAULT_SHOTS = (1, 2, 4, 8, 16, 32)
FEWSHOT_MODELS = ('simpleshot', 'linear')
FEWSHOT_METRICS = ('bacc', 'auc')


@dataclass(frozen=True)
class LinearProbe:
    """Settings of the few-shot logistic regression.

    Attributes:
        C: Inverse L2 penalty.
        class_weight: ``'balanced'`` or None (scikit-learn's ``class_weight``).
        features: ``'raw'`` embeddings or ``'cl2n'`` (centred on the train part's mean,
            L2-normalised, as SimpleShot sees them).

    Example:
        >>> LINEAR_PRESETS['pathobench'].C
        0.5
    """

    C: float
    class_weight: str | None
    features: str


#: Named linear-probe settings: Patho-Bench's (its ``linprobe`` defaults; the default
#: here) and this module's former one.
LINEAR_PRESETS = {
    'pathobench': LinearProbe(C=0.5, class_weight='balanced', features='raw'),
    'cl2n': LinearProbe(C=1.0, class_weight=None, features='cl2n'),
}


def cl2n(x: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Centre on ``center`` (D,), then L2-normalise each row of ``x`` (S, D)."""
    x = x - center
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def simpleshot_proba(support: np.ndarray, y_support: np.ndarray, query: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """Nearest-class-mean probabilities of the query slides, shape (M, K).

    Args:
        support: Support embeddings (k * K, D); :func:`cl2n` output in this module.
        y_support: Their classes (k * K,); every class must be present.
        query: Query embeddings (M, D), in the same space as ``support``.
        num_classes: K.

    Returns:
        Softmax over classes of minus the Euclidean distance to each class mean of the
        support set; rows sum to 1.
    """
    means = np.stack([support[y_support == c].mean(0) for c in range(num_classes)])
    dist = np.linalg.norm(query[:, None, :] - means[None], axis=2)  # (M, K)
    logits = -dist - (-dist).max(1, keepdims=True)
    proba = np.exp(logits)
    return proba / proba.sum(1, keepdims=True)


def draw_support(y_train: np.ndarray, k: int, num_classes: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Positions of ``k`` slides per class, drawn without replacement, (k * K,)."""
    return np.concatenate([rng.choice(np.flatnonzero(y_train == c), k, replace=False)
                           for c in range(num_classes)])


@dataclass
class FewShotCell:
    """Per-draw metrics of one (split, k).

    Attributes:
        fold: The split's ``k`` (file number).
        k: Shots per class.
        scores: Classifier -> metric -> values over draws, shape (R,).
    """

    fold: int
    k: int
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def stats(self, model: str, metric: str) -> dict[str, float]:
        """``mean``, ``std`` (ddof=1), ``lo`` / ``hi`` (2.5 / 97.5 % percentiles)."""
        v = self.scores[model][metric]
        v = v[np.isfinite(v)]
        if v.size == 0:
            return dict(mean=np.nan, std=np.nan, lo=np.nan, hi=np.nan)
        return dict(mean=float(v.mean()), std=float(v.std(ddof=1)) if v.size > 1 else np.nan,
                    lo=float(np.percentile(v, 2.5)), hi=float(np.percentile(v, 97.5)))


@dataclass
class FewShotResult:
    """All (split, k) cells, in split then k order."""

    cells: list[FewShotCell]
    num_draws: int

    def curve(self, model: str, metric: str) -> dict[int, tuple[float, float]]:
        """Few-shot curve of one classifier and metric: k -> (mean, std) over splits.

        Each split contributes the mean over its draws (:meth:`FewShotCell.stats`); the
        curve holds their mean and standard deviation (ddof=1) over the splits where it
        is finite, NaN where no split (or, for the std, fewer than two) scored that k.
        """
        out = {}
        for k in sorted({c.k for c in self.cells}):
            means = np.array([c.stats(model, metric)['mean'] for c in self.cells if c.k == k],
                             float)
            means = means[np.isfinite(means)]
            out[k] = (float(means.mean()) if means.size else np.nan,
                      float(means.std(ddof=1)) if means.size > 1 else np.nan)
        return out


def evaluate_fewshot(embeddings: SlideEmbeddings, labels: Mapping[str, int],
                     splits: Sequence[Split], num_classes: int,
                     shots: Sequence[int] = DEFAULT_SHOTS, num_draws: int = 50,
                     seed: int = 0, linear: str = 'pathobench') -> FewShotResult:
    """Run both few-shot classifiers on every split, k and draw (module docstring).

    Args:
        embeddings: Slide embeddings (S, D).
        labels: Slide id -> class in ``[0, num_classes)``.
        splits: The splits; draws come from ``train``, scores from ``test``.
        num_classes: K.
        shots: The k (slides per class) to evaluate. Defaults to :data:`DEFAULT_SHOTS`.
        num_draws: R, random support sets per (split, k). Defaults to 50.
        seed: First entry of each draw's RNG seed ``[seed, fold, k, draw]``.
            Defaults to 0.
        linear: A key of :data:`LINEAR_PRESETS`. Defaults to 'pathobench'.

    Returns:
        One :class:`FewShotCell` per (split, k), skipping a k larger than the smallest
        class of the split's train part, with per-draw balanced accuracy and AUC of
        both classifiers.

    Raises:
        ValueError: If ``num_draws < 1``, a k is < 1, a split has no test slide, or
            ``linear`` is not a preset.
    """
    if num_draws < 1 or min(shots) < 1:
        raise ValueError(f'need num_draws >= 1 and every k >= 1, got {num_draws}, {shots}')
    if linear not in LINEAR_PRESETS:
        raise ValueError(f'linear must be one of {sorted(LINEAR_PRESETS)}, got {linear!r}')
    with threadpool_limits(1):  # thousands of tiny fits: BLAS threads only spin
        return _evaluate(embeddings, labels, splits, num_classes, shots, num_draws, seed,
                         LINEAR_PRESETS[linear])


def _evaluate(embeddings: SlideEmbeddings, labels: Mapping[str, int],
              splits: Sequence[Split], num_classes: int, shots: Sequence[int],
              num_draws: int, seed: int, probe: LinearProbe) -> FewShotResult:
    cells = []
    for split in splits:
        train, _, test = labelled_parts(split, labels, embeddings)
        raw_tr, raw_te = embeddings.take(train), embeddings.take(test)
        center = raw_tr.mean(0)
        x_tr, x_te = cl2n(raw_tr, center), cl2n(raw_te, center)
        lin_tr, lin_te = (x_tr, x_te) if probe.features == 'cl2n' else (raw_tr, raw_te)
        y_tr = np.array([labels[s] for s in train])
        y_te = np.array([labels[s] for s in test])
        smallest = np.bincount(y_tr, minlength=num_classes).min()
        for k in shots:
            if k > smallest:
                warnings.warn(f'split {split.fold}: k={k} skipped, the smallest class has '
                              f'{smallest} training slide(s)', UserWarning, stacklevel=2)
                continue
            cell = FewShotCell(split.fold, k, {m: {q: np.full(num_draws, np.nan)
                                                   for q in FEWSHOT_METRICS}
                                               for m in FEWSHOT_MODELS})
            for r in range(num_draws):
                idx = draw_support(y_tr, k, num_classes,
                                   np.random.default_rng([seed, split.fold, k, r]))
                xs, ys = x_tr[idx], y_tr[idx]
                probas = {'simpleshot': simpleshot_proba(xs, ys, x_te, num_classes)}
                probas['linear'] = LogisticRegression(
                    C=probe.C, class_weight=probe.class_weight, max_iter=1000).fit(
                    lin_tr[idx], ys).predict_proba(lin_te)
                for model, proba in probas.items():
                    cell.scores[model]['bacc'][r] = balanced_accuracy_score(
                        y_te, proba.argmax(1))
                    cell.scores[model]['auc'][r] = auc_score(y_te, proba)
            cells.append(cell)
    return FewShotResult(cells, num_draws)
