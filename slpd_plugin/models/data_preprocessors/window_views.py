"""Batches of window views (cut in the dataset's workers) moved to the training device.

Letters: ``B`` batch, ``C`` channels, ``s`` a view's side, ``V`` views.
"""
from __future__ import annotations

from typing import Any

from mmengine.model import BaseDataPreprocessor

from slpd_plugin.registry import MODELS


@MODELS.register_module()
class WindowViewsPreprocessor(BaseDataPreprocessor):
    """Move a batch of window views to the device as float32, with their masks.

    The views come ready from
    :class:`~slpd_plugin.datasets.lattice.SlideWindowViewsDataset` (drawn anywhere in the
    slide, flipped and rotated there), collated view by view by ``default_collate``:
    ``inputs`` a list of ``V`` batches ``(B, C, s, s)`` (global views first) and
    ``masks`` a list of ``V`` batches ``(B, s, s)`` bool. In training they are returned as
    these lists, what :meth:`SLPD.loss` takes; otherwise only global view 0 and its mask
    (``(B, C, S, S)``, ``(B, S, S)``), what ``mode='tensor'`` takes.

    Example:
        >>> pre = WindowViewsPreprocessor()
        >>> out = pre(next(iter(loader)), training=True)  # doctest: +SKIP
        >>> [v.shape[-1] for v in out['inputs']]
        [20, 20, 12, 12, 12, 12]

    Args:
        non_blocking: Copy batches to the device asynchronously (from the loader's
            pinned memory). Defaults to True.
    """

    def __init__(self, non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)

    def forward(self, data: dict, training: bool = False) -> dict:
        """The batch on the device: ``inputs``, ``masks`` (lists in training), ``data_samples``."""
        inputs, masks = data.get('inputs'), data.get('masks')
        if not isinstance(inputs, (list, tuple)) or not isinstance(masks, (list, tuple)) \
                or len(inputs) != len(masks):
            raise TypeError('WindowViewsPreprocessor takes batches of window views (a list of '
                            '(B, C, s, s) and one of (B, s, s) masks, as '
                            'SlideWindowViewsDataset gives), got inputs '
                            f'{type(inputs).__name__}, masks {type(masks).__name__}')
        data = self.cast_data(data)
        views = [v.float() for v in data['inputs']]  # stored as float16: convert here
        out: dict[str, Any] = (dict(inputs=views, masks=list(data['masks'])) if training
                               else dict(inputs=views[0], masks=data['masks'][0]))
        out['data_samples'] = data.get('data_samples')
        return out
