"""What every dataset of slide samples shares: the slide bookkeeping of its source."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset


class SlideSamples(Dataset, ABC):
    """Samples (regions or windows) that each belong to one slide of a source.

    Subclasses set ``location``, ``slide_index`` ``(N,)`` (the slide of each sample),
    ``region_index`` ``(N,)`` (its position within the slide) and ``has_holes``, name the
    object that holds the slides (:meth:`_slides_source`: a store or a lattice source,
    with ``slide_ids``, ``num_slides`` and ``channels``) and read a batch in
    :meth:`__getitems__`.
    """

    location: str
    slide_index: np.ndarray
    region_index: np.ndarray
    has_holes: bool

    @abstractmethod
    def _slides_source(self) -> Any:
        """The store or lattice source whose slides the samples come from."""

    @abstractmethod
    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """Samples ``dict(inputs, data_samples[, masks])`` of a batch, read at once."""

    @property
    def metainfo(self) -> dict:
        """Location, slide/sample counts, the feature width and whether samples have holes."""
        return dict(store=self.location, num_slides=self.num_slides, num_regions=len(self),
                    channels=self.channels, has_holes=self.has_holes)

    @property
    def slide_ids(self) -> list[str]:
        """The source's slide ids, in storage order."""
        return self._slides_source().slide_ids

    @property
    def num_slides(self) -> int:
        """The number of slides in the source."""
        return self._slides_source().num_slides

    @property
    def channels(self) -> int:
        """The feature width (``C`` of the grids, ``D`` of the patches)."""
        return self._slides_source().channels

    def __len__(self) -> int:
        return len(self.slide_index)

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]
