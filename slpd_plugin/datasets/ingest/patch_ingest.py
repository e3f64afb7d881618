"""Ingest patch-feature files (TRIDENT, CLAM, STAMP) as region grids with tissue masks.

Per slide: open the file (:mod:`.patch_readers`), place its patches on one lattice, or
one per tissue piece where the file tiles pieces from their own corners (CLAM;
``shifted_lattices='split'``) (:mod:`.lattice`), check it against the store (D,
encoder, patch size, magnification), choose the regions (:mod:`.grid_assembly`), hash
the file, then stream the regions into the store. Every check that needs no feature
value runs before anything is written; a NaN/Inf found while streaming drops the
slide's partial bytes. Either way the error names the file and both values, and the
slides before it stay committed (re-run the same command after fixing the file).

A slide with no region left after the tissue filter is skipped with a one-line warning
(a small biopsy should not stop a cohort's ingest); the report lists it.

CLAM files do not record a magnification. Where a slide's level-0 stride had to be
inferred from its coordinates (no ``patches/`` file, no ``--patch-size-level0``) and the
slides (those to ingest and those already in the store) are not all at one stride, they
may be at different magnifications: the folder is refused before anything is written,
naming the slides of each stride, unless ``allow_mixed_strides`` says the difference is
only the scanner's (e.g. 40x and 20x scans both patched at 20x).
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from slpd_plugin.utils.progress import progress_bar

from ..stores import StoreError, StoreWriter, open_writer
from ..stores.base import GRID_SIZE
from ..stores.report import patch_loss_lines
from .grid_assembly import DEFAULT_MIN_TISSUE, PART_BYTES, iter_region_parts, plan_pieces
from .ingest import IngestReport, _check_range
from .lattice import Lattice, place, split_by_phase
from .patch_readers import INFERRED, READERS, PatchSlide
from .sources import SlideSource

# Facts that must agree between the slides of one store (None = unknown, not compared).
SHARED = ('format', 'encoder', 'patch_size_px', 'target_magnification', 'mpp',
          'coords_unit', 'tile_size_um', 'grid_size', 'min_tissue')


@dataclass
class PatchOptions:
    """How patch files become regions.

    Attributes:
        fmt: ``'trident'``, ``'clam'`` or ``'stamp'``.
        grid_size: ``G``, patches per region side. Defaults to 16.
        min_tissue: Keep regions with at least this fraction of cells present.
            Defaults to 0.25.
        patch_size_level0: Level-0 stride given by the user (checked against the file's
            attributes and coordinates), or None.
        patches_dir: CLAM ``patches/`` folder, or None to look beside ``h5_files/``.
        part_bytes: Features assembled per streamed part. Defaults to 32 MiB.
        shifted_lattices: ``'split'`` cuts a slide whose patches sit on several shifted
            lattices (tissue pieces tiled from their own corners) piece by piece;
            ``'refuse'`` stops at it. None (default): ``'split'`` for CLAM, whose
            multi-piece slides all look like this, ``'refuse'`` for TRIDENT and STAMP,
            which tile one slide-wide grid.
        allow_mixed_strides: Accept CLAM slides at different level-0 strides inferred
            from their coordinates (see the module docstring). Defaults to False.
    """

    fmt: str
    grid_size: int = GRID_SIZE
    min_tissue: float = DEFAULT_MIN_TISSUE
    patch_size_level0: int | None = None
    patches_dir: str | None = None
    part_bytes: int = PART_BYTES
    shifted_lattices: str | None = None
    allow_mixed_strides: bool = False

    def __post_init__(self) -> None:
        if self.shifted_lattices is None:
            self.shifted_lattices = 'split' if self.fmt == 'clam' else 'refuse'
        if self.shifted_lattices not in ('split', 'refuse'):
            raise StoreError(f"shifted_lattices must be 'split' or 'refuse', got "
                             f'{self.shifted_lattices!r}')


@dataclass
class PatchIngestReport(IngestReport):
    """An :class:`IngestReport` of patch files.

    Attributes:
        patches: Patches read.
        no_tissue: Slides skipped for having no tissue.
        in_pieces: Slides cut piece by piece (patches on shifted lattices).
    """

    patches: int = 0
    no_tissue: list[str] = field(default_factory=list)
    in_pieces: list[str] = field(default_factory=list)
    kept: list[tuple[str, int, int]] = field(default_factory=list)

    def patch_lines(self) -> list[str]:
        """Patches in the files against patches kept in regions, in total, and a warning.

        The warning names each slide that lost more than 10 % of them.
        """
        return patch_loss_lines(self.kept)

    def summary(self) -> str:
        """The ingest summary plus patches read, slides in pieces and slides without tissue."""
        text = super().summary() + f'; {self.patches:,} patches'
        if self.in_pieces:
            text += (f'; {len(self.in_pieces)} slide(s) cut piece by piece, their patches '
                     f'on shifted lattices (e.g. {self.in_pieces[0]!r})')
        if self.no_tissue:
            text += (f'; {len(self.no_tissue)} slide(s) had no region with enough tissue '
                     f'and were skipped (e.g. {self.no_tissue[0]!r})')
        return text


def file_sha256(path: str, chunk: int = 2 ** 22) -> str:
    """SHA-256 hex digest of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def check_against_store(slide: PatchSlide, info: dict, writer: StoreWriter) -> None:
    """Refuse a slide whose D or shared facts differ from the store's (both named)."""
    where = slide.path
    if writer.channels is not None and slide.dim != writer.channels:
        raise StoreError(f'{where}: D={slide.dim} features, but the store {writer.location} '
                         f'(or the slides before it) has D={writer.channels}: all slides of '
                         f'a store must come from the same patch encoder')
    if writer.records and writer.provenance is None:
        raise StoreError(f'{where}: the store {writer.location} holds region grids without '
                         f'patch provenance; ingest patch features into a new store')
    have = writer.provenance or {}
    for key in SHARED:
        if info.get(key) is not None and have.get(key) is not None \
                and info[key] != have[key]:
            raise StoreError(f'{where}: {key} is {info[key]!r}, but the store '
                             f'{writer.location} (or the slides before it) has '
                             f'{have[key]!r}; one store holds one extraction setting')


