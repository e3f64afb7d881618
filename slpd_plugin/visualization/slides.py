"""Which slides a tool looks at.

A slide named by id or index, the store a bank was built on, a spread of slides, and
slide labels from a CSV.

Letters: ``S`` slides, ``N`` regions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from slpd_plugin.datasets.labels import load_labels, normalize_slide_id
from slpd_plugin.datasets.stores import FeatureStore, StoreError, open_store
from slpd_plugin.prototypes import PrototypeBank


def resolve_slide(key: str, slide_ids: list[str] | None, num_slides: int) -> int:
    """The position of a slide given by its id or its index in the store.

    An exact id wins over an index (a slide may be called ``"3"``); ids also match
    without a trailing ``.svs``.

    Args:
        key: A slide id, or an index in ``[0, num_slides)``.
        slide_ids: The store's slide ids in storage order, or None if unknown.
        num_slides: ``S``.

    Returns:
        int: The slide's position.

    Raises:
        ValueError: Naming what was expected, if ``key`` is neither.
    """
    if slide_ids is not None:
        if key in slide_ids:
            return slide_ids.index(key)
        normalized = [normalize_slide_id(s) for s in slide_ids]
        if normalize_slide_id(key) in normalized:
            return normalized.index(normalize_slide_id(key))
    if key.isdigit() and int(key) < num_slides:
        return int(key)
    example = f' (e.g. {slide_ids[0]!r})' if slide_ids else ''
    what = f'a slide id of the store{example} or ' if slide_ids is not None else ''
    raise ValueError(f'unknown slide {key!r}: expected {what}an index in [0, {num_slides})')


def open_bank_store(uri: str | os.PathLike, bank: PrototypeBank,
                    recorded: bool = False) -> FeatureStore:
    """Open the store a bank was built on, and check that it is that store.

    Args:
        uri: A store folder or ``redis://`` URI.
        bank: The checkpoint's bank.
        recorded: ``uri`` is the store recorded in the checkpoint (not one the user
            named); the error then says how to name another. Defaults to False.

    Returns:
        FeatureStore: The open store.

    Raises:
        StoreError: If the store cannot be opened.
        ValueError: If its slide or region counts differ from the bank's.
    """
    try:
        store = open_store(uri)
    except StoreError as err:
        if not recorded:
            raise
        raise StoreError(f'{err}; that is the store recorded in the checkpoint: pass '
                         f'--store with its current location') from None
    slides, regions = len(bank.valid), len(bank.assignments)
    if store.num_slides != slides or store.num_regions != regions:
        raise ValueError(
            f'store {store.location} has {store.num_slides} slides / {store.num_regions} '
            f'regions, but the checkpoint\'s bank was built on {slides} slides / '
            f'{regions} regions: pass --store with the store the model was trained on')
    return store


def spread_slides(candidates: np.ndarray, count: int | None) -> np.ndarray:
    """At most ``count`` slides spread evenly over ``candidates`` (all when None).

    Evenly spaced rather than the first ones, so that a store sorted by class or site
    still shows every part of it.

    Args:
        candidates: Slide positions, shape (M,), in store order.
        count: How many to keep, or None for all.

    Returns:
        np.ndarray: The kept positions, sorted, shape (min(M, count),).
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if count is None or count >= len(candidates):
        return candidates
    picks = np.linspace(0, len(candidates) - 1, count).round().astype(np.int64)
    return candidates[np.unique(picks)]


@dataclass
class SlideLabels:
    """A label for every slide of a store.

    Attributes:
        labels: Label of each slide, shape (S,), int in ``[0, len(class_names))``, -1 for
            slides the CSV does not label.
        class_names: Name of each label.
        column: The CSV column the labels came from.
    """

    labels: np.ndarray
    class_names: list[str]
    column: str


def load_slide_labels(csv_path: str | os.PathLike, label_col: str,
                      slide_ids: list[str]) -> SlideLabels:
    """Labels of the store's slides from a CSV with a ``slide_id`` column.

    Args:
        csv_path: The CSV (HIPT's dataset CSVs work as they are; ``.svs`` is ignored).
        label_col: Column holding the label; every distinct value is a class.
        slide_ids: The store's slide ids, in storage order.

    Returns:
        SlideLabels: The labels; slides missing from the CSV get -1.

    Raises:
        FileNotFoundError: If the CSV does not exist.
        ValueError: If a column is missing or no slide of the store is in the CSV.
    """
    table = load_labels(csv_path, label_col=label_col)
    labels = np.array([table.labels.get(normalize_slide_id(s), -1) for s in slide_ids],
                      dtype=np.int64)
    if not (labels >= 0).any():
        raise ValueError(f'no slide of the store has a {label_col!r} label in {csv_path} '
                         f'(store slide ids look like {slide_ids[0]!r})')
    return SlideLabels(labels, table.class_names, label_col)
