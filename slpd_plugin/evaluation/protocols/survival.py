"""Survival prediction over HIPT's 5-fold survival splits: a Cox model and attention MIL.

Both protocols work per patient (see :mod:`.survival_data`), train on the ``train`` cases
of each split and report Harrell's c-index on its ``val`` cases (HIPT's ``val_cindex``).

- ``cox``: the patient embedding (mean of all its regions) is standardised on ``train``,
  then an elastic-net Cox model (scikit-survival ``CoxnetSurvivalAnalysis``,
  ``l1_ratio`` 0.5 by default) is fit along a path of :data:`NUM_ALPHAS` penalties. The
  penalty is chosen by an inner K-fold cross-validation on the ``train`` cases only
  (mean inner c-index; ties go to the stronger penalty); the model fit on all ``train``
  cases with that penalty scores ``val``.
- ``mil``: HIPT's weakly-supervised survival recipe on the bag of a patient's region
  embeddings: the gated-attention MIL model of :mod:`.mil` with 4 outputs (hazard logits
  of 4 time bins at the quartiles of the uncensored ``train`` times), the discrete-time
  NLL loss, one patient per step with gradients accumulated over 32 steps, Adam lr 2e-4,
  weight decay 1e-5, 20 epochs, no model selection (the last epoch scores ``val``).
  Two variants (:data:`MIL_PROTOCOLS`):

  - ``'default'``: leakage-free: the bins are placed on the split's ``train`` cases only,
    right-closed ``(a, b]``; each epoch visits every ``train`` case once in random order.
  - ``'hipt'``: HIPT's (MCAT's) recipe, for numbers comparable with HIPT's: the bins are
    the quartiles of the uncensored times of every patient of the CSV (``val`` cases
    included), left-closed ``[a, b)``; each epoch draws as many cases as ``train`` holds,
    with replacement, weighted by ``1 / size`` of the case's (bin, censorship) class
    (HIPT's ``weighted_sample``). The NLL's ``alpha`` (HIPT's ``--alpha_surv``) is an
    option of both.

Letters: P patients, D embedding size, B time bins.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from slpd_plugin.utils.progress import progress_bar

from ..data.embeddings import SlideEmbeddings
from ..data.splits import Split
from ..data.survival_data import SurvivalTable, patient_embeddings
from ..stats.metrics import mean_std
from ..stats.survival_metrics import (
    c_index,
    discretize,
    nll_survival_loss,
    risk_from_logits,
    time_bins,
)
from .mil import MILConfig, build_mil_model, epoch_bar, one_thread

if TYPE_CHECKING:  # scikit-survival is imported where a Cox model is fitted
    from sksurv.linear_model import CoxnetSurvivalAnalysis

__all__ = ['MIL_PROTOCOLS', 'NUM_ALPHAS', 'SURVIVAL_PROTOCOLS', 'CoxConfig', 'SurvivalFold',
           'SurvivalResult', 'balanced_case_weights', 'evaluate_cox', 'evaluate_survival_mil',
           'hipt_bin_edges', 'usable_cases']

SURVIVAL_PROTOCOLS = ('cox', 'mil')
#: How the MIL survival model is trained (module docstring).
MIL_PROTOCOLS = ('default', 'hipt')
NUM_ALPHAS = 12


@dataclass
class CoxConfig:
    """Settings of the Cox protocol.

    Attributes:
        l1_ratio: Elastic-net mixing (1 = lasso; must be > 0). Defaults to 0.5.
        inner_folds: Folds of the inner cross-validation choosing the penalty.
            Defaults to 5.
        num_alphas: Penalties on the path. Defaults to :data:`NUM_ALPHAS`.
        alpha_min_ratio: Smallest penalty / largest. Defaults to 0.01.
        progress: Show a progress bar of the splits (stderr). Defaults to False.
    """

    l1_ratio: float = 0.5
    inner_folds: int = 5
    num_alphas: int = NUM_ALPHAS
    alpha_min_ratio: float = 0.01
    progress: bool = False


@dataclass
class SurvivalFold:
    """One split's result.

    Attributes:
        fold: The split's ``k``.
        n_train: Training patients.
        n_val: Scored patients.
        val_cindex: Harrell's c-index on ``val`` (NaN without a comparable pair).
        alpha: The Cox penalty chosen (None for MIL).
        cases: Scored case ids, aligned with the arrays below.
        time: Their times (P,).
        event: Their events (P,) bool.
        risk: Their predicted risks (P,).
    """

    fold: int
    n_train: int
    n_val: int
    val_cindex: float
    alpha: float | None = None
    cases: list[str] = field(default_factory=list, repr=False)
    time: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    event: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)
    risk: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready metrics (NaN -> None)."""
        out: dict[str, object] = dict(fold=self.fold, n_train=self.n_train, n_val=self.n_val,
                                      val_cindex=None if math.isnan(self.val_cindex)
                                      else self.val_cindex)
        if self.alpha is not None:
            out['alpha'] = self.alpha
        return out


