"""The slides a slide-level evaluation uses: labels, splits and embeddings cross-checked.

A slide is evaluated when it is in a split, has a label and has an embedding file. Split
slides without a label are counted; labelled split slides without an embedding are
reported with a ``UserWarning`` (:func:`~.embeddings.report_missing`). When nothing is
left to evaluate, a ``ValueError`` says which two inputs do not meet, with an example id
of each.

Inside a split, :func:`labelled_parts` keeps the slides with a label and an embedding
(what every protocol evaluates) and :func:`select_parts` subsamples their training part.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Container, Mapping, Sequence

import numpy as np

from slpd_plugin.datasets.labels import LabelTable

from .embeddings import MissingReport, index_embedding_dir, report_missing
from .fractions import TrainFraction, subsample
from .splits import Split


@dataclass(frozen=True)
class Cohort:
    """The slides of one evaluation.

    Attributes:
        wanted: Labelled slide ids of the splits (the slides to evaluate).
        unlabelled: Slide ids of the splits without a label.
        available: Slide id -> embedding file, for every file of the embeddings folder.
        missing: The wanted slides without an embedding file.
    """

    wanted: set[str]
    unlabelled: set[str]
    available: dict[str, Path]
    missing: MissingReport


def select_cohort(table: LabelTable, splits: Sequence[Split], embeddings: Path, *,
                  csv: Path, splits_dir: Path,
                  label_map: Mapping[str, int] | None = None) -> Cohort:
    """Cross-check labels, splits and embeddings; return the slides to evaluate.

    Args:
        table: The labels read from ``csv``.
        splits: The splits read from ``splits_dir``.
        embeddings: Folder of per-slide embedding files.
        csv: The labels CSV (named in messages).
        splits_dir: The splits folder (named in messages).
        label_map: The label map asked for (named in messages); None: every value.

    Returns:
        Cohort: The labelled split slides, the unlabelled ones, the embedding files and the
        labelled split slides without one (warned about).

    Raises:
        ValueError: No row has a value of the label map, fewer than two classes, no split
            slide has a label, or no labelled split slide has an embedding file.

    Example:
        >>> cohort = select_cohort(load_labels(csv, 'oncotree_code'), load_splits(folder),
        ...                        Path('emb'), csv=csv, splits_dir=folder)
        >>> embeddings = load_slide_embeddings('emb', cohort.wanted)
    """
    if not table.labels:
        raise ValueError(f'no row of {csv.name} has a value of the label map {label_map} '
                         f'in column {table.label_col!r}')
    if table.num_classes < 2:
        raise ValueError(f'need at least two classes, got {table.class_names}')
    in_splits = set().union(*(s.all_ids() for s in splits))
    wanted = in_splits & set(table.labels)
    if not wanted:
        raise ValueError(f'no slide of the splits in {splits_dir} has a label in {csv.name} '
                         f'(e.g. split id {sorted(in_splits)[0]!r}, label id '
                         f'{sorted(table.labels)[0]!r})')
    available = index_embedding_dir(embeddings)
    if not wanted & set(available):
        raise ValueError(f'no overlap between the {len(available)} embeddings in '
                         f'{embeddings} and the {len(wanted)} labelled slides of the '
                         f'splits (e.g. embedding {sorted(available)[0]!r}, split slide '
                         f'{sorted(wanted)[0]!r})')
    missing = report_missing(wanted, available, what='embeddings')
    return Cohort(wanted, in_splits - wanted, available, missing)


def labelled_parts(split: Split, labels: Mapping[str, int], available: Container[str]
                   ) -> tuple[list[str], list[str], list[str]]:
    """The train, val and test ids of a split that have a label and an embedding.

    Raises:
        ValueError: If no test slide is left.
    """
    def usable(part: list[str]) -> list[str]:
        return [s for s in part if s in labels and s in available]

    train, val, test = usable(split.train), usable(split.val), usable(split.test)
    if not test:
        raise ValueError(f'split {split.fold}: no test slide has both a label and an '
                         'embedding')
    return train, val, test


def select_parts(split: Split, labels: Mapping[str, int], available: Container[str],
                 fraction: TrainFraction, seed: int) -> tuple[list[str], list[str], list[str]]:
    """:func:`labelled_parts` with the train part subsampled to ``fraction``.

    The subsample of split ``k`` is drawn with ``np.random.default_rng([seed, k])``.

    Raises:
        ValueError: If no test slide is left.
    """
    train, val, test = labelled_parts(split, labels, available)
    return subsample(train, fraction.value, np.random.default_rng([seed, split.fold])), val, test
