"""The interface every region-feature store implements.

A store holds the pre-extracted feature grids of many slides: region ``i`` is a grid of
shape ``(C, G, G)`` (``G = 16`` for 4K regions cut into 256-px patches), the regions of
one slide are contiguous, and a small index says which slide each region belongs to.

Each region also has a tissue mask ``(G, G)`` bool: True where the cell holds a patch's
features, False where no patch was extracted (zero-filled). Stores made from region-grid
files, and stores written before masks existed, read as all True.

Letters: ``N`` regions in the store, ``S`` slides, ``C`` channels, ``G`` grid side.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from slpd_plugin.utils.cli import UserError

GRID_SIZE = 16
MANIFEST_VERSION = 1
STORE_DTYPES = ('float16', 'float32')
MASK_SCAN_REGIONS = 65536  # regions per read when masks are counted


class StoreError(UserError, RuntimeError):
    """A store is missing, incomplete, corrupt or does not match what was expected.

    A :class:`~slpd_plugin.utils.cli.UserError`: the tools print it as one line, exit 1.
    """


def store_dtype(name: str) -> np.dtype:
    """The little-endian numpy dtype of a store dtype name (``float16``/``float32``)."""
    if name not in STORE_DTYPES:
        raise StoreError(f'store dtype must be one of {STORE_DTYPES}, got {name!r}')
    return np.dtype(name).newbyteorder('<')


def flat_bytes(data: np.ndarray) -> memoryview:
    """The array's bytes in C order as a flat, one-dimensional ``uint8`` memoryview.

    Every value sent to a socket, hashed or written goes through this. A numpy buffer
    of an ``(n, C, G, G)`` array is a multi-dimensional memoryview whose ``len()`` is
    ``n``, not its byte count; clients that frame a value by ``len()`` (redis-py 8.2
    announces a bulk length of ``n`` and then sends every byte) corrupt the stream.
    The cast makes ``len()`` the byte count, with no copy for a C-contiguous array.
    """
    return np.ascontiguousarray(data).data.cast('B')


def slide_checksum(data: np.ndarray) -> str:
    """SHA-256 hex digest of a slide's grid (or uint8 mask) bytes as stored (C order)."""
    return hashlib.sha256(flat_bytes(data)).hexdigest()


@dataclass(frozen=True)
class SlideRecord:
    """One slide's entry in a store manifest.

    Attributes:
        slide_id: The slide's name (e.g. a TCGA slide id without ``.svs``).
        offset: Index of the slide's first region in the store.
        count: Number of regions of the slide.
        sha256: Hex digest of the slide's grid bytes as stored.
        source: Provenance of a slide made from patch features (empty otherwise): the
            source file, its SHA-256, the level-0 stride and how it was found, ...
        masks_sha256: Hex digest of the slide's uint8 masks ``(count, G, G)`` as stored;
            None for slides written before masks had checksums (their masks go unchecked).
    """

    slide_id: str
    offset: int
    count: int
    sha256: str
    source: dict | None = None
    masks_sha256: str | None = None

    def to_json(self) -> dict:
        """The record as a manifest/journal JSON object (optional fields only when set)."""
        out = dict(slide_id=self.slide_id, offset=self.offset, count=self.count,
                   sha256=self.sha256)
        if self.source:
            out['source'] = self.source
        if self.masks_sha256 is not None:
            out['masks_sha256'] = self.masks_sha256
        return out


# One part of a slide: grids (n, C, G, G), coords (n, 2) or None, masks (n, G, G) or None.
SlidePart = Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]
# Global region indices: a list, a range or an integer array.
RegionIndices = Union[Sequence[int], np.ndarray]


