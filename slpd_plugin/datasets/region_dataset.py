"""Dataset of region feature grids over any feature store."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from slpd_plugin.registry import DATASETS

from .slide_samples import SlideSamples
from .stores import FeatureStore, StoreError, open_store

# IEEE-754 bit layouts: a value is NaN/Inf iff all its exponent bits are set.
_EXPONENT_BITS = {np.dtype('float16'): (np.uint16, 0x7FFF, 0x7C00),
                  np.dtype('float32'): (np.uint32, 0x7FFFFFFF, 0x7F800000)}


def finite_rows(grids: np.ndarray) -> np.ndarray:
    """Whether each region ``(b, ...)`` holds only finite values, ``(b,)`` bool.

    Compares exponent bits instead of ``np.isfinite``, which is ~20x slower on float16
    (it would otherwise dominate the loader's time).
    """
    flat = grids.reshape(len(grids), -1)
    layout = _EXPONENT_BITS.get(np.dtype(grids.dtype).newbyteorder('='))
    if layout is None:
        return np.isfinite(flat).all(axis=1)
    uint, magnitude, exponent = layout
    return (flat.view(uint) & magnitude).max(axis=1, initial=0) < exponent


@DATASETS.register_module()
class RegionFeatureDataset(SlideSamples):
    """Every region of every slide of a store, one sample per region.

    A sample is ``dict(inputs=grid, masks=mask, data_samples=dict(index, slide_index,
    region_index))`` with ``grid`` a ``(C, G, G)`` tensor in the store's dtype (float16
    by default: the data preprocessor converts on the training device, which is far
    cheaper than on CPU workers) and ``mask`` the region's ``(G, G)`` bool tissue mask
    (True where a patch is present). ``masks`` is left out when the store has no holes
    (:attr:`has_holes`): the model then takes the unmasked path, exactly as for a store
    without masks. ``index`` is the region's global index, ``slide_index`` its slide's
    position in the store, ``region_index`` its position within the slide.

    Example:
        >>> sample = RegionFeatureDataset('data/uni_store')[0]
        >>> sample['inputs'].shape, sample['masks'].shape  # a store with holes
        (torch.Size([1024, 16, 16]), torch.Size([16, 16]))

    :meth:`__getitems__` fetches a whole batch in one store request (one gather from the
    memmap, one round trip to Redis); torch's DataLoader uses it automatically.

    Args:
        store: Store location: a folder path or a ``redis://`` URI.
        channels: Expected channel count ``C`` (the backbone's ``in_channels``); None
            accepts the store's. Defaults to None.

    Raises:
        StoreError: if the store is missing/incomplete/empty or its ``C`` differs from
            ``channels``; and at read time, for regions with NaN/Inf values.
    """

    def __init__(self, store: str, channels: int | None = None) -> None:
        self.store: FeatureStore = open_store(store)
        self.location = self.store.location
        if self.store.num_regions == 0:
            raise StoreError(f'feature store {self.location} holds no regions')
        if channels is not None and self.store.channels != channels:
            raise StoreError(
                f'feature store {self.location} holds C={self.store.channels} channels, '
                f'but the config expects C={channels} (train_dataloader.dataset.channels); '
                f'set it to {self.store.channels} (or None: tools/train.py then takes the '
                f'width from the store) or use a store of {channels}-d features')
        self.slide_index = self.store.region_slide_index()
        self.region_index = self.store.region_index_in_slide()
        self.has_holes = self.store.has_holes
        self.store.close()  # opened again lazily in each worker process

    def _slides_source(self) -> FeatureStore:
        return self.store

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        indices = np.asarray(indices, dtype=np.int64)
        grids = self.store.read(indices)  # (b, C, G, G)
        finite = finite_rows(grids)
        if not finite.all():
            i = int(indices[np.argmin(finite)])
            slide = self.slide_ids[self.slide_index[i]]
            raise StoreError(f'{self.location}: region {self.region_index[i]} of slide '
                             f'{slide!r} (global index {i}) has NaN/Inf values')
        tensor = torch.from_numpy(np.ascontiguousarray(grids))
        samples = [dict(inputs=tensor[k],
                        data_samples=dict(index=int(i), slide_index=int(self.slide_index[i]),
                                          region_index=int(self.region_index[i])))
                   for k, i in enumerate(indices)]
        if self.has_holes:
            masks = torch.from_numpy(self.store.read_masks(indices))  # (b, G, G) bool
            for sample, mask in zip(samples, masks):
                sample['masks'] = mask
        return samples

    def __repr__(self) -> str:
        return f'RegionFeatureDataset({self.store!r})'

