"""The original code's way to make views: per sample, in the dataset, on the CPU.

Baseline for ``benchmarks/train_step.py`` only; the plugin crops whole batches on the
training device (``GridMultiCropPreprocessor``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class NaiveMultiCropDataset(Dataset):
    """Wrap a region dataset; each sample becomes ``num_global + num_local`` crops.

    Every crop is cut, flipped and converted to float32 one sample at a time in Python,
    as per-sample torchvision-style transforms do.
    """

    def __init__(self, dataset, num_global: int = 2, global_size: int = 14,
                 num_local: int = 8, local_size: int = 6, hflip_prob: float = 0.5,
                 seed: int = 0) -> None:
        self.dataset = dataset
        self.sizes = [global_size] * num_global + [local_size] * num_local
        self.hflip_prob = hflip_prob
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def crop(self, grid: np.ndarray, size: int) -> torch.Tensor:
        g = grid.shape[-1]
        top, left = self.rng.integers(0, g - size + 1, 2)
        view = grid[:, top:top + size, left:left + size]
        if self.rng.random() < self.hflip_prob:
            view = view[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(view, dtype=np.float32))

    def __getitem__(self, index: int) -> dict:
        sample = self.dataset[index]
        grid = sample['inputs'].numpy()
        return dict(views=[self.crop(grid, s) for s in self.sizes],
                    data_samples=sample['data_samples'])
