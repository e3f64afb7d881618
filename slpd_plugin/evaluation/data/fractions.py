"""Reduced training data: how much of each split's training part is used.

HIPT's slide-level KNN reports a "25 % training data" setting whose code draws 10 % of the
training slides; ``'hipt10'`` reproduces that draw under an honest name, and a number
such as ``0.25`` draws a true fraction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ['TrainFraction', 'parse_fraction', 'subsample']


@dataclass(frozen=True)
class TrainFraction:
    """How much of each training part is used.

    Attributes:
        spec: The text given, normalised (``'1.0'``, ``'0.25'``, ``'hipt10'``).
        value: The fraction of training slides drawn.
        description: A plain statement of what is drawn.
    """

    spec: str
    value: float
    description: str


def parse_fraction(text: str | float | TrainFraction) -> TrainFraction:
    """Parse a training fraction (a :class:`TrainFraction` is returned as it is).

    ``'hipt10'`` reproduces what HIPT's slide-level KNN labels "25 % training data": it
    draws 10 % of the training slides. A number in (0, 1] draws that fraction (so
    ``0.25`` is a true 25 %). ``1`` uses every training slide.

    Args:
        text: ``'hipt10'``, a number in (0, 1] or a parsed fraction.

    Returns:
        The parsed fraction.

    Raises:
        ValueError: For anything else.
    """
    if isinstance(text, TrainFraction):
        return text
    if isinstance(text, str) and text.strip().lower() == 'hipt10':
        return TrainFraction('hipt10', 0.1, "HIPT's '25%' setting: 10% of the training "
                             'slides, drawn at random per split')
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"fraction must be 'hipt10' or a number in (0, 1], "
                         f'got {text!r}') from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"fraction must be 'hipt10' or a number in (0, 1], got {value}")
    if value == 1.0:
        return TrainFraction('1.0', 1.0, 'all training slides')
    return TrainFraction(f'{value:g}', value, f'{value:.0%} of the training slides, '
                         'drawn at random per split')


def subsample(ids: Sequence[str], fraction: float, rng: np.random.Generator) -> list[str]:
    """Draw ``round(fraction * len(ids))`` ids (at least one) without replacement.

    Args:
        ids: The training ids.
        fraction: In (0, 1].
        rng: Random generator.

    Returns:
        The drawn ids, in their original order.
    """
    if fraction >= 1.0:
        return list(ids)
    n = max(1, int(round(fraction * len(ids))))
    keep = np.sort(rng.choice(len(ids), size=n, replace=False))
    return [ids[i] for i in keep]