def _open(source: SlideSource, options: PatchOptions, f: h5py.File) -> PatchSlide:
    return READERS[options.fmt](f, source.path, patch_size_level0=options.patch_size_level0,
                                patches_dir=options.patches_dir)


def check_one_stride(sources: list[SlideSource], writer: StoreWriter,
                     options: PatchOptions) -> None:
    """Refuse CLAM slides at different level-0 strides when any was inferred from coords.

    See the module docstring; only every file's coordinates are read.

    Raises:
        StoreError: naming the slides of each stride and the ways out.
    """
    strides: dict[float, list[str]] = {}
    inferred = False
    for rec in writer.records:
        if not rec.source or 'stride' not in rec.source:
            continue
        strides.setdefault(float(rec.source['stride']), []).append(rec.slide_id)
        inferred |= rec.source.get('stride_source') == INFERRED
    for source in sources:
        with _h5(source) as f:
            slide = _open(source, options, f)
        strides.setdefault(float(slide.stride), []).append(source.slide_id)
        inferred |= slide.stride_source == INFERRED
    if len(strides) > 1 and inferred:
        groups = '; '.join(f'stride {s:g}: {", ".join(ids[:4])}'
                           + (f' and {len(ids) - 4} more' if len(ids) > 4 else '')
                           for s, ids in sorted(strides.items()))
        raise StoreError(
            f'{Path(sources[0].path).parent}: CLAM slides at different level-0 patch '
            f'strides ({groups}), some inferred from the coordinates, may be at different '
            f'magnifications and one store holds one magnification; give CLAM\'s '
            f'patches/ folder (--patches) or --patch-size-level0, or pass '
            f'--allow-mixed-strides if only the scanners differ (e.g. 40x and 20x scans '
            f'patched at 20x)')


def _h5(source: SlideSource) -> h5py.File:
    try:
        return h5py.File(source.path, 'r')
    except OSError as e:
        raise StoreError(f'{source.describe()}: cannot read as HDF5 (truncated or '
                         f'corrupt?): {e}') from None


def place_pieces(coords, stride: float, where: str,
                 shifted_lattices: str) -> list[tuple[np.ndarray, Lattice]]:
    """``(file rows, lattice)`` of each tissue piece.

    One piece holding every patch, or with ``shifted_lattices='split'`` one per shifted
    lattice, largest first.
    """
    if shifted_lattices == 'split':
        return [(rows, place(coords[rows], stride, where))
                for rows in split_by_phase(coords, stride, where)]
    return [(np.arange(len(coords)), place(coords, stride, where))]


