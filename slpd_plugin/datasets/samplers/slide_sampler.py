"""The slide-aware sampler (registered as ``SlideAwareSampler``); see :mod:`.slide_batching`.

Use it with a DataLoader whose ``batch_size`` is ``slides_per_batch * regions_per_slide``
(checked by :func:`check_slide_batch_size`)::

    slides_per_batch, regions_per_slide = 4, 32
    train_dataloader = dict(
        batch_size=slides_per_batch * regions_per_slide,
        num_workers=2,
        persistent_workers=True,
        sampler=dict(type='SlideAwareSampler', slides_per_batch=slides_per_batch,
                     regions_per_slide=regions_per_slide),
        dataset=dict(type='RegionFeatureDataset', store='data/brca_store'))
"""
from __future__ import annotations

from typing import Iterator, Sized

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from slpd_plugin.registry import DATA_SAMPLERS

from .slide_batching import shuffled_regions, slide_batches, steps_per_epoch

MODES = ('slides', 'regions')


@DATA_SAMPLERS.register_module()
class SlideAwareSampler(Sampler[int]):
    """Yield region indices so that each batch holds ``M`` slides x ``B`` regions.

    Modelled on mmengine's ``DefaultSampler``: works with and without DDP
    (``get_dist_info``), one seed shared by all ranks (``sync_random_seed``), a
    deterministic order per ``(seed, epoch)``, and :meth:`set_epoch` (called by
    ``DistSamplerSeedHook``). In ``'slides'`` mode each rank reads a disjoint set of
    whole slides and every rank yields the same number of batches; in ``'regions'``
    mode it is a plain shuffle of all regions.

    Args:
        dataset: A dataset with a ``slide_index`` attribute: ``(N,)`` slide of every
            region (e.g. :class:`RegionFeatureDataset`).
        slides_per_batch: ``M``, slides per batch. Defaults to 4.
        regions_per_slide: ``B``, regions per slide and batch. Defaults to 32.
        mode: ``'slides'`` or ``'regions'``. Defaults to 'slides'.
        seed: Shuffle seed, identical on all ranks; None draws one and shares it.
            Defaults to None.

    Attributes:
        batch_size: ``M * B`` in ``'slides'`` mode (the DataLoader's ``batch_size``
            must equal it), None in ``'regions'`` mode.
    """

    def __init__(self, dataset: Sized, slides_per_batch: int = 4, regions_per_slide: int = 32,
                 mode: str = 'slides', seed: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if slides_per_batch < 1 or regions_per_slide < 1:
            raise ValueError(f'slides_per_batch and regions_per_slide must be >= 1, got '
                             f'{slides_per_batch} and {regions_per_slide}')
        slide_index = getattr(dataset, 'slide_index', None)
        if slide_index is None or len(slide_index) != len(dataset):
            raise TypeError(f'{type(dataset).__name__} has no slide_index of length '
                            f'len(dataset); SlideAwareSampler needs the slide of every '
                            f'region (e.g. RegionFeatureDataset)')
        self.rank, self.world_size = get_dist_info()
        self.slide_index = np.asarray(slide_index, dtype=np.int64)
        self.slides_per_batch = slides_per_batch
        self.regions_per_slide = regions_per_slide
        self.mode = mode
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        if mode == 'slides':
            self.batch_size: int | None = slides_per_batch * regions_per_slide
            num_slides = len(np.unique(self.slide_index))
            if num_slides < self.world_size:
                raise ValueError(f'{num_slides} slide(s) cannot be sharded over '
                                 f"{self.world_size} ranks; use mode='regions'")
            self.num_samples = self.batch_size * steps_per_epoch(
                self.slide_index, slides_per_batch, regions_per_slide, self.world_size)
        else:
            self.batch_size = None
            self.num_samples = -(-len(self.slide_index) // self.world_size)

    def __iter__(self) -> Iterator[int]:
        if self.mode == 'slides':
            indices = slide_batches(self.slide_index, self.slides_per_batch,
                                    self.regions_per_slide, self.rank, self.world_size,
                                    self.seed, self.epoch)
        else:
            indices = shuffled_regions(len(self.slide_index), self.rank, self.world_size,
                                       self.seed, self.epoch)
        return iter(indices.tolist())

    def __len__(self) -> int:
        """The number of indices this rank yields per epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch ``epoch`` on the next iteration."""
        self.epoch = epoch


def check_slide_batch_size(dataloader_cfg: dict) -> None:
    """Check that a dataloader config's ``batch_size`` matches its slide-aware sampler.

    A ``SlideAwareSampler`` in ``'slides'`` mode yields whole ``M x B`` batches only if
    the DataLoader cuts them at ``batch_size = M * B``; any other value silently mixes
    slides across batches. Call this on ``cfg.train_dataloader`` before building the
    runner; other samplers pass.

    Args:
        dataloader_cfg: A dataloader config dict (``batch_size``, ``sampler``, ...).

    Raises:
        ValueError: naming both values if they differ.
    """
    sampler = dict(dataloader_cfg.get('sampler') or {})
    if sampler.get('type') not in ('SlideAwareSampler', SlideAwareSampler,
                                   'slpd_plugin.SlideAwareSampler'):
        return
    if sampler.get('mode', 'slides') != 'slides':
        return
    m = sampler.get('slides_per_batch', 4)
    b = sampler.get('regions_per_slide', 32)
    if dataloader_cfg.get('batch_size') != m * b:
        raise ValueError(f'train_dataloader.batch_size is {dataloader_cfg.get("batch_size")}, '
                         f'but its SlideAwareSampler makes batches of slides_per_batch * '
                         f'regions_per_slide = {m} * {b} = {m * b}; set batch_size={m * b}')
