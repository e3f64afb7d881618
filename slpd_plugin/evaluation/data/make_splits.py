"""Make split files in HIPT's layout from a labels CSV, at the level of the case.

A patient's slides always land in the same part, so no case is both trained on and
tested on. Classification splits are stratified by the case's class and hold slide ids
(``,train,val,test``); survival splits are stratified by the case's event status and
hold case ids (``,train,val``), as HIPT's ``survival_5foldcv`` files do. Both are read
back by :func:`~slpd_plugin.evaluation.data.splits.load_splits`.

Two designs, both seeded:

- ``kfold``: a partition of the cases into ``k`` folds (scikit-learn's
  ``StratifiedKFold``); split ``i`` holds out fold ``i`` (as test for classification,
  as val for survival), and classification draws its val part from the rest.
- ``mc`` (Monte Carlo): ``k`` independent stratified draws with the given fractions;
  the held-out parts of different splits overlap (HIPT's "10-fold" subtype splits).

A cohort too small for the request (a class with fewer cases than folds, a part that
would be empty) is refused with the counts.

Example:
    >>> cohort = read_cohort('labels.csv', 'oncotree_code')
    >>> splits = classification_splits(cohort, SplitPlan('kfold', folds=5, val_frac=0.1))
    >>> write_splits(splits, 'splits/')
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from slpd_plugin.datasets.labels import normalize_slide_id
from slpd_plugin.utils.cli import UserError

__all__ = ['Cohort', 'SplitPlan', 'classification_splits', 'describe', 'read_cohort',
           'survival_splits', 'write_splits']


@dataclass
class Cohort:
    """The cases of a labels CSV.

    Attributes:
        slides: Case id -> its normalised slide ids, in file order.
        strata: Case id -> the value it is stratified by (its class, or its event).
        source: The CSV, for messages.
    """

    slides: dict[str, list[str]]
    strata: dict[str, str]
    source: str

    @property
    def cases(self) -> list[str]:
        return sorted(self.slides)

    def counts(self) -> dict[str, int]:
        """Cases per stratum."""
        return dict(sorted(Counter(self.strata.values()).items()))


@dataclass
class SplitPlan:
    """What to make: ``design`` ``'kfold'`` or ``'mc'``, ``folds`` splits, the shares of
    the cases in val and (classification, ``mc``) in test, and the seed."""

    design: str = 'kfold'
    folds: int = 5
    val_frac: float = 0.1
    test_frac: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.design not in ('kfold', 'mc'):
            raise UserError(f"--design must be kfold or mc, got {self.design!r}")
        if self.folds < (2 if self.design == 'kfold' else 1):
            raise UserError(f'--folds must be >= 2 for kfold (>= 1 for mc), got {self.folds}')
        if not (0 <= self.val_frac < 1 and 0 <= self.test_frac < 1
                and self.val_frac + self.test_frac < 1):
            raise UserError(f'--val-frac and --test-frac must be in [0, 1) with a sum below '
                            f'1, got {self.val_frac} and {self.test_frac}')


def read_cohort(path: str | Path, stratify_col: str, case_col: str = 'case_id',
                slide_col: str = 'slide_id') -> Cohort:
    """Group a labels CSV's slides by case, each case with its stratum.

    Args:
        path: CSV with a row per slide.
        stratify_col: The class column (classification) or ``censorship`` (survival).
        case_col: The patient column; give ``slide_col`` to treat each slide as a case.
        slide_col: The slide id column.

    Raises:
        UserError: a missing file or column, an empty value, or a case whose slides
            carry different values of ``stratify_col``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f'labels CSV not found: {path}')
    with path.open(newline='') as fh:
        rows = list(csv.DictReader(fh))
    columns = list(rows[0]) if rows else []
    for col, flag in ((slide_col, '--slide-col'), (case_col, '--case-col'),
                      (stratify_col, '--label-col')):
        if col not in columns:
            hint = (f' (or --case-col {slide_col} to treat each slide as its own case)'
                    if flag == '--case-col' else '')
            raise UserError(f'{path}: no column {col!r}; name it with {flag}{hint}; '
                            f'columns are {columns}')
    slides: dict[str, list[str]] = {}
    strata: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        case, slide, value = (row[case_col].strip(), normalize_slide_id(row[slide_col]),
                              row[stratify_col].strip())
        if not case or not slide or not value:
            raise UserError(f'{path}, line {line}: empty {case_col}, {slide_col} or '
                            f'{stratify_col}')
        if strata.setdefault(case, value) != value:
            raise UserError(f'{path}, line {line}: case {case} has slides with '
                            f'{stratify_col} {strata[case]!r} and {value!r}')
        slides.setdefault(case, [])
        if slide not in slides[case]:
            slides[case].append(slide)
    if not slides:
        raise UserError(f'{path} has no rows')
    return Cohort(slides, strata, str(path))


