"""Ingest slides into a store: resumable, idempotent, every region checked.

A slide is written as a whole and committed (memmap: bytes fsynced, then a journal
line; Redis: one ``MULTI``/``EXEC`` transaction), so an interrupted ingest leaves whole
slides only. Re-running the same command skips the slides the store's journal lists and
writes the rest; the manifest is written last, when every slide is in. Running it again
on a complete store changes nothing.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from slpd_plugin.utils.progress import progress_bar

from ..stores import StoreError, open_store, open_writer
from .readers import StoreReader, read_slide
from .sources import SlideSource

FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass
class IngestReport:
    """What an ingest did.

    Attributes:
        written: Ids of the slides written by this run.
        skipped: Ids of the slides already in the store (from an earlier run).
        regions: Regions written by this run.
        layouts: Count of written slides per source layout.
        channels: ``C`` of the store.
        seconds: Wall time of this run.
        store_only: Ids of slides in the store that are not in this run's sources.
    """

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    regions: int = 0
    layouts: Counter = field(default_factory=Counter)
    channels: int | None = None
    seconds: float = 0.0
    store_only: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: slides written and skipped, regions, rate, layouts, ``C``."""
        rate = self.regions / self.seconds if self.seconds > 0 else 0.0
        layouts = ', '.join(f'{k}: {v}' for k, v in sorted(self.layouts.items())) or '-'
        text = (f'wrote {len(self.written)} slide(s), {self.regions} regions '
                f'({rate:,.0f} regions/s; layouts {layouts}); skipped '
                f'{len(self.skipped)} already stored; C={self.channels}')
        if self.store_only:
            text += (f'; the store also holds {len(self.store_only)} slide(s) not in '
                     f'this source (e.g. {self.store_only[0]!r})')
        return text


def _check_range(data: np.ndarray, dtype: str, where: str) -> None:
    if dtype == 'float16' and np.abs(data).max() > FLOAT16_MAX:
        raise StoreError(f'{where}: values up to {np.abs(data).max():.4g} do not fit '
                         f'float16 (max {FLOAT16_MAX:g}); ingest with --dtype float32')


def ingest(sources: list[SlideSource], store: str, dtype: str = 'float16',
           channels: int | None = None, progress: bool = True) -> IngestReport:
    """Write every source slide not yet in ``store``, then the manifest.

    Args:
        sources: Slides to ingest (from :func:`find_sources`), unique ids.
        store: Destination: a folder path or a ``redis://`` URI.
        dtype: Storage dtype, ``'float16'`` or ``'float32'``. Must match an existing
            store's. Defaults to 'float16'.
        channels: Expected ``C``; None infers it from the first slide. Defaults to None.
        progress: Show a progress bar (regions, regions/s). Defaults to True.

    Returns:
        What was written and skipped.

    Raises:
        StoreError: at the first bad slide, naming its file; the slides before it stay
            committed and a re-run continues from there.
    """
    start = time.perf_counter()
    writer = open_writer(store, channels=channels, dtype=dtype)
    stored = writer.written_slides()
    source_ids = {s.slide_id for s in sources}
    report = IngestReport(skipped=[s.slide_id for s in sources if s.slide_id in set(stored)],
                          store_only=[i for i in stored if i not in source_ids])
    todo = [s for s in sources if s.slide_id not in set(stored)]
    readers: dict[str, StoreReader] = {}
    bar = progress_bar(total=None, unit='region', unit_scale=True, disable=not progress,
               desc='ingest', dynamic_ncols=True)
    try:
        for i, source in enumerate(todo):
            bar.set_description(f'slide {i + 1}/{len(todo)}')
            reader = None
            if source.kind == 'store':
                if source.path not in readers:
                    readers[source.path] = StoreReader(source.path)
                reader = readers[source.path]
            data = read_slide(source, writer.channels, reader)
            _check_range(data.grids, dtype, source.describe())
            writer.add_slide(source.slide_id, data.grids, data.coords, data.masks)
            report.written.append(source.slide_id)
            report.regions += len(data.grids)
            report.layouts[data.layout] += 1
            bar.update(len(data.grids))
        writer.finalize()
    finally:
        bar.close()
        for reader in readers.values():
            reader.close()
    report.channels = writer.channels
    report.seconds = time.perf_counter() - start
    return report


def verify_store(store: str, progress: bool = True) -> int:
    """Re-read every slide of a complete store and compare its checksums.

    The grids are checked, and the tissue masks where the manifest records theirs.

    Returns:
        The number of regions checked.

    Raises:
        StoreError: naming the slides whose bytes differ from the manifest, and what
            differs (grids, masks).
    """
    opened = open_store(store)
    bad: dict[str, list[str]] = {}
    try:
        for i, rec in enumerate(progress_bar(opened.slides, desc='verify', unit='slide',
                                     disable=not progress)):
            differs = opened.mismatches(i)
            if differs:
                bad[rec.slide_id] = differs
    finally:
        opened.close()
    if bad:
        ids = list(bad)
        what = '; '.join(f'{sid}: {"+".join(parts)}' for sid, parts in list(bad.items())[:10])
        more = ' ...' if len(bad) > 10 else ''
        raise StoreError(f'{opened.location}: {len(bad)} slide(s) do not match their '
                         f'checksum: {ids[:10]}{more} ({what}{more})')
    return opened.num_regions
