"""One SLPD epoch the way the original code runs it, kept only as a benchmark baseline.

A plain loop written from the spec for ``benchmarks/epoch.py``:

1. refresh: embed every region with the teacher (centre crop) reading one pickled
   ``GET`` per region; cluster each slide on its own (faiss) and find neighbours with
   the original's (S, S, K!) permutation tensor (``original_prototypes``);
2. train: per-sample CPU crops (``NaiveMultiCropDataset``) over the same per-region
   ``GET`` reads, explicit attention, a host sync (``loss.item()``) every step;
3. save a checkpoint of student, teacher and optimizer with ``torch.save``.

The model, losses and teacher update are the plugin's (the same work on both sides).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import redis
import torch
from lightly.models.utils import update_momentum
from torch.utils.data import DataLoader, Dataset, default_collate

from benchmarks.baselines import original_prototypes, original_redis
from benchmarks.baselines.naive_multicrop import NaiveMultiCropDataset
from slpd_plugin.checkpoints.embed import embed_grids
from slpd_plugin.prototypes import PrototypeBank


class OriginalRedisDataset(Dataset):
    """One region per item, read with one ``GET`` + ``pickle.loads`` (the original way).

    The client connects lazily, so each DataLoader worker opens its own connection.
    """

    def __init__(self, connection: dict, prefix: str, slide_index: np.ndarray) -> None:
        self.connection, self.prefix, self.slide_index = connection, prefix, slide_index
        self._client: redis.Redis | None = None

    def __len__(self) -> int:
        return len(self.slide_index)

    def __getitem__(self, i: int) -> dict:
        if self._client is None:
            self._client = redis.Redis(**self.connection)
        grid = original_redis.read_batch(self._client, self.prefix, [i])[0]
        return dict(inputs=torch.from_numpy(grid),
                    data_samples=dict(index=i, slide_index=int(self.slide_index[i])))


def _bank(refreshed: dict[str, torch.Tensor], slide_index: np.ndarray) -> PrototypeBank:
    """The baseline's refresh in the plugin's bank layout (r = 1 neighbour); slides
    without prototypes get neighbour and matches -1."""
    centroids, valid, assignments = (refreshed[key] for key in
                                     ('centroids', 'valid', 'assignments'))
    s, k, _ = centroids.shape
    slides = torch.from_numpy(np.asarray(slide_index, dtype=np.int64))
    assigned = assignments >= 0
    sizes = torch.bincount(slides[assigned] * k + assignments[assigned], minlength=s * k)
    neighbours = torch.where(valid[:, None], refreshed['neighbors'], -1)
    return PrototypeBank(
        centroids=centroids, valid=valid, assignments=assignments, neighbors=neighbours,
        matched=torch.where(valid[:, None, None], refreshed['matched'], -1),
        neighbor_similarity=torch.full((s, 1), float('nan')),
        inertia=torch.full((s,), float('nan')), cluster_sizes=sizes.view(s, k))


@torch.no_grad()
def refresh(model, dataset: OriginalRedisDataset, num_clusters: int, min_regions: int,
            batch_size: int, workers: int, device: torch.device) -> PrototypeBank:
    """Teacher embedding pass over per-region reads, then the per-slide refresh."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                        collate_fn=default_collate)
    parts = [embed_grids(model, batch['inputs'].to(device)).cpu() for batch in loader]
    num_slides = int(dataset.slide_index.max()) + 1
    refreshed = original_prototypes.refresh(
        torch.cat(parts).float(), torch.as_tensor(dataset.slide_index, dtype=torch.long),
        num_slides, num_clusters, min_regions)
    return _bank(refreshed, dataset.slide_index)


def train_epoch(model, optim, dataset: OriginalRedisDataset, batch_size: int, workers: int,
                device: torch.device, momentum: float = 0.996) -> list[float]:
    """Steps over naive per-sample crops; ``loss.item()`` after every step."""
    loader = DataLoader(NaiveMultiCropDataset(dataset), batch_size=batch_size, shuffle=True,
                        drop_last=True, num_workers=workers, collate_fn=default_collate,
                        generator=torch.Generator().manual_seed(0))
    losses = []
    for batch in loader:
        views = [v.to(device) for v in batch['views']]
        with optim.optim_context(model):
            loss = sum(model.loss(views, batch['data_samples']).values())
        optim.update_params(loss)
        update_momentum(model.student, model.teacher, momentum)
        losses.append(loss.item())
    return losses


def run_epoch(model, optim, dataset: OriginalRedisDataset, work_dir: Path, batch_size: int,
              workers: int, num_clusters: int, min_regions: int,
              device: torch.device) -> list[float]:
    """Refresh, train one epoch, save a checkpoint; returns the step losses."""
    model.bank = refresh(model, dataset, num_clusters, min_regions, 256, workers, device)
    losses = train_epoch(model, optim, dataset, batch_size, workers, device)
    torch.save(dict(state_dict=model.state_dict(), optimizer=optim.state_dict()),
               work_dir / 'original_epoch.pth')
    return losses
