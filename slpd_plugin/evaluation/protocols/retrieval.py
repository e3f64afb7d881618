"""Slide-to-slide retrieval: each test slide queries the train slides of its split.

Similarity is the cosine of the (mean-pooled) slide embeddings. For a query with label
``y`` and its ``K`` most similar train slides (ties in similarity broken by the lower
position in the train part):

- ``acc@K`` = 1 if any of the ``K`` retrieved slides has label ``y`` (TITAN's and
  Patho-Bench's Acc@K);
- ``mvacc@K`` = 1 if the majority label of the ``K`` retrieved slides is ``y``; a tie
  between labels goes to the one whose best-ranked slide ranks higher.

Each is averaged over the test slides of a split.

Letters: Q queries (test slides), T train slides, D embedding size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..data.cohort import labelled_parts
from ..data.embeddings import SlideEmbeddings
from ..data.splits import Split

__all__ = ['RETRIEVAL_COLUMNS', 'RetrievalFold', 'evaluate_retrieval', 'retrieval_metrics']

RETRIEVAL_COLUMNS = ('acc@1', 'acc@3', 'acc@5', 'mvacc@5')


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _majority(labels: np.ndarray) -> int:
    """Most frequent label of a ranked list; ties go to the earliest-ranked."""
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    best = counts == counts.max()
    return int(values[best][np.argmin(first[best])])


def retrieval_metrics(query: np.ndarray, y_query: np.ndarray, database: np.ndarray,
                      y_database: np.ndarray) -> dict[str, float]:
    """``acc@1``, ``acc@3``, ``acc@5`` and ``mvacc@5`` of cosine retrieval.

    Args:
        query: Query embeddings (Q, D).
        y_query: Their labels (Q,).
        database: Database embeddings (T, D), T >= 5.
        y_database: Their labels (T,).

    Raises:
        ValueError: With fewer than 5 database slides.
    """
    if len(database) < 5:
        raise ValueError(f'retrieval needs at least 5 train slides, got {len(database)}')
    sim = _normalise(query) @ _normalise(database).T  # (Q, T)
    ranked = np.argsort(-sim, axis=1, kind='stable')[:, :5]
    hits = y_database[ranked] == y_query[:, None]  # (Q, 5)
    out = {f'acc@{k}': float(hits[:, :k].any(axis=1).mean()) for k in (1, 3, 5)}
    votes = np.array([_majority(y_database[r]) for r in ranked])
    out['mvacc@5'] = float((votes == y_query).mean())
    return out


@dataclass
class RetrievalFold:
    """Retrieval metrics of one split (``metrics`` keyed by :data:`RETRIEVAL_COLUMNS`)."""

    fold: int
    n_train: int
    n_test: int
    metrics: dict[str, float]


def evaluate_retrieval(embeddings: SlideEmbeddings, labels: Mapping[str, int],
                       splits: Sequence[Split]) -> list[RetrievalFold]:
    """Retrieve the train slides of each split for each of its test slides.

    Raises:
        ValueError: If a split has no usable test slide or fewer than 5 train slides.
    """
    folds = []
    for split in splits:
        train, _, test = labelled_parts(split, labels, embeddings)
        metrics = retrieval_metrics(embeddings.take(test), np.array([labels[s] for s in test]),
                                    embeddings.take(train),
                                    np.array([labels[s] for s in train]))
        folds.append(RetrievalFold(split.fold, len(train), len(test), metrics))
    return folds
