"""The demo's dataset: a synthetic region store, generated on first use."""
from __future__ import annotations

from slpd_plugin.datasets import RegionFeatureDataset
from slpd_plugin.registry import DATASETS

from .synthetic import ensure_synthetic_store


@DATASETS.register_module()
class SyntheticRegionDataset(RegionFeatureDataset):
    """A :class:`~slpd_plugin.datasets.RegionFeatureDataset` over a generated synthetic store.

    The store is generated at ``store`` the first time it is needed.

    Generation happens once (safely when several DDP processes start together, see
    :func:`~slpd_plugin.demo.synthetic.ensure_synthetic_store`); later runs reuse the
    store if it was made with the same settings and refuse one made with others.
    Samples are those of :class:`RegionFeatureDataset`: ``(C, 16, 16)`` grids.

    Example::

        dataset = dict(type='SyntheticRegionDataset', store='data/demo_store',
                       generate=dict(num_slides=40, channels=384, seed=0))

    Args:
        store: Folder of the synthetic memmap store.
        generate: Keyword arguments of :func:`~slpd_plugin.demo.synthetic.make_synthetic_store`
            for generating the store if it does not exist; None reads ``store`` as it is
            (any store, e.g. one given on the command line).
        channels: Expected channel count ``C``; None accepts the store's.
            Defaults to None.
    """

    def __init__(self, store: str, generate: dict | None,
                 channels: int | None = None) -> None:
        if generate is not None:
            ensure_synthetic_store(store, **generate)
        super().__init__(store, channels=channels)
