"""Multi-crop of region feature grids, batched on the training device.

Letters: ``B`` batch, ``C`` channels, ``G`` grid side of the stored regions (16),
``s`` crop side.

The grids are tiny (16x16 cells), so cropping them one sample at a time in CPU workers
costs more than the crop itself; here every view of the whole batch is one gather on the
device the model runs on. Flips and 90-degree rotations are folded into the gather's
index maps, so no extra copy is made.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from slpd_plugin.prototypes.settings import REFRESH_CROP
from slpd_plugin.registry import MODELS

#: Candidate positions drawn per crop when a minimum tissue fraction is asked for.
CROP_TRIES = 16


def center_crop(x: Tensor, size: int) -> Tensor:
    """Centre ``size x size`` crop of grids ``(B, C, G, G)`` or masks ``(B, G, G)``."""
    g = x.shape[-1]
    if not 0 < size <= g:
        raise ValueError(f'crop size {size} does not fit a {g}x{g} grid')
    start = (g - size) // 2
    return x[..., start:start + size, start:start + size]


def _crop_corners(b: int, gh: int, gw: int, size: int, device: torch.device,
                  generator: torch.Generator | None, masks: Tensor | None,
                  min_tissue: float, tries: int) -> tuple[Tensor, Tensor]:
    """Top-left corners ``(B, 1)`` of one crop per grid.

    Without ``masks`` (or with ``min_tissue=0``) one uniform draw. Otherwise ``tries``
    uniform candidates per grid, scored together from the masks' integral image: the
    first candidate whose tissue fraction is at least ``min_tissue``, else the one with
    the most tissue.
    """
    if masks is None or min_tissue <= 0:
        return (torch.randint(0, gh - size + 1, (b, 1), device=device, generator=generator),
                torch.randint(0, gw - size + 1, (b, 1), device=device, generator=generator))
    top = torch.randint(0, gh - size + 1, (b, tries), device=device, generator=generator)
    left = torch.randint(0, gw - size + 1, (b, tries), device=device, generator=generator)
    integral = F.pad(masks.int().cumsum(1).cumsum(2), (1, 0, 1, 0))  # (B, G+1, G+1)
    batch = torch.arange(b, device=device)[:, None]
    tissue = (integral[batch, top + size, left + size] - integral[batch, top, left + size]
              - integral[batch, top + size, left] + integral[batch, top, left])  # (B, tries)
    need = math.ceil(min_tissue * size * size - 1e-9)
    score = torch.where(tissue >= need, size * size + 1, tissue)
    best = score.argmax(dim=1, keepdim=True)  # the first maximum: first good candidate
    return top.gather(1, best), left.gather(1, best)


def random_crop_maps(b: int, grid: tuple[int, int], size: int, hflip_prob: float = 0.5,
                     vflip_prob: float = 0.0, rot90: bool = False,
                     generator: torch.Generator | None = None, masks: Tensor | None = None,
                     min_tissue: float = 0.0, tries: int = CROP_TRIES,
                     device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Index maps of one random ``size x size`` crop per grid, flips/rotations folded in.

    Args:
        b: Number of grids ``B``.
        grid: ``(G_h, G_w)``, the grids' sides.
        size: Crop side ``s``.
        hflip_prob: Probability of a horizontal (left-right) flip per sample.
        vflip_prob: Probability of a vertical flip per sample.
        rot90: Also rotate each crop by a random multiple of 90 degrees.
        generator: Optional RNG on ``device``.
        masks: Optional tissue masks ``(B, G_h, G_w)`` bool, for ``min_tissue``.
        min_tissue: Wanted fraction of present cells per crop; a crop's position is
            drawn up to ``tries`` times and the first one that reaches it is kept (else
            the one with the most tissue). 0 (default) draws once, as without masks.
        tries: Candidate positions per crop when ``min_tissue > 0``. Defaults to
            :data:`CROP_TRIES`.
        device: Device of the maps (that of ``masks`` when given).

    Returns:
        ``(row_map, col_map)``, each ``(B, s, s)`` int64: crop cell ``[b, i, j]`` is grid
        cell ``[b, row_map[b, i, j], col_map[b, i, j]]`` (see :func:`gather_cells`).
    """
    gh, gw = grid
    if not (0 < size <= gh and size <= gw):
        raise ValueError(f'crop size {size} does not fit a {gh}x{gw} grid')
    dev = masks.device if masks is not None else torch.device(device or 'cpu')
    ar = torch.arange(size, device=dev)
    top, left = _crop_corners(b, gh, gw, size, dev, generator, masks, min_tissue, tries)
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
    return row_map, col_map