class FeatureStore(ABC):
    """Read access to region feature grids.

    Subclasses implement :meth:`read` (a batch of regions in one request) and fill the
    index attributes when opened. Stores are opened lazily by the dataset in each
    DataLoader worker, so an instance must be cheap to create and safe to pickle before
    its first read (keep handles in attributes that :meth:`__getstate__` drops).

    Attributes:
        location: Where the store lives (a path or a URI without secrets).
        slides: The manifest's slide records, in storage order.
        channels: ``C``, the feature dimension of each grid cell.
        dtype: The dtype grids are stored in (``float16`` or ``float32``).
        grid_size: ``G``.
        has_masks: Whether the store holds masks (False: every cell reads as present).
    """

    location: str
    slides: list[SlideRecord]
    channels: int
    dtype: np.dtype
    grid_size: int
    has_masks: bool = False
    _missing_cells: int | None = None  # filled by missing_cells()

    @abstractmethod
    def read(self, indices: RegionIndices) -> np.ndarray:
        """Read regions by global index.

        Args:
            indices: Region indices in ``[0, N)``, in any order.

        Returns:
            Array of shape ``(len(indices), C, G, G)`` in the store's dtype.
        """

    def close(self) -> None:  # noqa: B027 (optional: stores without handles keep it)
        """Release handles (connections, maps). The store reopens on the next read."""

    def read_slide(self, slide: int) -> np.ndarray:
        """All regions of slide ``slide`` (its position in :attr:`slides`), ``(n, C, G, G)``."""
        rec = self.slides[slide]
        return self.read(np.arange(rec.offset, rec.offset + rec.count))

    def mismatches(self, slide: int) -> list[str]:
        """Re-read and re-hash slide ``slide``; return what no longer matches the manifest.

        Returns:
            ``'grids'``, ``'masks'`` (when the record has a mask checksum), both, or an
            empty list.
        """
        rec = self.slides[slide]
        bad = [] if slide_checksum(self.read_slide(slide)) == rec.sha256 else ['grids']
        if rec.masks_sha256 is not None:
            masks = self.read_masks(np.arange(rec.offset, rec.offset + rec.count))
            if slide_checksum(masks.astype(np.uint8)) != rec.masks_sha256:
                bad.append('masks')
        return bad

    def verify(self) -> list[str]:
        """Re-read and re-hash every slide; returns the ids whose bytes do not match."""
        return [rec.slide_id for i, rec in enumerate(self.slides) if self.mismatches(i)]

    @property
    def num_regions(self) -> int:
        """``N``, the number of regions of all slides."""
        return sum(s.count for s in self.slides)

    @property
    def num_slides(self) -> int:
        """``S``, the number of slides."""
        return len(self.slides)

    @property
    def slide_ids(self) -> list[str]:
        """The slide ids, in storage order."""
        return [s.slide_id for s in self.slides]

    def region_slide_index(self) -> np.ndarray:
        """Slide index of every region, shape ``(N,)``, int64."""
        counts = np.array([s.count for s in self.slides], dtype=np.int64)
        return np.repeat(np.arange(len(self.slides), dtype=np.int64), counts)

    def region_index_in_slide(self) -> np.ndarray:
        """Position of every region within its slide, shape ``(N,)``, int64."""
        counts = np.array([s.count for s in self.slides], dtype=np.int64)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        return np.arange(int(counts.sum()), dtype=np.int64) - starts

    def coords(self) -> np.ndarray | None:
        """Region top-left corners in level-0 pixels, ``(N, 2)`` int64, if known."""
        return None

    def read_masks(self, indices: RegionIndices) -> np.ndarray:
        """Tissue masks of regions by global index, ``(len(indices), G, G)`` bool.

        True where a cell holds a patch. Stores without masks (from region grids, or
        written before masks existed) return all True.
        """
        n = len(np.asarray(indices).reshape(-1))
        return np.ones((n, self.grid_size, self.grid_size), dtype=bool)

    def missing_cells(self) -> int:
        """Cells of all regions that hold no patch (False in the masks), computed once.

        Free for stores without masks (0) and for patch-feature stores, whose manifest
        records each slide's ``patches_in_regions`` (``count * G² - patches_in_regions``
        cells are missing); otherwise the masks are read once, in blocks of
        :data:`MASK_SCAN_REGIONS` regions.
        """
        if self._missing_cells is None:
            self._missing_cells = self._count_missing_cells()
        return self._missing_cells

    @property
    def has_holes(self) -> bool:
        """Whether any region misses a patch (see :meth:`missing_cells`)."""
        return self.missing_cells() > 0

    def _count_missing_cells(self) -> int:
        if not self.has_masks:
            return 0
        cells = self.grid_size ** 2
        patches = [int(s.source['patches_in_regions']) for s in self.slides
                   if s.source and 'patches_in_regions' in s.source]
        if len(patches) == len(self.slides):
            return self.num_regions * cells - sum(patches)
        n = self.num_regions
        missing = 0
        for lo in range(0, n, MASK_SCAN_REGIONS):
            masks = self.read_masks(np.arange(lo, min(lo + MASK_SCAN_REGIONS, n)))
            missing += int((~masks).sum())
        return missing

    @property
    def provenance(self) -> dict | None:
        """Where a patch-feature store's slides came from, or None for region grids.

        The dict names the encoder, patch size, magnification, mpp, ...
        """
        return None

    def __len__(self) -> int:
        return self.num_regions

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.location!r}, slides={self.num_slides}, '
                f'regions={self.num_regions}, C={self.channels}, dtype={self.dtype})')