@dataclass
class SurvivalResult:
    """Per-split c-indices of one protocol."""

    protocol: str
    folds: list[SurvivalFold]

    def summary(self) -> dict[str, float | int]:
        """Mean ± std (ddof=1) of ``val_cindex`` over splits."""
        return mean_std([f.val_cindex for f in self.folds])

    def check_scored(self) -> None:
        """Refuse a result whose c-index is undefined on every split.

        Raises:
            ValueError: when no split's val part holds a comparable pair.
        """
        if self.folds and all(math.isnan(f.val_cindex) for f in self.folds):
            raise ValueError(
                f'survival ({self.protocol}): the c-index is undefined on all '
                f'{len(self.folds)} splits (val parts of '
                f'{[f.n_val for f in self.folds]} cases with '
                f'{[int(f.event.sum()) for f in self.folds]} events: no comparable '
                'pair); make fewer, larger folds (tools/make_splits.py --folds)')


def usable_cases(split: Split, table: SurvivalTable,
                 has_embedding: Mapping[str, object] | SlideEmbeddings
                 ) -> tuple[list[str], list[str]]:
    """The ``train`` and ``val`` cases with an outcome and at least one embedded slide.

    Raises:
        ValueError: If either part is left empty.
    """
    def keep(part: list[str]) -> list[str]:
        return [c for c in part if c in table.time
                and any(s in has_embedding for s in table.slides[c])]

    train, val = keep(split.train), keep(split.val)
    if not train or not val:
        raise ValueError(f'split {split.fold}: {len(train)} train and {len(val)} val cases '
                         'have both an outcome and an embedding; need at least one each')
    return train, val


