"""Regions and random windows of slide lattices, as training samples."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmengine.dist import get_rank
from torch.utils.data import get_worker_info

from slpd_plugin.registry import DATASETS

from ..ingest.grid_assembly import DEFAULT_MIN_TISSUE
from ..slide_samples import SlideSamples
from ..stores import StoreError
from ..stores.base import GRID_SIZE
from .in_place import DEFAULT_CACHE_MB, InPlaceSource
from .source import LatticeSource
from .store import LatticeStore, is_lattice_store
from .windows import ANCHORS, random_windows, tile_regions

MODES = ('regions', 'windows')


def open_lattice(store: str, fmt: str | None = None,
                 cache_mb: float = DEFAULT_CACHE_MB) -> LatticeSource:
    """A converted lattice store, or a TRIDENT/CLAM/STAMP folder read in place."""
    return LatticeStore(store) if is_lattice_store(store) else InPlaceSource(
        store, fmt=fmt, cache_mb=cache_mb)


@DATASETS.register_module()
class SlideLatticeDataset(SlideSamples):
    """``G x G`` regions or random windows cut from slide lattices, one sample each.

    A sample is what :class:`~slpd_plugin.datasets.RegionFeatureDataset` gives:
    ``dict(inputs=(C, G, G) tensor, masks=(G, G) bool, data_samples=dict(index,
    slide_index, region_index))``, masks from the index map (left out when no region
    misses a patch). The source is a lattice store folder or a patch-feature folder read
    in place (:func:`open_lattice`).

    - ``mode='regions'``: every region of every slide whose tissue fraction is at least
      ``min_tissue``, tiling each piece from the slide origin (``anchor='origin'``, as
      ``tools/ingest.py --format`` does) or from the piece's corner (``'piece'``).
    - ``mode='windows'``: per slide, ``windows_per_slide`` windows (default: as many as
      its regions) drawn anywhere, each with tissue fraction at least ``min_tissue`` in
      at most ``max_tries`` draws; new windows every epoch (seeded from torch's
      per-worker seeds, so reproducible under a fixed ``randomness.seed``).

    Example:
        >>> ds = SlideLatticeDataset('data/brca_lattice', grid_size=16)  # doctest: +SKIP
        >>> ds[0]['inputs'].shape, ds[0]['masks'].shape
        (torch.Size([1536, 16, 16]), torch.Size([16, 16]))

    Args:
        store: Lattice store folder, or a TRIDENT/CLAM/STAMP folder (read in place).
        mode: ``'regions'`` or ``'windows'``. Defaults to 'regions'.
        grid_size: ``G``. Defaults to 16.
        min_tissue: Fraction of ``G²`` cells that must hold a patch. Defaults to 0.25.
        anchor: Region tiling anchor, ``'origin'`` or ``'piece'``. Defaults to 'origin'.
        windows_per_slide: Windows per slide and epoch (``mode='windows'``).
        max_tries: Draws per window before the densest one seen is taken. Defaults to 16.
        format: Patch-feature format of a folder read in place; None detects it.
        cache_mb: Per-worker cache of a folder read in place, MB. Defaults to 2048.
        channels: Expected ``C``; None accepts the source's.

    Raises:
        StoreError: for a bad source, a ``C`` that differs from ``channels``, or no
            region/window at all.
    """

    def __init__(self, store: str, mode: str = 'regions', grid_size: int = GRID_SIZE,
                 min_tissue: float = DEFAULT_MIN_TISSUE, anchor: str = 'origin',
                 windows_per_slide: int | None = None, max_tries: int = 16,
                 format: str | None = None, cache_mb: float = DEFAULT_CACHE_MB,
                 channels: int | None = None) -> None:
        if mode not in MODES or anchor not in ANCHORS:
            raise StoreError(f'SlideLatticeDataset: mode must be one of {MODES} and anchor '
                             f'one of {ANCHORS}, got {mode!r}, {anchor!r}')
        self.source = open_lattice(store, format, cache_mb)
        self.location = self.source.location
        self.mode, self.grid_size, self.min_tissue = mode, grid_size, min_tissue
        self.max_tries = max_tries
        if channels is not None and self.source.channels != channels:
            raise StoreError(f'{self.location} holds C={self.source.channels} channels, but '
                             f'the config expects C={channels}')
        entries, full = [], True  # (slide, piece, row, col)
        for s, rec in enumerate(self.source.slides):
            regions = []
            for k, piece in enumerate(rec.pieces):
                pos, counts = tile_regions(self.source.index_map(s, k), piece.origin,
                                           grid_size, min_tissue, anchor)
                full &= bool((counts == grid_size ** 2).all())
                regions += [(s, k, int(r), int(c)) for r, c in pos]
            if mode == 'windows':  # pieces drawn by their share of the slide's patches
                weights = np.array([p.patches for p in rec.pieces], dtype=np.float64)
                pieces = np.random.default_rng(s).choice(
                    len(rec.pieces), windows_per_slide or len(regions), p=weights / weights.sum())
                regions = [(s, int(k), -1, -1) for k in np.sort(pieces)]
            entries += regions
        if not entries:
            raise StoreError(f'{self.location}: no {grid_size}x{grid_size} region has tissue '
                             f'fraction >= {min_tissue:g}')
        table = np.array(entries, dtype=np.int64)
        self._piece, self._pos = table[:, 1], table[:, 2:]
        self.slide_index = table[:, 0]
        starts = np.searchsorted(self.slide_index, self.slide_index)
        self.region_index = np.arange(len(table)) - starts
        self.has_holes = mode == 'windows' or not full
        self._rng: tuple[tuple[int, ...], np.random.Generator] | None = None
        self.source.close()

    @property
    def metainfo(self) -> dict:
        """Location, slide/sample counts, ``D``, holes and sampling mode."""
        return dict(super().metainfo, mode=self.mode)

    def _slides_source(self) -> LatticeSource:
        return self.source

    def corners(self, indices: Sequence[int]) -> np.ndarray:
        """Top-left corners ``(n, 2)`` of samples in regions mode (level-0 px; µm for STAMP)."""
        out = []
        for i in indices:
            rec = self.source.slides[self.slide_index[i]]
            row, col = self._pos[i]
            out.append(rec.pieces[self._piece[i]].corner(row, col, rec.stride))
        return np.array(out)

    def _generator(self) -> np.random.Generator:
        """This process's window generator, made once per worker (or main process).

        Seeded from torch's seed of the process, the rank and, in a loader worker, the
        worker's base seed, which the loader draws afresh from the main process's
        generator whenever it starts workers: ranks draw different windows, and workers
        that are not persistent new ones every epoch, the same ones under the same
        ``randomness.seed``.
        """
        worker = get_worker_info()
        seed = (torch.initial_seed(), 0 if worker is None else worker.seed, get_rank())
        if self._rng is None or self._rng[0] != seed:
            self._rng = (seed, np.random.default_rng([s % 2 ** 63 for s in seed]))
        return self._rng[1]

    def _positions(self, slide: int, piece: int, indices: np.ndarray) -> np.ndarray:
        if self.mode == 'regions':
            return self._pos[indices]
        return random_windows(self._generator(), self.source.index_map(slide, piece),
                              self.grid_size, len(indices), self.min_tissue, self.max_tries)

    def _by_piece(self, indices: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """The batch ordered by slide piece, and each piece's ``(slide, piece, lo, hi)``.

        ``order[lo:hi]`` are the positions in ``indices`` of that piece's samples.
        """
        keys = self.slide_index[indices] * (1 << 20) + self._piece[indices]
        order = np.argsort(keys, kind='stable')  # one slice of the batch per piece
        groups, starts = np.unique(keys[order], return_index=True)
        ends = np.append(starts[1:], len(indices))
        return order, [(*divmod(int(key), 1 << 20), int(lo), int(hi))
                       for key, lo, hi in zip(groups, starts, ends)]

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        batch = np.asarray(indices, dtype=np.int64)
        g = self.grid_size
        order, groups = self._by_piece(batch)
        feats = np.empty((len(batch), g, g, self.channels), dtype=self.source.dtype)
        masks = np.empty((len(batch), g, g), dtype=bool)
        for slide, piece, lo, hi in groups:
            pos = self._positions(slide, piece, batch[order[lo:hi]])
            _, masks[lo:hi] = self.source.gather_cells_last(slide, piece, pos[:, 0],
                                                            pos[:, 1], g, out=feats[lo:hi])
        # HIPT's (b, C, G, G): numpy's transposing copy is ~4x faster than the collate's
        # stack of permuted views, and leaves the stack a plain copy
        tensor = torch.from_numpy(np.ascontiguousarray(feats.transpose(0, 3, 1, 2)))
        mask_tensor = torch.from_numpy(masks)
        samples: list[dict] = [{}] * len(batch)
        for k, at in enumerate(order):
            i = batch[at]
            sample = dict(inputs=tensor[k], data_samples=dict(
                index=int(i), slide_index=int(self.slide_index[i]),
                region_index=int(self.region_index[i])))
            if self.has_holes:
                sample['masks'] = mask_tensor[k]
            samples[at] = sample
        return samples

    def __repr__(self) -> str:
        return f'SlideLatticeDataset({self.source!r}, mode={self.mode!r}, G={self.grid_size})'
