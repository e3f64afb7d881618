"""Multi-crop of whole slides: global and local windows drawn anywhere in a slide's lattice.

The views of one sample are independent windows of the same slide piece (the piece
drawn by its share of the slide's patches), as MOOZY's and TITAN's slide-encoder
pretraining crop a whole slide's patch grid rather than a fixed region. Each view gets its
own random flips and 90-degree rotation, applied to the features and the tissue mask alike.

Letters: ``C`` channels, ``S`` global view side, ``s`` local view side, ``V`` views.
"""
from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np
import torch

from slpd_plugin.registry import DATASETS

from ..ingest.grid_assembly import DEFAULT_MIN_TISSUE
from ..stores import StoreError
from .dataset import SlideLatticeDataset
from .in_place import DEFAULT_CACHE_MB
from .windows import random_windows

#: MOOZY's stage-1 crops, in lattice cells: 2 global 20x20 and 4 local 12x12 windows.
GLOBAL_SIZE, LOCAL_SIZE = 20, 12


def random_dihedral(rng: np.random.Generator, n: int, hflip_prob: float, vflip_prob: float,
                    rot90: bool) -> np.ndarray:
    """Per window ``(n, 3)`` int: horizontal flip (0/1), vertical flip (0/1), quarter turns."""
    hflip = rng.random(n) < hflip_prob
    vflip = rng.random(n) < vflip_prob
    turns = rng.integers(0, 4, n) if rot90 else np.zeros(n, dtype=np.int64)
    return np.stack([hflip, vflip, turns], axis=1).astype(np.int64)


def apply_dihedral(x: np.ndarray, hflip: int, vflip: int, turns: int) -> np.ndarray:
    """Flip (left-right, then up-down), then rotate counter-clockwise, the first two axes."""
    if hflip:
        x = x[:, ::-1]
    if vflip:
        x = x[::-1]
    return np.rot90(x, turns, axes=(0, 1))


