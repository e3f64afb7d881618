"""Paired differences between two rows of the demo: same seed, same split.

A row's result for one protocol is, per seed, the test AUCs of the F splits. The paired
difference of ``other − base`` is ``d[r, f] = other[r][f] − base[r][f]`` for every seed
``r`` and split ``f`` where both AUCs are defined; a row that does not depend on the seed
(a reference, one entry) is paired with every seed.

The splits of one seed share the trained encoder and overlap in their test slides, so
they are not independent: the unit of replication is the seed. The estimate is the mean
over seeds of the per-seed means ``m_r = mean_f d[r, f]``, and its 95 % interval the
t-interval of the ``m_r`` (``R − 1`` degrees of freedom). With one seed the t-interval of
the split differences is shown instead, as their spread only. A difference is claimed
only with at least :data:`MIN_SEEDS` seeds and an interval that excludes 0; otherwise
the verdict says "no claim".

Letters: R seeds, F splits.

Example:
    >>> d = paired_difference([[0.8, 0.7]] * 3, [[0.9, 0.8], [0.85, 0.8], [0.9, 0.75]],
    ...                       'DINO-4K', 'SLPD', 'linear')
    >>> d.claim, round(d.mean, 3)
    (True, 0.083)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import t as student_t

__all__ = ['MIN_SEEDS', 'PairedDifference', 'paired_difference']

MIN_SEEDS = 3


@dataclass
class PairedDifference:
    """``other − base`` on one protocol, paired by seed and split.

    Attributes:
        protocol: The protocol (or ``'<other protocol> vs <base protocol>'``).
        base: The base row.
        other: The other row.
        diffs: Per seed, per split: ``other − base`` (NaN where either is undefined).
        mean: Mean over seeds of the per-seed mean differences.
        lo: Lower end of the 95 % interval (NaN when it cannot be computed).
        hi: Upper end.
        num_seeds: R.
    """

    protocol: str
    base: str
    other: str
    diffs: list[list[float]]
    mean: float
    lo: float
    hi: float
    num_seeds: int

    @property
    def claim(self) -> bool:
        """True when a difference is shown: >= MIN_SEEDS seeds, interval excludes 0."""
        return bool(self.num_seeds >= MIN_SEEDS and (self.lo > 0 or self.hi < 0))

    @property
    def verdict(self) -> str:
        """``'<row> higher'``, or ``'no claim'`` with the reason."""
        if self.num_seeds < MIN_SEEDS:
            return f'no claim ({self.num_seeds} seed(s), {MIN_SEEDS} needed)'
        if not self.claim:
            return 'no claim (the interval covers 0)'
        return f'{self.other if self.lo > 0 else self.base} higher'

    def as_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        def num(x: float) -> float | None:
            return None if math.isnan(x) else x
        return dict(protocol=self.protocol, base=self.base, other=self.other,
                    mean=num(self.mean), ci95=[num(self.lo), num(self.hi)],
                    num_seeds=self.num_seeds, claim=self.claim, verdict=self.verdict,
                    diffs=[[num(d) for d in seed] for seed in self.diffs])


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of ``values`` (NaN interval for fewer than 2)."""
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = student_t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_difference(base: Sequence[Sequence[float]], other: Sequence[Sequence[float]],
                      base_name: str, other_name: str, protocol: str) -> PairedDifference:
    """``other − base`` paired by seed and split (module docstring).

    Args:
        base: Per seed, the split AUCs of the base row (one entry: seed-independent).
        other: Per seed, the split AUCs of the other row (same splits, same seed order).
        base_name: Name of the base row.
        other_name: Name of the other row.
        protocol: Protocol name, for the record.

    Returns:
        The paired difference.

    Raises:
        ValueError: If the rows have different seed or split counts.
    """
    num_seeds = max(len(base), len(other))
    if min(len(base), len(other)) > 1 and len(base) != len(other):
        raise ValueError(f'{other_name} vs {base_name}: {len(other)} and {len(base)} seeds')
    a = np.array([base[min(r, len(base) - 1)] for r in range(num_seeds)], float)
    b = np.array([other[min(r, len(other) - 1)] for r in range(num_seeds)], float)
    if a.shape != b.shape:
        raise ValueError(f'{other_name} vs {base_name}: split counts differ '
                         f'({b.shape[1]} and {a.shape[1]})')
    diffs = b - a  # (R, F), NaN where either AUC is undefined
    defined = ~np.isnan(diffs)
    seed_means = np.array([d[ok].mean() for d, ok in zip(diffs, defined) if ok.any()])
    units = seed_means if num_seeds > 1 else diffs[defined]
    mean, lo, hi = _t_interval(units)
    return PairedDifference(protocol, base_name, other_name, diffs.tolist(), mean, lo, hi,
                            num_seeds)
