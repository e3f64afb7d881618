"""The journal of a feature store: one JSON line per committed slide.

Both backends keep it (the memmap folder's ``journal.jsonl``, the Redis list
``<prefix>:journal``); writers resume from it and ``tools/inspect_store.py`` reports an
interrupted ingest from it. A line holds the slide's record and the store settings at
the time of its commit::

    {"record": {"slide_id": ..., "offset": ..., "count": ..., "sha256": ..., "source": ...},
     "channels": C, "dtype": "float16", "has_coords": true, "has_masks": true,
     "grid_size": 16, "provenance": {...}, "blob_regions": ...}

``provenance`` is present for patch-feature stores, ``blob_regions`` for Redis stores;
lines from before masks existed have no ``has_masks`` (their regions are all tissue).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterable

import numpy as np

from .base import GRID_SIZE, SlideRecord, StoreError

if TYPE_CHECKING:
    from .base import StoreWriter

JOURNAL_FILE = 'journal.jsonl'  # in a memmap store folder
JOURNAL_KEY = 'journal'  # the Redis list under the store's prefix


def encode_entry(record: SlideRecord, *, channels: int, dtype: np.dtype, has_coords: bool,
                 grid_size: int, provenance: dict | None = None, **extra: object) -> str:
    """The journal line (no newline) of a committed slide; ``extra``: backend fields."""
    entry = dict(record=record.to_json(), channels=channels, dtype=np.dtype(dtype).name,
                 has_coords=has_coords, has_masks=True, grid_size=grid_size, **extra)
    if provenance is not None:
        entry['provenance'] = provenance
    return json.dumps(entry)


def parse_lines(lines: Iterable[str | bytes], location: str) -> list[dict]:
    """The entries of a journal's lines, skipping blank lines and a torn last line.

    A torn last line is a write interrupted by a crash; its slide was never committed.

    Raises:
        StoreError: if a line other than the last is not JSON.
    """
    lines = [line for line in lines if line.strip()]
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entries.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            if number == len(lines):
                break
            raise StoreError(f'{location}: journal line {number} of {len(lines)} is not '
                             f'JSON ({err}); the journal is damaged') from None
    return entries


def check_compatible(entry: dict, location: str, *, dtype: np.dtype, channels: int | None,
                     grid_size: int) -> None:
    """Refuse to continue a store whose journaled settings differ from the writer's.

    Raises:
        StoreError: if ``G``, the dtype or ``C`` (when ``channels`` is not None) differ.
    """
    stored_g = entry.get('grid_size', GRID_SIZE)
    if stored_g != grid_size:
        raise StoreError(f'{location}: store holds {stored_g}x{stored_g} grids, writer '
                         f'asked for G={grid_size}')
    if entry['dtype'] != np.dtype(dtype).name:
        raise StoreError(f'{location}: store holds {entry["dtype"]} grids, writer asked '
                         f'for {np.dtype(dtype).name}')
    if channels not in (None, entry['channels']):
        raise StoreError(f'{location}: store holds C={entry["channels"]}, writer asked '
                         f'for C={channels}')


def entry_record(entry: dict) -> SlideRecord:
    """The slide record of a journal entry."""
    return SlideRecord(**entry['record'])


def resume_writer(writer: StoreWriter, lines: Iterable[str | bytes]) -> list[dict]:
    """Continue a store from its journal; returns the entries.

    Checks every entry against the writer's settings, takes the store's ``C``, coords
    flag and provenance, and appends the committed slides to ``writer.records``.

    Raises:
        StoreError: see :func:`parse_lines` and :func:`check_compatible`.
    """
    entries = parse_lines(lines, writer.location)
    for entry in entries:
        check_compatible(entry, writer.location, dtype=writer.dtype,
                         channels=writer.channels, grid_size=writer.grid_size)
        writer.channels = entry['channels']
        writer.has_coords |= entry['has_coords']
        writer.provenance = entry.get('provenance', writer.provenance)
        writer.records.append(entry_record(entry))
    return entries