@DATASETS.register_module()
class SlideWindowViewsDataset(SlideLatticeDataset):
    """Global and local windows drawn anywhere in a slide lattice, with flips and rotations.

    A sample is one slide piece (``samples_per_slide`` per slide, pieces drawn by their
    share of the slide's patches) and ``num_global`` windows of ``global_size`` then
    ``num_local`` windows of ``local_size`` cells, each drawn anywhere in the piece's
    index map with tissue fraction at least ``min_tissue`` (at most ``max_tries`` draws,
    else the densest seen; :func:`~.windows.random_windows`), then flipped left-right
    with ``hflip_prob``, up-down with ``vflip_prob`` and, with ``rot90``, turned by a
    random multiple of 90 degrees, the mask with the features. New windows every call,
    drawn by the generator windows mode uses (seeded by process, rank and loader worker:
    reproducible under a fixed ``randomness.seed``, new every epoch)::

        dict(inputs=[(C, S, S)] * num_global + [(C, s, s)] * num_local,
             masks=[(S, S)] * num_global + [(s, s)] * num_local,   # bool, True = patch
             data_samples=dict(index, slide_index, region_index))

    :class:`~slpd_plugin.models.WindowViewsPreprocessor` batches them into the lists of
    views and masks SLPD's loss takes. :attr:`prototype_dataset` is the fixed set of
    windows the prototype refresh embeds: the ``global_size`` tiling of every slide
    (:class:`SlideLatticeDataset` in regions mode, same ``min_tissue`` and ``anchor``).

    Example:
        >>> ds = SlideWindowViewsDataset('data/brca_lattice')  # doctest: +SKIP
        >>> [v.shape[-1] for v in ds[0]['inputs']]
        [20, 20, 12, 12, 12, 12]

    Args:
        store: Lattice store folder, or a TRIDENT/CLAM/STAMP folder (read in place).
        num_global: Global views per sample. Defaults to 2.
        global_size: Global window side ``S``, cells. Defaults to 20.
        num_local: Local views per sample. Defaults to 4.
        local_size: Local window side ``s``, cells. Defaults to 12.
        min_tissue: Wanted fraction of present cells in every view (and in the tiles of
            :attr:`prototype_dataset`). Defaults to 0.25.
        max_tries: Draws per view before the densest one seen is taken. Defaults to 16.
        hflip_prob: Probability of a left-right flip per view. Defaults to 0.5.
        vflip_prob: Probability of an up-down flip per view. Defaults to 0.5.
        rot90: Turn each view by a random multiple of 90 degrees. Defaults to True.
        samples_per_slide: Samples per slide and epoch; None: as many as the slide has
            ``global_size`` tiles. Defaults to None.
        anchor: Tiling anchor of :attr:`prototype_dataset` (and of the default sample
            count), ``'origin'`` or ``'piece'``. Defaults to 'origin'.
        format: Patch-feature format of a folder read in place; None detects it.
        cache_mb: Per-worker cache of a folder read in place, MB. Defaults to 2048.
        channels: Expected ``C``; None accepts the source's.

    Raises:
        StoreError: for a bad source or ``C``, views that cannot be made (fewer than two,
            no global one, a side < 1 or a probability outside [0, 1]), or no tile at all.
    """

    def __init__(self, store: str, num_global: int = 2, global_size: int = GLOBAL_SIZE,
                 num_local: int = 4, local_size: int = LOCAL_SIZE,
                 min_tissue: float = DEFAULT_MIN_TISSUE, max_tries: int = 16,
                 hflip_prob: float = 0.5, vflip_prob: float = 0.5, rot90: bool = True,
                 samples_per_slide: int | None = None, anchor: str = 'origin',
                 format: str | None = None, cache_mb: float = DEFAULT_CACHE_MB,
                 channels: int | None = None) -> None:
        if num_global < 1 or num_global + num_local < 2 or num_local < 0 \
                or min(global_size, local_size) < 1 \
                or not (0 <= hflip_prob <= 1 and 0 <= vflip_prob <= 1):
            raise StoreError(
                f'SlideWindowViewsDataset({store}): need num_global >= 1, num_local >= 0, '
                f'two views in all, sides >= 1 and flip probabilities in [0, 1], got '
                f'num_global={num_global}, num_local={num_local}, global_size={global_size}, '
                f'local_size={local_size}, hflip_prob={hflip_prob}, vflip_prob={vflip_prob}')
        super().__init__(store, mode='windows', grid_size=global_size, min_tissue=min_tissue,
                         anchor=anchor, windows_per_slide=samples_per_slide,
                         max_tries=max_tries, format=format, cache_mb=cache_mb,
                         channels=channels)
        self.store, self.anchor, self.format, self.cache_mb = store, anchor, format, cache_mb
        self.sizes = (global_size, local_size)
        self.counts = (num_global, num_local)
        self.hflip_prob, self.vflip_prob, self.rot90 = hflip_prob, vflip_prob, rot90

    @property
    def metainfo(self) -> dict:
        """:class:`SlideLatticeDataset`'s, plus the views' counts and sides."""
        return dict(super().metainfo, num_global=self.counts[0], global_size=self.sizes[0],
                    num_local=self.counts[1], local_size=self.sizes[1])

    @cached_property
    def prototype_dataset(self) -> SlideLatticeDataset:
        """The windows that define the prototypes: every slide's ``global_size`` tiling.

        Fixed at construction (no randomness), so every refresh, rank and process embeds
        the same windows; its sample indices are what the bank's assignments refer to.
        """
        return SlideLatticeDataset(self.store, mode='regions', grid_size=self.sizes[0],
                                   min_tissue=self.min_tissue, anchor=self.anchor,
                                   format=self.format, cache_mb=self.cache_mb,
                                   channels=self.channels)

    def _views(self, rng: np.random.Generator, slide: int, piece: int, n: int
               ) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
        """``n`` samples' views of one piece: per sample (features, masks), global first."""
        index = self.source.index_map(slide, piece)
        out: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = [([], []) for _ in range(n)]
        for size, count in zip(self.sizes, self.counts):
            if count == 0:
                continue
            pos = random_windows(rng, index, size, n * count, self.min_tissue, self.max_tries)
            feats, present = self.source.gather_cells_last(slide, piece, pos[:, 0], pos[:, 1],
                                                           size)  # (n*count, s, s, C), (.., s, s)
            flips = random_dihedral(rng, n * count, self.hflip_prob, self.vflip_prob,
                                    self.rot90)
            for w in range(n * count):  # sample-major: sample w // count, its view w % count
                f = apply_dihedral(feats[w], *flips[w]).transpose(2, 0, 1)  # (C, s, s)
                m = apply_dihedral(present[w], *flips[w])
                out[w // count][0].append(torch.from_numpy(np.ascontiguousarray(f)))
                out[w // count][1].append(torch.from_numpy(np.ascontiguousarray(m)))
        return out

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        batch = np.asarray(indices, dtype=np.int64)
        rng = self._generator()
        order, groups = self._by_piece(batch)  # one draw per piece of the batch
        samples: list[dict] = [{}] * len(batch)
        for slide, piece, lo, hi in groups:
            views = self._views(rng, slide, piece, hi - lo)
            for at, (feats, masks) in zip(order[lo:hi], views):
                i = batch[at]
                samples[at] = dict(inputs=feats, masks=masks, data_samples=dict(
                    index=int(i), slide_index=int(self.slide_index[i]),
                    region_index=int(self.region_index[i])))
        return samples

    def __repr__(self) -> str:
        return (f'SlideWindowViewsDataset({self.source!r}, {self.counts[0]}x{self.sizes[0]} '
                f'global + {self.counts[1]}x{self.sizes[1]} local)')
