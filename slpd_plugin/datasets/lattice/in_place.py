"""Read a TRIDENT / CLAM / STAMP folder in place, as slide lattices, without a copy.

On opening, every file's coordinates are read and checked as a conversion would
(:func:`~.convert.place_slide`): stride, geometry, one D and one extraction setting.
Features are read on first use, whole slide at a time in file order (the chunked,
checked read of :func:`~.convert.read_chunks`); they and the index maps (rebuilt from
the coordinates when evicted) live in a least-recently-used cache bounded in MB. Each
DataLoader worker holds its own cache (the cache is dropped when the source is
pickled), so the bound is per worker.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..ingest.patch_format import resolve_patch_format
from ..ingest.patch_ingest import PatchOptions
from ..ingest.patch_sources import find_patch_sources
from .convert import CHUNK_BYTES, open_patch_file, place_slide, read_chunks
from .layout import LatticeRecord, Piece, build_maps
from .source import LatticeSource

DEFAULT_CACHE_MB = 2048


class InPlaceSource(LatticeSource):
    """Slides of a patch-feature folder read in place (see the module docstring).

    Args:
        src: A TRIDENT job folder (or its ``features_<encoder>/``), a CLAM folder, a
            STAMP folder, one ``.h5`` file or a ``.txt``/``.csv`` list of them.
        fmt: ``'trident'``, ``'clam'`` or ``'stamp'``; None detects it.
        cache_mb: Features and index maps kept per worker, in MB. Defaults to 2048.
        options: Stride hints and shifted-lattice handling (its format is replaced by
            the detected one).

    Example:
        >>> src = InPlaceSource('trident_job/', cache_mb=512)    # doctest: +SKIP
        >>> src.slide_ids[:2], src.channels
        (['TCGA-A1', 'TCGA-A2'], 1536)
    """

    def __init__(self, src: str, fmt: str | None = None, cache_mb: float = DEFAULT_CACHE_MB,
                 options: PatchOptions | None = None) -> None:
        fmt = resolve_patch_format(src, fmt)
        self.options = PatchOptions(fmt) if options is None else options
        self.options.fmt = fmt
        self.location = str(src)
        self.cache_bytes = int(cache_mb * 2 ** 20)
        self.sources = sorted(find_patch_sources(src, fmt), key=lambda s: s.slide_id)
        self.channels, self.provenance = None, None
        self.records = self.slides = []
        self._cache: OrderedDict[tuple[str, int], list[np.ndarray]] = OrderedDict()
        self._cached = 0
        for s, source in enumerate(self.sources):
            with open_patch_file(source) as f:
                slide, pieces = place_slide(f, source, self.options, self)
                self.channels = slide.dim
                self.dtype = np.dtype(slide.features.dtype)
            maps, _ = build_maps(pieces)
            self.slides.append(LatticeRecord(
                source.slide_id, 0, len(slide.coords), float(slide.stride),
                tuple(Piece(tuple(lat.phase), origin, index.shape, 0, len(rows))
                      for (rows, lat), (origin, index) in zip(pieces, maps)),
                '', '', dict(file=source.path)))
            self._keep(('maps', s), [index for _, index in maps])

    def _keep(self, key: tuple[str, int], arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Cache ``arrays`` under ``key``, evicting the least recently used first."""
        size = sum(a.nbytes for a in arrays)
        while self._cache and self._cached + size > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached -= sum(a.nbytes for a in old)
        self._cache[key] = arrays
        self._cached += size
        return arrays

    def _cached_or_none(self, key: tuple[str, int]) -> list[np.ndarray] | None:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return None

    def _read(self, slide: int, with_features: bool) -> list[np.ndarray]:
        """The slide's index maps, or its features, read (and cached)."""
        source = self.sources[slide]
        with open_patch_file(source) as f:
            data, pieces = place_slide(f, source, self.options, self)
            if not with_features:
                return self._keep(('maps', slide),
                                  [index for _, index in build_maps(pieces)[0]])
            feats = np.empty(data.features.shape, dtype=self.dtype)
            lo = 0
            for chunk in read_chunks(data.features, data.coords, self.dtype, source.path,
                                     CHUNK_BYTES):
                feats[lo:lo + len(chunk)] = chunk
                lo += len(chunk)
        return self._keep(('features', slide), [feats])

    def features(self, slide: int) -> np.ndarray:
        """The slide's patch features ``(N, D)``, read from its file or this worker's cache."""
        found = self._cached_or_none(('features', slide))
        return (found or self._read(slide, True))[0]

    def index_map(self, slide: int, piece: int) -> np.ndarray:
        """The ``(H, W)`` index map of one piece, built from the file or cached."""
        found = self._cached_or_none(('maps', slide))
        return (found or self._read(slide, False))[piece]

    @property
    def cached_bytes(self) -> int:
        """Bytes held by this worker's cache now."""
        return self._cached

    def close(self) -> None:
        """Empty this worker's cache."""
        self._cache.clear()
        self._cached = 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_cache'], state['_cached'] = OrderedDict(), 0
        return state