def _structured(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    return np.array(list(zip(event.astype(bool), time.astype(float))),
                    dtype=[('event', bool), ('time', float)])


def _coxnet(cfg: CoxConfig, alphas: np.ndarray | None = None) -> CoxnetSurvivalAnalysis:
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    if alphas is None:
        return CoxnetSurvivalAnalysis(l1_ratio=cfg.l1_ratio, n_alphas=cfg.num_alphas,
                                      alpha_min_ratio=cfg.alpha_min_ratio)
    return CoxnetSurvivalAnalysis(l1_ratio=cfg.l1_ratio, alphas=alphas)


def _choose_alpha(x: np.ndarray, time: np.ndarray, event: np.ndarray, alphas: np.ndarray,
                  cfg: CoxConfig, seed: int, where: str = '') -> float:
    """The penalty with the best mean inner-CV c-index (ties: the larger penalty).

    Raises:
        ValueError: naming ``--inner-folds``, when there are fewer training cases than
            inner folds, or no inner fold can be scored (none holds a comparable pair).
    """
    if len(x) < cfg.inner_folds:
        raise ValueError(f'{where}{len(x)} training cases, fewer than the {cfg.inner_folds} '
                         'inner folds choosing the Cox penalty: lower --inner-folds (>= 2) '
                         'or make larger splits')
    scores = np.full((cfg.inner_folds, len(alphas)), np.nan)
    inner = KFold(cfg.inner_folds, shuffle=True, random_state=seed)
    for i, (tr, va) in enumerate(inner.split(x)):
        if not event[tr].any():
            continue
        try:
            model = _coxnet(cfg, alphas).fit(x[tr], _structured(time[tr], event[tr]))
        except (ArithmeticError, ValueError):  # a degenerate inner fold
            continue
        for j, alpha in enumerate(alphas):
            scores[i, j] = c_index(time[va], event[va], model.predict(x[va], alpha=alpha))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(scores, axis=0)
    if np.isnan(mean).all():
        raise ValueError(f'{where}none of the {cfg.inner_folds} inner folds choosing the Cox '
                         f'penalty could be scored ({len(x)} training cases, '
                         f'{int(event.sum())} events; each inner val part needs an event '
                         'and a comparable pair): lower --inner-folds or make larger splits')
    order = np.argsort(-alphas, kind='stable')  # strongest penalty first
    return float(alphas[order[np.nanargmax(mean[order])]])


def evaluate_cox(table: SurvivalTable, slides: SlideEmbeddings, splits: Sequence[Split],
                 config: CoxConfig | None = None, seed: int = 0) -> SurvivalResult:
    """Fit and score the Cox protocol on every split (module docstring).

    The inner folds of split ``k`` are shuffled with seed ``seed * 1000 + k``.

    Raises:
        ValueError: If a split has no usable case or no event in ``train``.
    """
    cfg = config or CoxConfig()
    folds = []
    for split in progress_bar(splits, desc='survival cox', unit='split',
                              disable=not cfg.progress):
        train, val = usable_cases(split, table, slides)
        x_tr, x_val = (patient_embeddings(table, slides, part) for part in (train, val))
        t_tr, e_tr = table.arrays(train)
        t_val, e_val = table.arrays(val)
        if not e_tr.any():
            raise ValueError(f'split {split.fold}: no event in the training cases')
        scaler = StandardScaler().fit(x_tr)
        x_tr, x_val = scaler.transform(x_tr), scaler.transform(x_val)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', ConvergenceWarning)
            warnings.simplefilter('ignore', UserWarning)
            path = _coxnet(cfg).fit(x_tr, _structured(t_tr, e_tr))
            alphas = np.asarray(path.alphas_)
            alpha = _choose_alpha(x_tr, t_tr, e_tr, alphas, cfg, seed * 1000 + split.fold,
                                  f'split {split.fold}: ')
            risk = path.predict(x_val, alpha=alpha)
        folds.append(SurvivalFold(split.fold, len(train), len(val),
                                  c_index(t_val, e_val, risk), alpha, val, t_val, e_val,
                                  np.asarray(risk, float)))
    result = SurvivalResult('cox', folds)
    result.check_scored()
    return result


def _patient_bags(table: SurvivalTable, bags: Mapping[str, torch.Tensor],
                  cases: list[str]) -> list[torch.Tensor]:
    """Each case's region embeddings, its slides' bags concatenated: (N_total, D)."""
    return [torch.cat([bags[s] for s in table.slides[c] if s in bags]) for c in cases]


def hipt_bin_edges(table: SurvivalTable, num_bins: int = 4) -> np.ndarray:
    """HIPT's (MCAT's) inner time-bin edges, shape (B - 1,), from the whole CSV.

    The edges are quantiles of the uncensored times of every patient of ``table`` (not
    only the training cases); use them with ``discretize(..., right=False)``.
    """
    return time_bins(*table.arrays(table.cases), num_bins)


def balanced_case_weights(bins: np.ndarray, event: np.ndarray) -> np.ndarray:
    """HIPT's ``weighted_sample`` case weights, shape (P,).

    A case of class ``c`` = (time bin, event) holding ``n_c`` of the ``P`` cases weighs
    ``P / n_c``, so that every class is drawn equally often.

    Args:
        bins: Time bin of each case (P,).
        event: Whether each case's event was observed (P,).
    """
    classes = np.asarray(bins) * 2 + np.asarray(event, bool)
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    return len(classes) / counts[inverse]


def evaluate_survival_mil(table: SurvivalTable, bags: Mapping[str, torch.Tensor],
                          splits: Sequence[Split], config: MILConfig | None = None,
                          num_bins: int = 4, grad_accum: int = 32,
                          seed: int = 0, protocol: str = 'default',
                          alpha: float = 0.0) -> SurvivalResult:
    """Train and score attention-MIL survival on every split (module docstring).

    Split ``k`` seeds torch with ``seed * 1000 + k`` inside a forked RNG.

    Args:
        table: Outcomes and slides per case.
        bags: Slide id -> region embeddings (N, D).
        splits: HIPT's survival splits (case ids).
        config: Model and optimiser settings (``epochs``, ``lr``, ``weight_decay``,
            ``model``, ...). Defaults to None (``MILConfig()``).
        num_bins: Time bins B. Defaults to 4.
        grad_accum: Patients per optimiser step. Defaults to 32 (HIPT's ``--gc 32``).
        seed: Seed. Defaults to 0.
        protocol: One of :data:`MIL_PROTOCOLS` (module docstring). Defaults to 'default'.
        alpha: The NLL's ``alpha`` (:func:`.survival_metrics.nll_survival_loss`).
            Defaults to 0.0.

    Raises:
        ValueError: If ``bags`` is empty, a split has no usable case or no event, or
            ``protocol`` / ``alpha`` is not valid.
    """
    if protocol not in MIL_PROTOCOLS:
        raise ValueError(f'protocol must be one of {MIL_PROTOCOLS}, got {protocol!r}')
    if not 0 <= alpha <= 1:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    if not bags:
        raise ValueError('no slide embeddings to train the survival MIL model on')
    hipt = protocol == 'hipt'
    whole_csv_edges = hipt_bin_edges(table, num_bins) if hipt else None
    cfg = config or MILConfig()
    dim = next(iter(bags.values())).shape[1]
    folds = []
    bar = epoch_bar(cfg, len(splits), 'survival mil')
    for split in splits:
        train, val = usable_cases(split, table, bags)
        t_tr, e_tr = table.arrays(train)
        t_val, e_val = table.arrays(val)
        edges = (time_bins(t_tr, e_tr, num_bins) if whole_csv_edges is None
                 else whole_csv_edges)
        y_np = discretize(t_tr, edges, right=not hipt)
        # HIPT draws cases with class-and-event balanced weights, the default a permutation.
        weights = torch.as_tensor(balanced_case_weights(y_np, e_tr)) if hipt else None
        # On the model's device once: no host copy per bag in the loop below.
        y_tr = torch.as_tensor(y_np).to(cfg.device)
        ev_tr = torch.as_tensor(e_tr.astype(np.float32)).to(cfg.device)
        train_bags, val_bags = (_patient_bags(table, bags, part) for part in (train, val))
        with torch.random.fork_rng(devices=[]), one_thread():
            torch.manual_seed(seed * 1000 + split.fold)
            generator = torch.Generator().manual_seed(seed * 1000 + split.fold)
            model = build_mil_model(cfg, dim, num_bins)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr,
                                   weight_decay=cfg.weight_decay)
            for _ in range(cfg.epochs):
                model.train()
                opt.zero_grad()
                order = (torch.randperm(len(train), generator=generator) if weights is None
                         else torch.multinomial(weights, len(train), replacement=True,
                                                generator=generator)).tolist()
                for step, i in enumerate(order, start=1):
                    logits, _ = model(train_bags[i].to(cfg.device))  # (B,)
                    loss = nll_survival_loss(logits[None], y_tr[i:i + 1], ev_tr[i:i + 1],
                                             alpha)
                    (loss / grad_accum).backward()
                    if step % grad_accum == 0 or step == len(order):
                        opt.step()
                        opt.zero_grad()
                bar.update()
            model.eval()
            with torch.no_grad():
                logits = torch.stack([model(b.to(cfg.device))[0] for b in val_bags]).cpu()
            risk = risk_from_logits(logits).numpy().astype(float)
        folds.append(SurvivalFold(split.fold, len(train), len(val),
                                  c_index(t_val, e_val, risk), None, val, t_val, e_val, risk))
    bar.close()
    result = SurvivalResult('mil', folds)
    result.check_scored()
    return result
