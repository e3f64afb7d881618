"""Multi-crop of region feature grids, batched on the training device.

Letters: ``B`` batch, ``C`` channels, ``G`` grid side of the stored regions (16),
``s`` crop side.

The grids are tiny (16x16 cells), so cropping them one sample at a time in CPU workers
costs more than the crop itself; here every view of the whole batch is one gather on the
device the model runs on. Flips and 90-degree rotations are folded into the gather's
index maps, so no extra copy is made.
"""
from __future__ import annotations

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from slpd_plugin.prototypes.settings import REFRESH_CROP
from slpd_plugin.registry import MODELS


def center_crop(x: Tensor, size: int) -> Tensor:
    """Centre ``size x size`` crop of ``(B, C, G, G)`` grids."""
    g = x.shape[-1]
    if not 0 < size <= g:
        raise ValueError(f'crop size {size} does not fit a {g}x{g} grid')
    start = (g - size) // 2
    return x[..., start:start + size, start:start + size]


def random_crops(x: Tensor, size: int, hflip_prob: float = 0.5, vflip_prob: float = 0.0,
                 rot90: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """One random ``size x size`` crop per grid, with random flips/rotations.

    Args:
        x: Grids ``(B, C, G, G)``.
        size: Crop side ``s`` (``s <= G``).
        hflip_prob: Probability of a horizontal (left-right) flip per sample.
        vflip_prob: Probability of a vertical flip per sample.
        rot90: Also rotate each crop by a random multiple of 90 degrees.
        generator: Optional RNG on ``x.device``.

    Returns:
        ``(B, C, s, s)`` crops; every crop is a true (possibly flipped/rotated)
        sub-grid of its input.
    """
    b, _, gh, gw = x.shape
    if not (0 < size <= gh and size <= gw):
        raise ValueError(f'crop size {size} does not fit a {gh}x{gw} grid')
    dev = x.device
    ar = torch.arange(size, device=dev)
    top = torch.randint(0, gh - size + 1, (b, 1), device=dev, generator=generator)
    left = torch.randint(0, gw - size + 1, (b, 1), device=dev, generator=generator)
    vflip = torch.rand(b, 1, device=dev, generator=generator) < vflip_prob
    hflip = torch.rand(b, 1, device=dev, generator=generator) < hflip_prob
    rows = top + torch.where(vflip, size - 1 - ar, ar)  # (B, s)
    cols = left + torch.where(hflip, size - 1 - ar, ar)  # (B, s)
    row_map = rows[:, :, None].expand(b, size, size)  # (B, s, s): source row of out[i, j]
    col_map = cols[:, None, :].expand(b, size, size)
    if rot90:
        maps = torch.stack([torch.stack((torch.rot90(row_map, r, dims=(1, 2)),
                                         torch.rot90(col_map, r, dims=(1, 2))))
                            for r in range(4)])  # (4, 2, B, s, s)
        k = torch.randint(0, 4, (b,), device=dev, generator=generator)
        row_map, col_map = maps[k, :, torch.arange(b, device=dev)].unbind(1)
    batch = torch.arange(b, device=dev)[:, None, None]
    # Advanced indices around a slice put the indexed dims first: (B, s, s, C).
    return x[batch, :, row_map, col_map].permute(0, 3, 1, 2).contiguous()


@MODELS.register_module()
class GridMultiCropPreprocessor(BaseDataPreprocessor):
    """Move a batch of grids to the device, cast to float32 and cut the views.

    In training, returns ``num_global`` global views then ``num_local`` local views (each
    ``(B, C, s, s)``, global views first, as DINO's loss expects). Otherwise returns the
    full grids, or their centre crop when ``eval_crop`` is set.

    Args:
        num_global: Global views per region. Defaults to 2.
        global_size: Global crop side. Defaults to
            :data:`~slpd_plugin.prototypes.settings.REFRESH_CROP` (14), the side the
            prototype refresh embeds.
        num_local: Local views per region. Defaults to 8.
        local_size: Local crop side. Defaults to 6.
        hflip_prob: Horizontal flip probability. Defaults to 0.5.
        vflip_prob: Vertical flip probability. Defaults to 0.0.
        rot90: Random 90-degree rotations. Defaults to False.
        eval_crop: Centre-crop side outside training, None for the full grid.
            Defaults to None.
        non_blocking: Copy batches to the device asynchronously (from the loader's
            pinned memory, ``pin_memory=True``), so the copy overlaps the previous step's
            GPU work. Defaults to True.
    """

    def __init__(self, num_global: int = 2, global_size: int = REFRESH_CROP,
                 num_local: int = 8, local_size: int = 6, hflip_prob: float = 0.5,
                 vflip_prob: float = 0.0, rot90: bool = False, eval_crop: int | None = None,
                 non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)
        if num_global < 1:
            raise ValueError(f'num_global must be >= 1, got {num_global}')
        if num_global + num_local < 2:
            raise ValueError('DINO needs at least two views in total, got '
                             f'num_global={num_global}, num_local={num_local}')
        self.num_global, self.global_size = num_global, global_size
        self.num_local, self.local_size = num_local, local_size
        self.flips = dict(hflip_prob=hflip_prob, vflip_prob=vflip_prob, rot90=rot90)
        self.eval_crop = eval_crop

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        grids = data['inputs'].float()  # stored as float16: convert on the device
        if training:
            inputs = ([random_crops(grids, self.global_size, **self.flips)
                       for _ in range(self.num_global)]
                      + [random_crops(grids, self.local_size, **self.flips)
                         for _ in range(self.num_local)])
        elif self.eval_crop is not None:
            inputs = center_crop(grids, self.eval_crop)
        else:
            inputs = grids
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