def gather_cells(x: Tensor, row_map: Tensor, col_map: Tensor) -> Tensor:
    """Cut crops out of grids or masks with the maps of :func:`random_crop_maps`.

    Grids ``(B, C, G, G)`` -> ``(B, C, s, s)``; masks ``(B, G, G)`` -> ``(B, s, s)``.
    """
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
    if x.dim() == 3:
        return x[batch, row_map, col_map]
    # Advanced indices around a slice put the indexed dims first: (B, s, s, C).
    return x[batch, :, row_map, col_map].permute(0, 3, 1, 2).contiguous()


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
    maps = random_crop_maps(x.shape[0], (x.shape[-2], x.shape[-1]), size, hflip_prob, vflip_prob,
                            rot90, generator, device=x.device)
    return gather_cells(x, *maps)


@MODELS.register_module()
class GridMultiCropPreprocessor(BaseDataPreprocessor):
    """Move a batch of grids to the device, cast to float32 and cut the views.

    In training, returns ``num_global`` global views then ``num_local`` local views (each
    ``(B, C, s, s)``, global views first, as DINO's loss expects). Otherwise returns the
    full grids, or their centre crop when ``eval_crop`` is set.

    When the batch carries tissue masks (``masks`` ``(B, G, G)`` bool, from a store with
    holes), they are cut with the same index maps as the grids and returned as
    ``masks``: one ``(B, s, s)`` per view in training, aligned with ``inputs``, or the
    (centre-cropped) ``(B, G, G)`` masks otherwise. Without masks in the batch, no
    ``masks`` key is returned.

    Example:
        >>> pre = GridMultiCropPreprocessor(min_tissue=0.5)
        >>> out = pre(dict(inputs=grids, masks=masks), training=True)
        >>> [v.shape for v in out['masks']][:1]  # (B, 14, 14) per global view

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
        min_tissue: Wanted fraction of present cells in each training crop; a crop's
            position is redrawn up to ``crop_tries`` times (all candidates scored at once
            on the device) and the best found is kept. Only used when the batch carries
            masks. Defaults to 0 (one draw, as without masks).
        crop_tries: Candidate positions per crop for ``min_tissue``. Defaults to
            :data:`CROP_TRIES` (16).
        non_blocking: Copy batches to the device asynchronously (from the loader's
            pinned memory, ``pin_memory=True``), so the copy overlaps the previous step's
            GPU work. Defaults to True.
    """

    def __init__(self, num_global: int = 2, global_size: int = REFRESH_CROP,
                 num_local: int = 8, local_size: int = 6, hflip_prob: float = 0.5,
                 vflip_prob: float = 0.0, rot90: bool = False, eval_crop: int | None = None,
                 min_tissue: float = 0.0, crop_tries: int = CROP_TRIES,
                 non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)
        if num_global < 1:
            raise ValueError(f'num_global must be >= 1, got {num_global}')
        if num_global + num_local < 2:
            raise ValueError('DINO needs at least two views in total, got '
                             f'num_global={num_global}, num_local={num_local}')
        self.num_global, self.global_size = num_global, global_size
        self.num_local, self.local_size = num_local, local_size
        self.hflip_prob, self.vflip_prob, self.rot90 = hflip_prob, vflip_prob, rot90
        self.eval_crop = eval_crop
        if not 0.0 <= min_tissue <= 1.0 or crop_tries < 1:
            raise ValueError(f'min_tissue must be in [0, 1] and crop_tries >= 1, got '
                             f'{min_tissue}, {crop_tries}')
        self.min_tissue, self.crop_tries = min_tissue, crop_tries

    def forward(self, data: dict, training: bool = False) -> dict:
        """The batch on the device: ``inputs`` (views or grids), ``masks``, ``data_samples``."""
        data = self.cast_data(data)
        grids = data['inputs'].float()  # stored as float16: convert on the device
        masks = data.get('masks')  # (B, G, G) bool or None
        out: dict[str, Any]
        if training:
            views, view_masks = [], []
            sizes = [self.global_size] * self.num_global + [self.local_size] * self.num_local
            for size in sizes:
                maps = random_crop_maps(len(grids), (grids.shape[-2], grids.shape[-1]), size,
                                        self.hflip_prob, self.vflip_prob, self.rot90,
                                        masks=masks, min_tissue=self.min_tissue,
                                        tries=self.crop_tries, device=grids.device)
                views.append(gather_cells(grids, *maps))  # (B, C, s, s)
                if masks is not None:
                    view_masks.append(gather_cells(masks, *maps))  # (B, s, s)
            out = dict(inputs=views, masks=view_masks)
        elif self.eval_crop is not None:
            out = dict(inputs=center_crop(grids, self.eval_crop),
                       masks=None if masks is None else center_crop(masks, self.eval_crop))
        else:
            out = dict(inputs=grids, masks=masks)
        if masks is None:
            del out['masks']
        out['data_samples'] = data.get('data_samples')
        return out
