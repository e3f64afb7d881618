"""The teacher's embedding pass.

The one function that embeds region grids with a frozen encoder on the centre crop.

The prototype refresh (:class:`~slpd_plugin.engine.hooks.PrototypeHook`), embedding
extraction (:mod:`slpd_plugin.checkpoints.extract`), the projections of
:mod:`slpd_plugin.visualization` and the benchmarks all call :func:`embed_grids` inside
their own loops, so an embedding drawn or exported is the one the bank was built from.

Letters: ``B`` batch, ``C`` channels, ``G`` grid side, ``D`` embedding size.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from slpd_plugin.models.data_preprocessors import center_crop
from slpd_plugin.prototypes.settings import REFRESH_CROP


@torch.no_grad()
def embed_grids(model: nn.Module, grids: Tensor, crop: int | None = REFRESH_CROP,
                output: str = 'z', encoder: str = 'teacher',
                masks: Tensor | None = None) -> Tensor:
    """Embed a batch of region grids with one encoder of an SLPD model, in eval mode.

    The encoder is put in eval mode for the pass and restored to its previous mode after.

    Args:
        model: An :class:`~slpd_plugin.models.SLPD` (unwrapped), on the grids' device.
        grids: Region grids ``(B, C, G, G)``, any float dtype.
        crop: Side of the centre crop embedded, None for the full grid. Defaults to
            :data:`~slpd_plugin.prototypes.settings.REFRESH_CROP` (14).
        output: ``'z'`` (normalised head bottleneck, the prototype space) or ``'cls'``
            (backbone output). Defaults to 'z'.
        encoder: ``'teacher'`` or ``'student'``. Defaults to 'teacher'.
        masks: Tissue masks ``(B, G, G)`` bool (True = patch present), centre-cropped
            with the grids and passed to a backbone that accepts masks; None (default)
            = every cell present. Callers pass them when the store has holes
            (:attr:`FeatureStore.has_holes`), as the training dataset does.

    Returns:
        float32 embeddings ``(B, D)`` on the grids' device.

    Example:
        >>> z = embed_grids(model, batch['inputs'].to(device))  # (B, Z)
    """
    if encoder not in ('teacher', 'student'):
        raise ValueError(f"encoder must be 'teacher' or 'student', got {encoder!r}")
    net = getattr(model, encoder)
    was_training = net.training
    net.eval()
    try:
        grids = grids.float()  # (B, C, G, G); stored as float16
        if crop is not None:
            grids = center_crop(grids, crop)  # (B, C, crop, crop)
            masks = None if masks is None else center_crop(masks, crop)  # (B, crop, crop)
        return model.embed(grids, encoder=encoder, output=output, masks=masks).float()
    finally:
        net.train(was_training)
