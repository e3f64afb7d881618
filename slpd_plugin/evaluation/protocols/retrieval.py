"""Slide-to-slide retrieval: each test slide queries the train slides of its split.

The default follows Patho-Bench's retrieval: the train slides are ranked by the L2
distance between the (mean-pooled) slide embeddings, without centring
(``similarity='l2'``); ``similarity='cosine'`` ranks by cosine similarity instead (what
this module did before). Ties in distance go to the lower position in the train part.
For a query with label ``y`` and its ``K`` nearest train slides:

- ``acc@K`` = 1 if any of the ``K`` retrieved slides has label ``y`` (TITAN's and
  Patho-Bench's Acc@K), for K = 1, 3, 5;
- ``mvacc@K`` = 1 if ``y`` is a most frequent label of the ``K`` retrieved slides
  (Patho-Bench's majority vote: a query whose label ties with another for the most
  votes counts as correct), for K = 3 (TITAN's MVAcc@3) and 5.

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

__all__ = ['RETRIEVAL_COLUMNS', 'SIMILARITIES', 'RetrievalFold', 'evaluate_retrieval',
           'rank_database', 'retrieval_metrics']

RETRIEVAL_COLUMNS = ('acc@1', 'acc@3', 'acc@5', 'mvacc@3', 'mvacc@5')

#: How train slides are ranked: ``'l2'`` distance (Patho-Bench's default, no centring)
#: or ``'cosine'`` similarity.
SIMILARITIES = ('l2', 'cosine')


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def rank_database(query: np.ndarray, database: np.ndarray, similarity: str = 'l2',
                  top: int = 5) -> np.ndarray:
    """Indices of the ``top`` nearest database rows of each query, nearest first.

    Args:
        query: (Q, D).
        database: (T, D).
        similarity: One of :data:`SIMILARITIES`. Defaults to 'l2'.
        top: How many. Defaults to 5.

    Returns:
        (Q, top) int indices; equal distances keep the database order.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f'similarity must be one of {SIMILARITIES}, got {similarity!r}')
    if similarity == 'cosine':
        score = -(_normalise(query) @ _normalise(database).T)
    else:  # squared L2, same order as L2
        score = ((query[:, None, :].astype(np.float64) - database[None]) ** 2).sum(-1)
    return np.argsort(score, axis=1, kind='stable')[:, :top]


def _majority_hit(retrieved: np.ndarray, label: int) -> bool:
    """Whether ``label`` is among the most frequent labels of ``retrieved``."""
    values, counts = np.unique(retrieved, return_counts=True)
    return bool(label in values[counts == counts.max()])


def retrieval_metrics(query: np.ndarray, y_query: np.ndarray, database: np.ndarray,
                      y_database: np.ndarray, similarity: str = 'l2') -> dict[str, float]:
    """:data:`RETRIEVAL_COLUMNS` of retrieval by ``similarity``.

    Args:
        query: Query embeddings (Q, D).
        y_query: Their labels (Q,).
        database: Database embeddings (T, D), T >= 5.
        y_database: Their labels (T,).
        similarity: One of :data:`SIMILARITIES`. Defaults to 'l2'.

    Raises:
        ValueError: With fewer than 5 database slides.

    Example:
        >>> db = np.array([[0.], [1.], [2.], [3.], [4.]]); y = np.array([0, 0, 1, 1, 2])
        >>> retrieval_metrics(np.array([[0.4]]), np.array([1]), db, y)['acc@3']
        1.0
    """
    if len(database) < 5:
        raise ValueError(f'retrieval needs at least 5 train slides, got {len(database)}')
    ranked = rank_database(query, database, similarity)
    hits = y_database[ranked] == y_query[:, None]  # (Q, 5)
    out = {f'acc@{k}': float(hits[:, :k].any(axis=1).mean()) for k in (1, 3, 5)}
    for k in (3, 5):
        out[f'mvacc@{k}'] = float(np.mean([_majority_hit(y_database[r[:k]], y)
                                           for r, y in zip(ranked, y_query)]))
    return {c: out[c] for c in RETRIEVAL_COLUMNS}


@dataclass
class RetrievalFold:
    """Retrieval metrics of one split (``metrics`` keyed by :data:`RETRIEVAL_COLUMNS`)."""

    fold: int
    n_train: int
    n_test: int
    metrics: dict[str, float]


def evaluate_retrieval(embeddings: SlideEmbeddings, labels: Mapping[str, int],
                       splits: Sequence[Split], similarity: str = 'l2'
                       ) -> list[RetrievalFold]:
    """Retrieve the train slides of each split for each of its test slides.

    Args:
        embeddings: Slide embeddings (S, D).
        labels: Slide id -> class; a retrieved slide is relevant when its class is the
            query's.
        splits: The splits: queries are the labelled ``test`` slides, the gallery the
            labelled ``train`` slides.
        similarity: One of :data:`SIMILARITIES`. Defaults to ``'l2'`` (Patho-Bench's).

    Returns:
        One :class:`RetrievalFold` per split with its retrieval metrics.

    Raises:
        ValueError: If a split has no usable test slide or fewer than 5 train slides.
    """
    folds = []
    for split in splits:
        train, _, test = labelled_parts(split, labels, embeddings)
        metrics = retrieval_metrics(embeddings.take(test), np.array([labels[s] for s in test]),
                                    embeddings.take(train),
                                    np.array([labels[s] for s in train]), similarity)
        folds.append(RetrievalFold(split.fold, len(train), len(test), metrics))
    return folds
