"""``summary.csv`` files of the survival, few-shot and retrieval protocols.

Same conventions as :mod:`.report`'s ``summary.csv``: HIPT's (CLAM's) columns without
pandas' nameless index column, one row per split, an empty cell for an undefined value.

- survival: ``folds,val_cindex`` (HIPT's survival columns);
- retrieval: ``folds,acc@1,acc@3,acc@5,mvacc@3,mvacc@5``;
- few-shot: ``folds,k,`` then ``{model}_{metric}_{mean,std,lo,hi}`` for each classifier
  and metric (one row per split and k).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ..protocols.fewshot import FEWSHOT_METRICS, FEWSHOT_MODELS, FewShotResult
from ..protocols.retrieval import RETRIEVAL_COLUMNS, RetrievalFold
from ..protocols.survival import SurvivalResult
from .files import csv_cell

__all__ = ['fewshot_columns', 'write_fewshot_summary', 'write_retrieval_summary',
           'write_survival_summary']

STATS = ('mean', 'std', 'lo', 'hi')


def write_survival_summary(result: SurvivalResult, path: str | Path) -> Path:
    """``folds,val_cindex``, one row per split."""
    path = Path(path)
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['folds', 'val_cindex'])
        for f in result.folds:
            writer.writerow([f.fold, csv_cell(f.val_cindex)])
    return path


def write_retrieval_summary(folds: Sequence[RetrievalFold], path: str | Path) -> Path:
    """``folds,`` then :data:`~.retrieval.RETRIEVAL_COLUMNS`, one row per split."""
    path = Path(path)
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['folds', *RETRIEVAL_COLUMNS])
        for f in folds:
            writer.writerow([f.fold, *(csv_cell(f.metrics[c]) for c in RETRIEVAL_COLUMNS)])
    return path


def fewshot_columns() -> list[str]:
    """The metric columns of the few-shot ``summary.csv``."""
    return [f'{m}_{q}_{s}' for m in FEWSHOT_MODELS for q in FEWSHOT_METRICS for s in STATS]


def write_fewshot_summary(result: FewShotResult, path: str | Path) -> Path:
    """``folds,k,<model>_<metric>_<stat>...``, one row per split and k."""
    path = Path(path)
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['folds', 'k', *fewshot_columns()])
        for cell in result.cells:
            values = [cell.stats(m, q)[s] for m in FEWSHOT_MODELS for q in FEWSHOT_METRICS
                      for s in STATS]
            writer.writerow([cell.fold, cell.k, *(csv_cell(v) for v in values)])
    return path