def ingest_patch_slide(source: SlideSource, writer: StoreWriter, options: PatchOptions,
                       dtype: str) -> tuple[int, int, int, int]:
    """Check and write one slide; returns its region, patch, piece and kept-patch counts.

    That is (regions written, patches in the file, tissue pieces, patches kept in
    regions).

    Raises:
        StoreError: naming the file, for anything listed in the module docstring.
    """
    with _h5(source) as f:
        slide = _open(source, options, f)
        pieces = place_pieces(slide.coords, slide.stride, slide.path,
                              options.shifted_lattices)
        info = dict(slide.store_info, grid_size=options.grid_size,
                    min_tissue=options.min_tissue)
        check_against_store(slide, info, writer)
        plan = plan_pieces(pieces, options.grid_size, options.min_tissue)
        if plan.num_regions == 0:
            warnings.warn(f'{slide.path}: no region of {options.grid_size}x'
                          f'{options.grid_size} patches has tissue fraction >= '
                          f'{options.min_tissue:g} ({len(slide.coords)} patches in '
                          f'{plan.occupied} regions); slide skipped', stacklevel=2)
            return 0, len(slide.coords), len(pieces), 0
        stride = slide.stride.item() if hasattr(slide.stride, 'item') else slide.stride
        facts = {k: v for k, v in slide.slide_info.items() if v is not None}
        record = dict(file=str(Path(slide.path).resolve()), file_sha256=file_sha256(slide.path),
                      stride=stride, stride_source=slide.stride_source,
                      phase=list(pieces[0][1].phase), patches=len(slide.coords),
                      patches_in_regions=len(plan.rows), **facts)
        if len(pieces) > 1:  # phase: the largest piece's
            record.update(pieces=len(pieces), phases=[list(lat.phase) for _, lat in pieces])
        if writer.provenance is None:
            writer.set_provenance({**info, 'anchor': 'slide origin'})

        def parts():
            for grids, corners, masks in iter_region_parts(
                    slide.features, slide.coords, plan, slide.path, options.part_bytes):
                _check_range(grids, dtype, slide.path)
                yield grids, corners, masks
        writer.add_slide_parts(source.slide_id, parts(), source=record)
        return plan.num_regions, len(slide.coords), len(pieces), len(plan.rows)


def ingest_patches(sources: list[SlideSource], store: str, options: PatchOptions,
                   dtype: str = 'float16', channels: int | None = None,
                   progress: bool = False) -> PatchIngestReport:
    """Write every source slide not yet in ``store`` as region grids, then the manifest.

    Args:
        sources: From :func:`find_patch_sources`.
        store: Destination folder or ``redis://`` URI.
        options: Format, region size, tissue threshold, stride hints.
        dtype: Storage dtype. Defaults to 'float16'.
        channels: Expected ``D``; None takes it from the first slide. Defaults to None.
        progress: Show a progress bar (slides). Defaults to False.

    Raises:
        StoreError: at the first bad slide (see the module docstring).
    """
    start = time.perf_counter()
    writer = open_writer(store, channels=channels, dtype=dtype,
                         grid_size=options.grid_size)
    stored = set(writer.written_slides())
    report = PatchIngestReport(skipped=[s.slide_id for s in sources if s.slide_id in stored])
    todo = [s for s in sources if s.slide_id not in stored]
    if options.fmt == 'clam' and todo and not options.allow_mixed_strides:
        check_one_stride(todo, writer, options)
    for source in progress_bar(todo, unit='slide', desc='ingest', disable=not progress):
        regions, patches, pieces, kept = ingest_patch_slide(source, writer, options, dtype)
        report.patches += patches
        report.kept.append((source.slide_id, patches, kept))
        if regions == 0:
            report.no_tissue.append(source.slide_id)
            continue
        report.written.append(source.slide_id)
        if pieces > 1:
            report.in_pieces.append(source.slide_id)
        report.regions += regions
        report.layouts[options.fmt] += 1
    if not writer.records:
        raise StoreError(f'{store}: nothing to write: no slide has a region with tissue '
                         f'fraction >= {options.min_tissue:g} (see the warnings above)')
    writer.finalize()
    report.channels = writer.channels
    report.seconds = time.perf_counter() - start
    return report
