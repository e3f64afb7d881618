"""Survival metric and targets: Harrell's c-index, HIPT's discrete time bins and NLL loss.

- :func:`c_index`: Harrell's concordance index, computed by scikit-survival's
  ``concordance_index_censored`` as HIPT computes it (``tied_tol=1e-8``): over the pairs
  whose shorter time is an observed event, the share where that patient has the higher
  risk, tied risks counting one half.
- :func:`time_bins` / :func:`discretize`: HIPT's survival target, the quartiles of the
  uncensored times cut the time axis into 4 bins (outer edges open). Bins are
  right-closed ``(a, b]`` by default; ``right=False`` gives HIPT's (MCAT's) left-closed
  ``[a, b)`` (``pd.cut(..., right=False)``), which moves a time equal to an edge up a bin.
- :func:`nll_survival_loss`: the discrete-time negative log-likelihood of Zadeh & Schmauch
  (2020), as HIPT trains its survival heads: hazards ``h = sigmoid(logits)``, survival
  ``S_j = prod_{i<=j} (1 - h_i)``; an event in bin ``y`` costs ``-log S_{y-1} - log h_y``,
  a censoring in bin ``y`` costs ``-log S_y``; with MCAT's ``alpha`` the loss is
  ``(1 - alpha) * that + alpha * (the event term alone)`` (HIPT's ``--alpha_surv``,
  0 by default); the risk score is ``-sum_j S_j``.

Letters: P patients, B bins.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ['c_index', 'discretize', 'nll_survival_loss', 'risk_from_logits', 'time_bins']

EPS = 1e-7


def c_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's c-index; NaN when no pair is comparable (e.g. no event).

    Args:
        time: Survival times, shape (P,).
        event: True where death was observed, shape (P,).
        risk: Predicted risk (higher = earlier death), shape (P,).
    """
    from sksurv.metrics import concordance_index_censored  # heavy import: only when used
    time, event, risk = (np.asarray(a) for a in (time, event, risk))
    if len(time) < 2 or not event.any():
        return math.nan
    try:  # no comparable pair: 0 / 0, an expected NaN, not a warning per call
        with np.errstate(invalid='ignore', divide='ignore'):
            return float(concordance_index_censored(event.astype(bool), time.astype(float),
                                                    risk.astype(float), tied_tol=1e-8)[0])
    except (ZeroDivisionError, ValueError):
        return math.nan


def time_bins(time: np.ndarray, event: np.ndarray, num_bins: int = 4) -> np.ndarray:
    """Inner bin edges, shape (B - 1,): quantiles of the uncensored times.

    Raises:
        ValueError: If there is no uncensored time.
    """
    observed = np.asarray(time, float)[np.asarray(event, bool)]
    if observed.size == 0:
        raise ValueError('no uncensored survival time to place the bins')
    return np.quantile(observed, np.linspace(0, 1, num_bins + 1)[1:-1])


def discretize(time: np.ndarray, edges: np.ndarray, right: bool = True) -> np.ndarray:
    """Bin index of each time, shape (P,) in ``[0, B)``, for inner ``edges`` (B - 1,).

    Bin ``j`` is ``(edges[j-1], edges[j]]`` (``right=True``) or ``[edges[j-1], edges[j])``
    (``right=False``, HIPT's), with open outer ends.
    """
    return np.searchsorted(edges, np.asarray(time, float), side='left' if right else 'right')


def nll_survival_loss(logits: torch.Tensor, label: torch.Tensor,
                      event: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Mean discrete-time survival NLL.

    Args:
        logits: Shape (P, B).
        label: Bin of each patient's time, shape (P,) long.
        event: 1 for an observed death, 0 for censoring, shape (P,).
        alpha: Extra weight of the event term, MCAT's ``alpha``: ``(1 - alpha) * NLL +
            alpha * event term``. Defaults to 0.0.
    """
    hazards = torch.sigmoid(logits)
    surv = torch.cumprod(1 - hazards, dim=1)
    surv_before = torch.cat([torch.ones_like(surv[:, :1]), surv], dim=1)  # S_{-1} = 1
    label = label.long()[:, None]
    event = event.float()
    h_y = hazards.gather(1, label).squeeze(1).clamp_min(EPS)
    s_prev = surv_before.gather(1, label).squeeze(1).clamp_min(EPS)
    s_y = surv_before.gather(1, label + 1).squeeze(1).clamp_min(EPS)
    uncensored = event * -(torch.log(s_prev) + torch.log(h_y))
    loss = uncensored + (1 - event) * -torch.log(s_y)
    return ((1 - alpha) * loss + alpha * uncensored).mean()


def risk_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Risk ``-sum_j S_j`` from hazard logits (P, B), shape (P,)."""
    return -torch.cumprod(1 - torch.sigmoid(logits), dim=1).sum(dim=1)