class StoreWriter(ABC):
    """Append whole slides to a store; :meth:`finalize` marks it complete.

    Writers are resumable: slides already written and verified are listed by
    :meth:`written_slides` and skipped by ingest tools. Until :meth:`finalize` writes the
    manifest, readers refuse the store as incomplete.

    Attributes:
        location: Where the store is written (no secrets).
        channels: ``C`` of the slides written so far, or None before the first one.
        dtype: The dtype grids are stored in.
        records: The slides committed so far, in order.
        has_coords: Whether any committed slide came with coordinates.
        grid_size: ``G`` of every region of the store.
        provenance: The store's patch-feature provenance (see
            :attr:`FeatureStore.provenance`), kept from the first slide that set it.
    """

    location: str
    channels: int | None
    dtype: np.dtype
    records: list[SlideRecord]
    has_coords: bool
    grid_size: int = GRID_SIZE
    provenance: dict | None = None

    def add_slide(self, slide_id: str, grids: np.ndarray,
                  coords: np.ndarray | None = None, masks: np.ndarray | None = None,
                  source: dict | None = None) -> SlideRecord:
        """Append one slide held in memory.

        Args:
            slide_id: Unique slide name.
            grids: ``(n, C, G, G)`` float array (converted to the store's dtype).
            coords: Optional ``(n, 2)`` integer region coordinates.
            masks: Optional ``(n, G, G)`` bool tissue masks; None means all True.
            source: Optional per-slide provenance (see :attr:`SlideRecord.source`).
        """
        return self.add_slide_parts(slide_id, [(grids, coords, masks)], source)

    @abstractmethod
    def add_slide_parts(self, slide_id: str, parts: Iterable[SlidePart],
                        source: dict | None = None) -> SlideRecord:
        """Append one slide streamed as consecutive parts of its regions.

        Memory stays bounded by one part (plus, for Redis, one blob). If ``parts``
        raises (e.g. a bad value found halfway through a slide), nothing of the slide
        is committed and the error propagates.

        Args:
            slide_id: Unique slide name.
            parts: ``(grids, coords, masks)`` tuples, as for :meth:`add_slide`.
            source: Optional per-slide provenance.
        """

    def set_provenance(self, provenance: dict) -> None:
        """Record the store's provenance (written with every later journal line)."""
        self.provenance = dict(provenance)

    def written_slides(self) -> list[str]:
        """Ids of slides committed so far (in order)."""
        return [r.slide_id for r in self.records]

    def check_new_slide(self, slide_id: str) -> None:
        """Refuse a slide id that is already in the store."""
        if slide_id in set(self.written_slides()):
            raise StoreError(f'slide {slide_id!r}: duplicate slide id, already in '
                             f'{self.location}')

    def prepare_part(self, slide_id: str, grids: np.ndarray, coords: np.ndarray | None,
                     masks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Check one part of a slide before it is written (shared by every backend).

        Returns:
            The grids in the store's dtype, C-contiguous ``(n, C, G, G)``, the
            coordinates as little-endian int64 ``(n, 2)`` (-1 where unknown) and the
            masks as uint8 ``(n, G, G)`` (1 = tissue).

        Raises:
            StoreError: bad grids (see :func:`check_grids`), or coords/masks of the
                wrong shape, naming the slide.
        """
        source = f'slide {slide_id!r}'
        check_grids(np.asarray(grids), self.channels, source, self.grid_size)
        data = np.ascontiguousarray(grids, dtype=self.dtype)
        self.channels = int(data.shape[1])
        g = self.grid_size
        if masks is None:
            masks = np.ones((len(data), g, g), dtype=np.uint8)
        elif np.shape(masks) != (len(data), g, g):
            raise StoreError(f'{source}: expected masks of shape ({len(data)}, {g}, {g}), '
                             f'got {np.shape(masks)}')
        masks = np.ascontiguousarray(masks, dtype=np.uint8)
        if coords is None:
            return data, np.full((len(data), 2), -1, dtype='<i8'), masks
        coords = np.asarray(coords)
        if coords.shape != (len(data), 2):
            raise StoreError(f'{source}: expected coords of shape ({len(data)}, 2), '
                             f'got {coords.shape}')
        self.has_coords = True
        return data, np.ascontiguousarray(coords, dtype='<i8'), masks

    def manifest(self, **extra: object) -> dict:
        """The manifest's common fields (each backend adds its own)."""
        meta = dict(channels=self.channels, dtype=self.dtype.name, grid_size=self.grid_size,
                    num_regions=sum(r.count for r in self.records),
                    has_coords=self.has_coords, has_masks=True, **extra,
                    slides=[r.to_json() for r in self.records])
        if self.provenance is not None:
            meta['provenance'] = self.provenance
        return meta

    @abstractmethod
    def finalize(self) -> None:
        """Write the manifest last, making the store readable."""

    def __enter__(self) -> 'StoreWriter':
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.finalize()


def check_grids(grids: np.ndarray, channels: int | None, source: str,
                grid_size: int = GRID_SIZE) -> np.ndarray:
    """Validate one slide's grids before they are stored.

    Args:
        grids: Expected ``(n, C, G, G)`` with ``G = grid_size`` and finite values.
        channels: Expected ``C``, or None to accept any.
        source: Names the file/slide in error messages.
        grid_size: ``G``. Defaults to 16.

    Returns:
        ``grids`` unchanged.

    Raises:
        StoreError: naming ``source`` and what was expected.
    """
    if grids.ndim != 4 or grids.shape[2:] != (grid_size, grid_size):
        raise StoreError(f'{source}: expected region grids of shape (n, C, {grid_size}, '
                         f'{grid_size}), got {tuple(grids.shape)}')
    if grids.shape[0] == 0:
        raise StoreError(f'{source}: slide has no regions')
    if channels is not None and grids.shape[1] != channels:
        raise StoreError(f'{source}: expected C={channels} channels, got {grids.shape[1]}')
    if not np.issubdtype(grids.dtype, np.floating):
        raise StoreError(f'{source}: expected floating-point grids, got {grids.dtype}')
    finite = np.isfinite(grids).reshape(grids.shape[0], -1).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise StoreError(f'{source}: {len(bad)} region(s) contain NaN/Inf values '
                         f'(first region indices: {bad[:5].tolist()})')
    return grids
