"""Teacher embeddings of chosen regions of a store, in the space of the bank's prototypes.

They are made by the prototype refresh's own pass
(:func:`~slpd_plugin.checkpoints.embed.embed_grids`: centre crop, eval mode).

Letters: ``n`` regions embedded, ``D`` embedding dim.
"""
from __future__ import annotations

import numpy as np
import torch

from slpd_plugin.checkpoints.embed import embed_grids
from slpd_plugin.datasets.stores import FeatureStore
from slpd_plugin.prototypes.settings import REFRESH_CROP


def embed_regions(model: torch.nn.Module, store: FeatureStore, indices: np.ndarray,
                  output: str = 'z', crop: int = REFRESH_CROP,
                  batch_size: int = 64) -> np.ndarray:
    """Embed regions of a store with a model's teacher.

    Args:
        model: An :class:`~slpd_plugin.models.SLPD` model (see
            :func:`~slpd_plugin.checkpoints.reading.build_model`).
        store: The store holding the regions.
        indices: Global region indices, shape (n,).
        output: ``'z'`` (normalised head bottleneck, the default prototype space) or
            ``'cls'`` (backbone output). Defaults to 'z'.
        crop: Side of the centre crop embedded. Defaults to
            :data:`~slpd_plugin.prototypes.settings.REFRESH_CROP` (14).
        batch_size: Regions per forward pass. Defaults to 64.

    Returns:
        np.ndarray: Float32 embeddings, shape (n, D).
    """
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(indices), batch_size):
        block = indices[start:start + batch_size]
        grids = torch.from_numpy(np.asarray(store.read(block)))
        masks = torch.from_numpy(store.read_masks(block)).to(device) if store.has_holes else None
        chunks.append(embed_grids(model, grids.to(device), crop, output, masks=masks).cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
