"""Teacher embeddings of chosen regions of a store, the way the prototype refresh makes
them (centre crop, eval mode), so that they live in the space of the bank's prototypes.

Letters: ``n`` regions embedded, ``C`` channels, ``D`` embedding dim.
"""
from __future__ import annotations

import numpy as np
import torch

from slpd_plugin.datasets.stores import FeatureStore
from slpd_plugin.models.data_preprocessors import center_crop


@torch.no_grad()
def embed_regions(model: torch.nn.Module, store: FeatureStore, indices: np.ndarray,
                  output: str = 'z', crop: int = 14, batch_size: int = 64) -> np.ndarray:
    """Embed regions of a store with a model's teacher.

    Args:
        model: An :class:`~slpd_plugin.models.SLPD` model (see ``build_model``).
        store: The store holding the regions.
        indices: Global region indices, shape (n,).
        output: ``'z'`` (normalised head bottleneck, the default prototype space) or
            ``'cls'`` (backbone output). Defaults to 'z'.
        crop: Side of the centre crop embedded. Defaults to 14.
        batch_size: Regions per forward pass. Defaults to 64.

    Returns:
        np.ndarray: Float32 embeddings, shape (n, D).
    """
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(indices), batch_size):
        grids = torch.from_numpy(np.asarray(store.read(indices[start:start + batch_size])))
        grids = center_crop(grids.to(device).float(), crop)  # (b, C, crop, crop)
        chunks.append(model.embed(grids, encoder='teacher', output=output).float().cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
