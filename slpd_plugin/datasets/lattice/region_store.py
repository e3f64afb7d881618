"""The regions of slide lattices as a read-only region store, for the tools that read one.

Extraction, the raw-feature baselines and anything else written against
:class:`~slpd_plugin.datasets.stores.FeatureStore` read a lattice store, or a
TRIDENT/CLAM/STAMP folder in place, through :class:`LatticeRegionStore`: region ``i`` is
sample ``i`` of :class:`~.dataset.SlideLatticeDataset` in regions mode, so what is
embedded is what training saw. :func:`open_regions` picks the reader for a location.
"""
from __future__ import annotations

import numpy as np

from ..ingest.grid_assembly import DEFAULT_MIN_TISSUE
from ..ingest.patch_format import detect_patch_format
from ..stores import FeatureStore, SlideRecord, is_redis_uri, open_store
from ..stores.base import GRID_SIZE, RegionIndices
from .dataset import SlideLatticeDataset
from .store import is_lattice_store


class LatticeRegionStore(FeatureStore):
    """``G x G`` regions tiled from slide lattices, read as a region store.

    Slides without a region of enough tissue are left out. Regions come in slide order,
    each slide's in the dataset's tiling order; ``coords()`` are their top-left corners
    (level-0 px; µm for STAMP) and the masks come from the index maps.

    Example:
        >>> store = LatticeRegionStore('trident_job/')  # doctest: +SKIP
        >>> store.read([0]).shape, store.read_masks([0]).shape
        ((1, 1536, 16, 16), (1, 16, 16))

    Args:
        location: Lattice store folder, or a TRIDENT/CLAM/STAMP folder (read in place).
        grid_size: ``G``. Defaults to 16.
        min_tissue: Fraction of ``G²`` cells a region must hold. Defaults to 0.25.
        anchor: ``'origin'`` (TRIDENT, as ``tools/ingest.py``) or ``'piece'``.
        format: Patch-feature format of a folder read in place; None detects it.
    """

    def __init__(self, location: str, grid_size: int = GRID_SIZE,
                 min_tissue: float = DEFAULT_MIN_TISSUE, anchor: str = 'origin',
                 format: str | None = None) -> None:
        self.dataset = SlideLatticeDataset(location, 'regions', grid_size, min_tissue,
                                           anchor, format=format)
        source = self.dataset.source
        self.location = self.dataset.location
        self.channels = source.channels
        self.dtype = np.dtype(source.dtype)
        self.grid_size = grid_size
        self.has_masks = True
        counts = np.bincount(self.dataset.slide_index, minlength=source.num_slides)
        offsets = np.cumsum(counts) - counts
        self.slides = [SlideRecord(slide_id, int(offsets[s]), int(counts[s]), sha256='')
                       for s, slide_id in enumerate(source.slide_ids) if counts[s]]

    def _samples(self, indices: RegionIndices) -> list[dict]:
        return self.dataset.__getitems__(np.asarray(indices, dtype=np.int64).reshape(-1))

    def read(self, indices: RegionIndices) -> np.ndarray:
        """Regions by global index, ``(len(indices), C, G, G)`` in the source's dtype."""
        samples = self._samples(indices)
        if not samples:
            return np.empty((0, self.channels, self.grid_size, self.grid_size), self.dtype)
        return np.stack([s['inputs'].numpy() for s in samples])

    def read_masks(self, indices: RegionIndices) -> np.ndarray:
        """Tissue masks from the index maps, ``(len(indices), G, G)`` bool."""
        if not self.dataset.has_holes:
            return super().read_masks(indices)
        g = self.grid_size
        samples = self._samples(indices)
        return np.stack([s['masks'].numpy() for s in samples]) if samples else np.empty(
            (0, g, g), bool)

    def _count_missing_cells(self) -> int:
        if not self.dataset.has_holes:
            return 0
        return super()._count_missing_cells()

    def mismatches(self, slide: int) -> list[str]:
        """Nothing to compare: checksums are the lattice's (``LatticeStore.verify``)."""
        return []

    def coords(self) -> np.ndarray:
        """Top-left corner of every region, ``(N, 2)`` int64."""
        return self.dataset.corners(range(self.num_regions)).astype(np.int64).reshape(-1, 2)

    @property
    def provenance(self) -> dict | None:
        """The lattice's provenance (encoder, patch size, magnification, ...)."""
        return self.dataset.source.provenance

    def close(self) -> None:
        """Close the lattice's files (reopened on the next read)."""
        self.dataset.source.close()


def is_slide_lattice(location: str, format: str | None = None) -> bool:
    """Whether ``location`` holds slide lattices: a lattice store or a patch-feature folder.

    ``format`` names the patch-feature format of a folder read in place (then any
    non-Redis location counts); None detects it.
    """
    return not is_redis_uri(location) and (is_lattice_store(location) or format is not None
                                           or detect_patch_format(location) is not None)


def open_regions(location: str, format: str | None = None) -> FeatureStore:
    """A region store, or the regions of a lattice store or patch-feature folder.

    Args:
        location: Region store (folder or ``redis://`` URI), lattice store folder, or
            TRIDENT/CLAM/STAMP folder.
        format: Patch-feature format of a folder read in place; None detects it.
    """
    if is_slide_lattice(location, format):
        return LatticeRegionStore(location, format=format)
    return open_store(location)