def _check_size(cohort: Cohort, plan: SplitPlan, parts: dict[str, float]) -> None:
    """Refuse a cohort with a stratum too small for the folds, or a part that would
    hold less than one case of each stratum."""
    counts = cohort.counts()
    smallest = min(counts, key=counts.__getitem__)
    if plan.design == 'kfold' and counts[smallest] < plan.folds:
        raise UserError(f'{cohort.source}: cohort too small for {plan.folds} folds: '
                        f'{smallest!r} has {counts[smallest]} case(s) (cases per class: '
                        f'{counts}); use --folds {max(2, counts[smallest])} or fewer, or '
                        '--design mc')
    for part, frac in parts.items():
        if frac > 0 and round(frac * len(cohort.slides)) < len(counts):
            raise UserError(f'{cohort.source}: cohort too small for a stratified {part} '
                            f'part: {frac:g} of {len(cohort.slides)} cases is fewer than '
                            f'one per class ({len(counts)} classes: {counts}); raise '
                            f'--{part}-frac or set it to 0')


def _draw(cases: np.ndarray, strata: np.ndarray, share: float, seed: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, drawn)``: a stratified share of ``cases`` (all cases kept when 0)."""
    if share <= 0:
        return cases, cases[:0]
    rest, drawn = train_test_split(cases, test_size=share, stratify=strata,
                                   random_state=seed)
    return np.sort(rest), np.sort(drawn)


def _held_out(cohort: Cohort, plan: SplitPlan, share: float
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per split, ``(rest, held-out)`` case arrays: the folds of a k-fold partition, or
    ``plan.folds`` independent draws of ``share`` of the cases."""
    cases = np.array(cohort.cases)
    strata = np.array([cohort.strata[c] for c in cases])
    if plan.design == 'kfold':
        folds = StratifiedKFold(plan.folds, shuffle=True, random_state=plan.seed)
        return [(cases[a], cases[b]) for a, b in folds.split(cases, strata)]
    return [_draw(cases, strata, share, plan.seed + k) for k in range(plan.folds)]


def _slides(cohort: Cohort, cases: np.ndarray) -> list[str]:
    return [s for c in cases for s in cohort.slides[c]]


def classification_splits(cohort: Cohort, plan: SplitPlan) -> list[dict[str, list[str]]]:
    """``{'train', 'val', 'test'}`` slide ids per split, test held out per fold
    (``kfold``: ``1 / folds`` of the cases) or drawn (``mc``: ``test_frac``), and val
    drawn from the rest with ``val_frac`` of all cases."""
    test_share = 1 / plan.folds if plan.design == 'kfold' else plan.test_frac
    _check_size(cohort, plan, {'test': test_share, 'val': plan.val_frac})
    splits = []
    for k, (rest, test) in enumerate(_held_out(cohort, plan, test_share)):
        strata = np.array([cohort.strata[c] for c in rest])
        share = plan.val_frac / (1 - test_share) if plan.val_frac else 0
        train, val = _draw(rest, strata, share, plan.seed + 1000 + k)
        splits.append({'train': _slides(cohort, train), 'val': _slides(cohort, val),
                       'test': _slides(cohort, test)})
    return splits


def survival_splits(cohort: Cohort, plan: SplitPlan) -> list[dict[str, list[str]]]:
    """``{'train', 'val'}`` case ids per split (HIPT's survival layout): val is fold
    ``k`` (``kfold``) or a draw of ``val_frac`` of the cases (``mc``), stratified by
    the event."""
    share = 1 / plan.folds if plan.design == 'kfold' else plan.val_frac
    _check_size(cohort, plan, {'val': share})
    return [{'train': list(train), 'val': list(val)}
            for train, val in _held_out(cohort, plan, share)]


def write_splits(splits: list[dict[str, list[str]]], out: str | Path) -> list[Path]:
    """Write ``splits_{k}.csv`` files (a blank-headed row index, then one column per
    part, the shorter ones padded with blank cells) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, split in enumerate(splits):
        parts = list(split)
        length = max(len(ids) for ids in split.values())
        path = out / f'splits_{k}.csv'
        with path.open('w', newline='') as fh:
            writer = csv.writer(fh)
            writer.writerow(['', *parts])
            for i in range(length):
                writer.writerow([i, *(split[p][i] if i < len(split[p]) else ''
                                      for p in parts)])
        paths.append(path)
    return paths


def describe(cohort: Cohort, splits: list[dict[str, list[str]]]) -> str:
    """One line per split: how many ids each part holds."""
    lines = [f'{len(cohort.slides)} cases, {sum(map(len, cohort.slides.values()))} '
             f'slides, cases per stratum {cohort.counts()}']
    for k, split in enumerate(splits):
        lines.append(f'  splits_{k}.csv: ' + ', '.join(
            f'{part} {len(ids)}' for part, ids in split.items()))
    return '\n'.join(lines)
