"""Convert TRIDENT / CLAM / STAMP patch-feature files into a lattice store, at disk speed.

Per slide: open the file and check its stride and geometry (the readers of
:mod:`slpd_plugin.datasets.ingest.patch_readers`), place its patches on their lattice
(one per tissue piece where the file tiles pieces from their own corners), build the
index maps, then stream the features **in file order**, in chunks of ``chunk_bytes``,
through one reused buffer: each chunk is read contiguously (no h5py fancy indexing),
cast to the store dtype, checked for NaN/Inf, hashed and appended. Memory holds one
chunk plus the slide's coordinates and index maps, whatever the slide's size.

``shard=(i, n)`` converts every ``n``-th slide (sorted by id) from the ``i``-th into
``<store>/shard-<i>-of-<n>/``; the last shard to finish (or :func:`join_shards`) writes
the manifest joining them. Bad input stops at the file, named in one line; the slides
before it stay committed and the same command resumes after them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import torch

from slpd_plugin.utils.progress import progress_bar

from ..ingest.patch_ingest import PatchOptions, check_against_store, place_pieces
from ..ingest.patch_readers import READERS, PatchSlide
from ..ingest.sources import SlideSource
from ..region_dataset import finite_rows
from ..stores import StoreError
from .layout import MANIFEST, SHARDS_FORMAT, VERSION, build_maps
from .store import read_lattice_manifest
from .writer import LatticeWriter, write_json_atomic

CHUNK_BYTES = 32 * 2 ** 20  # source features read per chunk


@dataclass
class ConvertReport:
    """What a conversion did.

    Slides ``written`` and ``skipped`` (already there), ``patches`` and source feature
    ``bytes_read``, ``seconds``, and whether the shards were ``joined``.
    """

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    patches: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    joined: bool = False

    def summary(self) -> str:
        """One line: slides converted, patches, MiB read, time and rate, skipped and joined."""
        rate = self.patches / self.seconds if self.seconds else 0.0
        text = (f'{len(self.written)} slide(s) converted ({self.patches:,} patches, '
                f'{self.bytes_read / 2 ** 20:,.0f} MiB in {self.seconds:.1f} s, '
                f'{rate:,.0f} patches/s)')
        if self.skipped:
            text += f'; {len(self.skipped)} already in the store'
        return text + ('; shards joined' if self.joined else '')


def shard_folder(store: str | Path, index: int, count: int) -> Path:
    """``<store>/shard-<index>-of-<count>/`` (zero-padded, sorts in shard order)."""
    width = len(str(count))
    return Path(store) / f'shard-{index:0{width}d}-of-{count:0{width}d}'


def read_chunks(features: h5py.Dataset, coords: np.ndarray, dtype: np.dtype, where: str,
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """The ``(N, D)`` features in file order, ``(n, D)`` chunks in the store dtype.

    Two buffers are reused for every chunk (the file's dtype and the store's): a chunk
    is valid until the next one is asked for. The cast goes through torch's vectorised
    ``copy_`` (several times numpy's ``astype`` to float16; same rounding).

    Raises:
        StoreError: naming ``where``, a truncated/unreadable file, or a patch whose
            features are NaN/Inf (or beyond the store dtype's range).
    """
    n, dim = features.shape
    rows = min(n, max(1, chunk_bytes // (dim * features.dtype.itemsize)))
    buffer = np.empty((rows, dim), dtype=features.dtype)
    stored = buffer if buffer.dtype == dtype else np.empty((rows, dim), dtype=dtype)
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        part, out = buffer[:hi - lo], stored[:hi - lo]
        try:
            features.read_direct(part, np.s_[lo:hi], np.s_[0:hi - lo])
        except (OSError, ValueError) as e:
            raise StoreError(f'{where}: cannot read features rows {lo}-{hi - 1} (truncated '
                             f'or corrupt file?): {e}') from None
        if out is not part:
            torch.from_numpy(out).copy_(torch.from_numpy(part))
        finite = finite_rows(out)
        if not finite.all():
            k = lo + int(np.argmin(finite))
            raise StoreError(f'{where}: patch {k} at {coords[k].tolist()} has NaN/Inf '
                             f'features{"" if dtype == part.dtype else f" (as {dtype.name})"}'
                             f' ({int((~finite).sum())} such patches in rows {lo}-{hi - 1}); '
                             f'expected finite values: re-extract the slide')
        yield out


def open_patch_file(source: SlideSource) -> h5py.File:
    """The source's h5 file, open for reading.

    Raises:
        StoreError: naming the file, when it is not readable HDF5 (truncated, corrupt).
    """
    try:
        return h5py.File(source.path, 'r')
    except OSError as e:
        raise StoreError(f'{source.describe()}: cannot read as HDF5 (truncated or '
                         f'corrupt?): {e}') from None


def place_slide(f: h5py.File, source: SlideSource, options: PatchOptions, target
                ) -> tuple[PatchSlide, list]:
    """Read one slide's geometry, check it against ``target`` and place its patches.

    Args:
        f: The open file.
        source: The slide.
        options: Format and stride hints.
        target: A store being written or read (``location``, ``channels``, ``records``,
            ``provenance``): the slide must share its D and extraction facts; its
            provenance is set from the first slide.

    Returns:
        The slide and its ``(rows, lattice)`` pieces.

    Raises:
        StoreError: naming the file (see the readers, :func:`place_pieces`), or for a
            level-0 stride that differs from the store's where no magnification explains
            it (CLAM files carry none): mixed strides in one folder.
    """
    slide = READERS[options.fmt](f, source.path, patch_size_level0=options.patch_size_level0,
                                 patches_dir=options.patches_dir)
    pieces = place_pieces(slide.coords, slide.stride, slide.path, options.shifted_lattices)
    info = dict(slide.store_info)
    if options.fmt == 'clam':
        info['stride'] = float(slide.stride)
    check_against_store(slide, info, target)
    have = (target.provenance or {}).get('stride')
    if have is not None and have != info.get('stride', have):
        raise StoreError(f'{slide.path}: mixed strides in one folder: patches are '
                         f'{slide.stride:g} level-0 px apart, but the slides before it in '
                         f'{target.location} have {have:g}; expected one extraction setting '
                         f'per store (convert each magnification into its own store)')
    if target.provenance is None:
        target.provenance = info
    return slide, pieces


def convert_slide(source: SlideSource, writer: LatticeWriter, options: PatchOptions,
                  chunk_bytes: int = CHUNK_BYTES) -> tuple[int, int]:
    """Check and append one slide; returns its patches and the feature bytes read.

    See the module docstring.
    """
    with open_patch_file(source) as f:
        slide, pieces = place_slide(f, source, options, writer)
        maps, cells = build_maps(pieces)
        facts = {k: v for k, v in slide.slide_info.items() if v is not None}
        record = dict(file=str(Path(slide.path).resolve()),
                      file_bytes=Path(slide.path).stat().st_size,
                      stride_source=slide.stride_source, **facts)
        writer.add_slide(source.slide_id,
                         read_chunks(slide.features, slide.coords, writer.dtype, slide.path,
                                     chunk_bytes),
                         cells, maps, float(slide.stride), [lat.phase for _, lat in pieces],
                         record)
        return len(slide.coords), slide.features.size * slide.features.dtype.itemsize


def convert(sources: list[SlideSource], store: str | Path, options: PatchOptions,
            dtype: str = 'float16', shard: tuple[int, int] | None = None,
            chunk_bytes: int = CHUNK_BYTES, progress: bool = False) -> ConvertReport:
    """Convert every source slide not yet in the store (or this shard of it).

    Args:
        sources: From :func:`~slpd_plugin.datasets.ingest.find_patch_sources`.
        store: The store folder.
        options: Format and stride hints (its grid settings are not used).
        dtype: Storage dtype. Defaults to 'float16'.
        shard: ``(i, n)``: convert slides ``i, i + n, ...`` into shard ``i`` of ``n``.
        chunk_bytes: Source bytes read per chunk. Defaults to 32 MiB.
        progress: Show a progress bar (slides).

    Raises:
        StoreError: at the first bad slide (see the module docstring).
    """
    start = time.perf_counter()
    sources = sorted(sources, key=lambda s: s.slide_id)
    folder = Path(store)
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise StoreError(f'--shard {index}/{count}: expected 0 <= i < N')
        sources, folder = sources[index::count], shard_folder(store, index, count)
    writer = LatticeWriter(folder, dtype=dtype)
    done = set(writer.written_slides())
    report = ConvertReport(skipped=[s.slide_id for s in sources if s.slide_id in done])
    for source in progress_bar([s for s in sources if s.slide_id not in done], unit='slide',
                               desc='convert', disable=not progress):
        patches, nbytes = convert_slide(source, writer, options, chunk_bytes)
        report.patches += patches
        report.bytes_read += nbytes
        report.written.append(source.slide_id)
    if shard is None:
        writer.finalize()
    else:
        writer.finalize(allow_empty=True)
        report.joined = join_shards(store, shard[1], strict=False)
    report.seconds = time.perf_counter() - start
    return report


def join_shards(store: str | Path, count: int, strict: bool = True) -> bool:
    """Write the manifest joining ``count`` finished shards of ``store``.

    Returns:
        True when written; False (with ``strict=False``) while a shard is unfinished.

    Raises:
        StoreError: (``strict``) an unfinished shard; always: shards that disagree on
            D, dtype or provenance, or that hold one slide twice.
    """
    folders = [shard_folder(store, i, count) for i in range(count)]
    metas = []
    for folder in folders:
        try:
            metas.append(read_lattice_manifest(folder))
        except StoreError:
            if strict:
                raise
            return False
    first = next((m for m in metas if m['slides']), metas[0])
    seen: dict[str, Path] = {}
    for folder, meta in zip(folders, metas):
        if meta['slides'] and any(meta[k] != first[k] for k in ('channels', 'dtype',
                                                                 'provenance')):
            raise StoreError(f'{folder}: D={meta["channels"]} {meta["dtype"]} '
                             f'{meta["provenance"]}, but another shard has '
                             f'D={first["channels"]} {first["dtype"]} {first["provenance"]}')
        for slide in meta['slides']:
            if slide['slide_id'] in seen:
                raise StoreError(f'{folder}: slide {slide["slide_id"]!r} is also in '
                                 f'{seen[slide["slide_id"]]}')
            seen[slide['slide_id']] = folder
    write_json_atomic(Path(store) / MANIFEST, dict(
        format=SHARDS_FORMAT, version=VERSION, complete=True, channels=first['channels'],
        dtype=first['dtype'], provenance=first['provenance'],
        num_patches=sum(m['num_patches'] for m in metas), num_slides=len(seen),
        shards=[f.name for f in folders]))
    return True
