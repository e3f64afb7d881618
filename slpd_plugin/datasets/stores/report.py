"""What a feature store holds: slides, region counts, C, dtype, size and completeness.

For a store made from patch features, also its provenance, tissue masks and source files.

A store whose ingest was interrupted has a journal of committed slides but no manifest;
readers refuse it, and this report says how far the ingest got instead of failing.

Letters: ``N`` regions, ``S`` slides, ``C`` channels, ``G`` grid side.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import journal
from .base import GRID_SIZE, FeatureStore, SlideRecord, StoreError, store_dtype
from .memmap_store import MANIFEST
from .redis_conn import RedisConnection
from .redis_store import store_key
from .redis_uri import is_redis_uri, parse_redis_uri
from .uri import open_store


def _memmap_journal(root: Path) -> list[dict]:
    path = root / journal.JOURNAL_FILE
    if not root.is_dir() or (root / MANIFEST).exists() or not path.is_file():
        return []
    return journal.parse_lines(path.read_text().splitlines(), str(root))


def _redis_journal(uri: str) -> list[dict]:
    loc = parse_redis_uri(uri)
    key = store_key(loc.prefix, journal.JOURNAL_KEY)
    lines = RedisConnection(loc).call('read the journal', lambda c: c.lrange(key, 0, -1))
    return journal.parse_lines(lines, str(loc))


#: Share of a slide's patches lost to regions below ``min_tissue`` above which the
#: ingest summary and ``inspect_store`` warn.
PATCH_LOSS_WARN = 0.10


def patch_loss_lines(slides: list[tuple[str, int, int]],
                     threshold: float = PATCH_LOSS_WARN) -> list[str]:
    """Patches in the files against patches kept in regions, in total, and a warning.

    The warning names the slides that lost more than ``threshold`` of theirs.

    Args:
        slides: ``(slide_id, patches in the file, patches kept in regions)`` per slide.
        threshold: Lost share above which a slide is named. Defaults to 0.10.

    Returns:
        No line without slides, else a ``patches:`` line and maybe a ``warning:`` line.
    """
    if not slides:
        return []
    total = sum(n for _, n, _ in slides)
    kept = sum(k for _, _, k in slides)
    lines = [f'patches: {total:,} in the files, {kept:,} kept in regions '
             f'({100 * kept / max(total, 1):.1f} %)']
    lossy = [(sid, n, n - k) for sid, n, k in slides if n and (n - k) / n > threshold]
    if lossy:
        named = ', '.join(f'{sid} lost {lost} of {n} ({100 * lost / n:.0f} %)'
                          for sid, n, lost in lossy[:5])
        more = f', and {len(lossy) - 5} more' if len(lossy) > 5 else ''
        lines.append(f'warning: {len(lossy)} slide(s) lost more than {threshold:.0%} of '
                     f'their patches to regions below min_tissue: {named}{more}')
    return lines


def _patch_counts(report: dict) -> list[tuple[str, int, int]]:
    return [(s['slide_id'], int(s['source']['patches']),
             int(s['source']['patches_in_regions'])) for s in report['slides']
            if 'patches_in_regions' in s.get('source', {})]


def _disk_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob('*') if f.is_file())


def _report(location: str, backend: str, complete: bool, records: list[SlideRecord],
            channels: int, dtype: str, has_coords: bool, disk_bytes: int | None,
            grid_size: int = GRID_SIZE, provenance: dict | None = None,
            tissue: np.ndarray | None = None) -> dict:
    counts = np.array([r.count for r in records], dtype=np.int64)
    regions = int(counts.sum())
    region_bytes = channels * grid_size * grid_size * store_dtype(dtype).itemsize
    slides = [dict(slide_id=r.slide_id, offset=r.offset, count=r.count) for r in records]
    for rec, entry in zip(records, slides):
        if rec.source:
            entry['source'] = rec.source
        if tissue is not None:
            entry['tissue'] = float(tissue[rec.offset:rec.offset + rec.count].mean())
    return dict(
        location=location, backend=backend, complete=complete, num_slides=len(records),
        num_regions=regions, channels=channels, dtype=dtype, grid_size=grid_size,
        has_coords=has_coords, data_bytes=regions * region_bytes, disk_bytes=disk_bytes,
        count_min=int(counts.min()), count_median=float(np.median(counts)),
        count_mean=float(counts.mean()), count_max=int(counts.max()),
        provenance=provenance,
        tissue_mean=None if tissue is None else float(tissue.mean()),
        tissue_min=None if tissue is None else float(tissue.min()),
        slides=slides)


def _tissue(store: FeatureStore) -> np.ndarray | None:
    """Tissue fraction of every region ``(N,)``; None for a store without masks."""
    if not getattr(store, 'has_masks', False):
        return None
    fractions = [store.read_masks(np.arange(a, min(a + 4096, store.num_regions))).mean((1, 2))
                 for a in range(0, store.num_regions, 4096)]
    return np.concatenate(fractions)


def store_report(uri: str | os.PathLike) -> dict:
    """Describe a store, complete or interrupted.

    Args:
        uri: A store folder or a ``redis://`` / ``rediss://`` URI.

    Returns:
        dict: ``location``, ``backend`` (``memmap``/``redis``), ``complete``,
        ``num_slides``, ``num_regions``, ``channels``, ``dtype``, ``grid_size``,
        ``has_coords``, ``data_bytes`` (the grids), ``disk_bytes`` (every file of a
        memmap folder; None for Redis), ``count_min``/``_median``/``_mean``/``_max``
        (regions per slide), ``provenance`` (patch-feature stores: encoder, patch size,
        magnification, mpp, ...; else None), ``tissue_mean``/``tissue_min`` (fraction of
        cells holding a patch, over regions; None for stores without masks) and
        ``slides`` (``slide_id``, ``offset``, ``count``, and for patch-feature stores
        ``source`` (file, sha256, stride, ...) and ``tissue``). For an interrupted
        ingest, ``complete`` is False and the rest describes the slides committed so
        far (without tissue fractions).

    Raises:
        StoreError: If there is no store at ``uri`` (not even a journal), or the server
            cannot be reached.
    """
    redis = is_redis_uri(uri)
    backend = 'redis' if redis else 'memmap'
    try:
        store: FeatureStore = open_store(uri)
    except StoreError:
        entries = _redis_journal(str(uri)) if redis else _memmap_journal(Path(uri))
        if not entries:
            raise
        last = entries[-1]
        records = [journal.entry_record(e) for e in entries]
        disk = None if redis else _disk_bytes(Path(uri))
        location = str(parse_redis_uri(str(uri))) if redis else str(uri)
        return _report(location, backend, False, records, int(last['channels']),
                       last['dtype'], any(e['has_coords'] for e in entries), disk,
                       int(last.get('grid_size', GRID_SIZE)), last.get('provenance'))
    disk = None if redis else _disk_bytes(Path(uri))
    report = _report(store.location, backend, True, list(store.slides), store.channels,
                     store.dtype.name, bool(getattr(store, 'has_coords', False)), disk,
                     store.grid_size, store.provenance, _tissue(store))
    store.close()
    return report


def human_bytes(count: int) -> str:
    """``1536`` -> ``'1.50 KiB'``."""
    value = float(count)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return f'{value:.0f} {unit}' if unit == 'B' else f'{value:.2f} {unit}'
        value /= 1024
    raise AssertionError('unreachable')


def _provenance_lines(report: dict) -> list[str]:
    """``provenance:`` and ``tissue:`` lines of a patch-feature store, else none."""
    lines = []
    prov = report.get('provenance')
    if prov is not None:
        shown = ', '.join(f'{k} {v}' for k, v in prov.items() if v is not None)
        lines.append(f'provenance: {shown}')
    if report.get('tissue_mean') is not None:
        lines.append(f'tissue (cells with a patch, per region): mean '
                     f'{report["tissue_mean"]:.2f}, min {report["tissue_min"]:.2f}')
    return lines


def format_store_report(report: dict, max_slides: int | None = 20) -> list[str]:
    """The lines that present :func:`store_report`.

    Args:
        report: Output of :func:`store_report`.
        max_slides: Slides listed one per line; None lists all. Defaults to 20.
    """
    status = ('complete' if report['complete'] else
              f'INCOMPLETE: an ingest was interrupted after {report["num_slides"]} '
              f'committed slide(s); re-run the same ingest command to complete it')
    disk = (f', {human_bytes(report["disk_bytes"])} on disk (all files)'
            if report['disk_bytes'] is not None else ' in Redis values')
    lines = [
        f'store: {report["location"]} ({report["backend"]})',
        f'status: {status}',
        f'slides: {report["num_slides"]}',
        f'regions: {report["num_regions"]}',
        f'regions per slide: min {report["count_min"]}, median {report["count_median"]:g}, '
        f'mean {report["count_mean"]:.1f}, max {report["count_max"]}',
        f'channels (C): {report["channels"]}',
        f'dtype: {report["dtype"]}',
        f'grid: {report["grid_size"]}x{report["grid_size"]}',
        f'coords: {"yes" if report["has_coords"] else "no"}',
        f'size: {human_bytes(report["data_bytes"])} of grids{disk}',
    ]
    lines += _provenance_lines(report)
    lines += patch_loss_lines(_patch_counts(report))
    shown = report['slides'] if max_slides is None else report['slides'][:max_slides]
    width = max(len('slide_id'), *(len(s['slide_id']) for s in shown))
    extra = report['provenance'] is not None
    lines.append(f'  {"slide_id":<{width}}  {"regions":>7}  {"offset":>8}'
                 + ('  tissue  stride  patches kept  source (sha256)' if extra else ''))
    for s in shown:
        line = f'  {s["slide_id"]:<{width}}  {s["count"]:>7}  {s["offset"]:>8}'
        if extra and 'source' in s:
            src = s['source']
            tissue = f'{s["tissue"]:.2f}' if 'tissue' in s else '-'
            kept = (f'{src["patches_in_regions"]}/{src["patches"]}'
                    if 'patches_in_regions' in src else '-')
            line += (f'  {tissue:>6}  {src.get("stride", 0):>6g}  {kept:>12}  '
                     f'{src.get("file")} ({src.get("file_sha256", "")[:12]})')
            if src.get('pieces'):  # CLAM tissue pieces on shifted lattices
                line += f' [{src["pieces"]} pieces]'
        lines.append(line)
    if len(shown) < len(report['slides']):
        lines.append(f'  ... and {len(report["slides"]) - len(shown)} more slides')
    return lines
