"""Survival labels and splits in HIPT's layout, grouped per patient (case).

HIPT's survival CSVs (``tcga_*_subset.csv``) have one row per slide with ``case_id``,
``slide_id`` (``.svs``), ``survival_months`` and ``censorship`` (1 = censored, 0 = event);
all slides of a case carry the case's outcome. HIPT's 5-fold survival splits
(``splits/survival_5foldcv/<cohort>/splits_k.csv``) have columns ``train`` and ``val``
holding **case** ids; the ``val`` part is the held-out fold that HIPT reports.

As in HIPT's survival dataset, the unit is the patient: a case's slides are pooled into
one bag (their region embeddings concatenated), so a patient with two slides counts
once in the loss and once in the c-index.

Letters: P patients, S slides, D embedding size.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slpd_plugin.datasets.labels import normalize_slide_id

from .embeddings import SlideEmbeddings
from .splits import Split, load_splits

__all__ = ['SURVIVAL_COLUMNS', 'SurvivalTable', 'load_survival_labels',
           'load_survival_splits', 'patient_embeddings']

SURVIVAL_COLUMNS = ('case_id', 'slide_id', 'survival_months', 'censorship')


@dataclass
class SurvivalTable:
    """Outcome and slides of every patient.

    Attributes:
        time: Case id -> survival (or follow-up) time in months.
        event: Case id -> 1 if death was observed, 0 if censored (``1 - censorship``).
        slides: Case id -> its normalised slide ids, in file order.
        num_rows: Rows read from the CSV.
    """

    time: dict[str, float]
    event: dict[str, int]
    slides: dict[str, list[str]] = field(default_factory=dict)
    num_rows: int = 0

    @property
    def cases(self) -> list[str]:
        """Case ids in sorted order."""
        return sorted(self.time)

    def arrays(self, cases: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Times (P,) float and events (P,) bool of the given cases."""
        return (np.array([self.time[c] for c in cases], dtype=float),
                np.array([self.event[c] for c in cases], dtype=bool))


def load_survival_labels(csv_path: str | Path, case_col: str = 'case_id',
                         slide_col: str = 'slide_id', time_col: str = 'survival_months',
                         censor_col: str = 'censorship') -> SurvivalTable:
    """Read a HIPT-style survival CSV (extra columns ignored).

    Rows with a blank time or censorship are skipped (counted in ``num_rows`` only).

    Raises:
        FileNotFoundError: If the CSV does not exist.
        ValueError: If a column is missing, a value is not a number, a censorship is not
            0/1, a time is negative, or two slides of one case disagree on the outcome.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f'survival CSV not found: {csv_path}')
    table = SurvivalTable({}, {})
    with csv_path.open(newline='') as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        for col in (case_col, slide_col, time_col, censor_col):
            if col not in columns:
                raise ValueError(f'column {col!r} not in {csv_path.name}; a survival CSV '
                                 f'needs {case_col}, {slide_col}, {time_col}, {censor_col} '
                                 f'(columns: {columns[:12]})')
        for line, row in enumerate(reader, start=2):
            table.num_rows += 1
            raw_time, raw_cens = (row[time_col] or '').strip(), (row[censor_col] or '').strip()
            if not raw_time or not raw_cens:
                continue
            case, slide = row[case_col].strip(), normalize_slide_id(row[slide_col] or '')
            try:
                months, censored = float(raw_time), float(raw_cens)
            except ValueError:
                raise ValueError(f'{csv_path.name} line {line}: {time_col}={raw_time!r} / '
                                 f'{censor_col}={raw_cens!r} are not numbers') from None
            if censored not in (0.0, 1.0) or months < 0 or not case or not slide:
                raise ValueError(f'{csv_path.name} line {line}: expected a case and slide '
                                 f'id, {time_col} >= 0 and {censor_col} 0 or 1 (1 = '
                                 f'censored), got {case!r}, {slide!r}, {raw_time}, '
                                 f'{raw_cens}')
            event = int(censored == 0.0)
            if case in table.time and (table.time[case], table.event[case]) != (months, event):
                raise ValueError(f'{csv_path.name} line {line}: case {case!r} has two '
                                 f'outcomes ({table.time[case]}, event {table.event[case]}) '
                                 f'and ({months}, event {event})')
            table.time[case], table.event[case] = months, event
            slides = table.slides.setdefault(case, [])
            if slide not in slides:
                slides.append(slide)
    if not table.time:
        raise ValueError(f'{csv_path.name}: no row with a {time_col} and a {censor_col}')
    return table


def load_survival_splits(split_dir: str | Path) -> list[Split]:
    """HIPT's survival folds: ``splits_k.csv`` with ``train``/``val`` case ids
    (``test`` empty)."""
    return load_splits(split_dir, parts=('train', 'val'))


def patient_embeddings(table: SurvivalTable, slides: SlideEmbeddings,
                       cases: list[str]) -> np.ndarray:
    """Mean of all region embeddings of each case's slides, (P, D).

    The slide means are weighted by their region counts, so this is the mean of the
    concatenated bag (HIPT's patient bag) pooled. Slides without an embedding are left
    out; every case must keep at least one.
    """
    rows = []
    for case in cases:
        have = [s for s in table.slides[case] if s in slides]
        if not have:
            raise ValueError(f'case {case!r}: none of its slides {table.slides[case]} has '
                             'an embedding')
        weights = slides.regions(have).astype(float)
        rows.append(weights @ slides.take(have) / weights.sum())
    return np.stack(rows)
