"""Multi-crop cuts tissue masks with the grids' own index maps, and can ask for a
minimum tissue fraction per crop."""
from __future__ import annotations

import pytest
import torch

from slpd_plugin.models.data_preprocessors import (
    GridMultiCropPreprocessor,
    random_crop_maps,
    random_crops,
)

G = 16


def cell_coded_grids(b: int) -> torch.Tensor:
    """(B, 2, G, G): channel 0 = row, channel 1 = column of each cell."""
    rows = torch.arange(G).view(G, 1).expand(G, G)
    return torch.stack([rows, rows.T]).float().expand(b, 2, G, G).clone()


@pytest.mark.parametrize('rot90', [False, True])
def test_mask_crops_are_the_masks_at_the_cells_the_grid_crops_came_from(rot90):
    torch.manual_seed(0)
    b = 12
    masks = torch.rand(b, G, G) < 0.6
    pre = GridMultiCropPreprocessor(num_global=2, num_local=3, local_size=6, hflip_prob=0.5,
                                    vflip_prob=0.5, rot90=rot90)
    out = pre(dict(inputs=cell_coded_grids(b), masks=masks), training=True)
    assert len(out['masks']) == len(out['inputs']) == 5
    for view, view_mask in zip(out['inputs'], out['masks']):
        assert view_mask.dtype == torch.bool and view_mask.shape == (b, *view.shape[-2:])
        rows, cols = view[:, 0].long(), view[:, 1].long()  # source cell of every crop cell
        for k in range(b):
            expected = [[bool(masks[k, rows[k, i, j], cols[k, i, j]])
                         for j in range(view.shape[-1])] for i in range(view.shape[-2])]
            assert view_mask[k].tolist() == expected


def test_eval_centre_crop_crops_masks_too_and_no_masks_means_no_key():
    masks = torch.rand(3, G, G) < 0.5
    grids = torch.randn(3, 4, G, G)
    out = GridMultiCropPreprocessor(eval_crop=14)(dict(inputs=grids, masks=masks))
    assert torch.equal(out['masks'], masks[:, 1:15, 1:15])
    assert torch.equal(GridMultiCropPreprocessor()(dict(inputs=grids, masks=masks))['masks'],
                       masks)
    assert 'masks' not in GridMultiCropPreprocessor()(dict(inputs=grids), training=True)


def tissue_of(masks, size, rows, cols):
    """Present cells of each crop whose top-left is (rows.min, cols.min)."""
    top, left = rows.flatten(1).min(1).values, cols.flatten(1).min(1).values
    return torch.stack([masks[k, t:t + size, c:c + size].sum()
                        for k, (t, c) in enumerate(zip(top.tolist(), left.tolist()))])


def test_min_tissue_is_met_wherever_the_grid_allows_it():
    torch.manual_seed(1)
    b, size = 256, 6
    masks = torch.zeros(b, G, G, dtype=torch.bool)
    masks[:, :8, :8] = True  # tissue only in the top-left quarter
    masks[b // 2:, :4, :4] = False  # and less of it in the second half
    plain = tissue_of(masks, size, *random_crop_maps(b, (G, G), size, masks=masks))
    assert (plain < 0.5 * size * size).float().mean() > 0.5  # a single draw misses often
    rows, cols = random_crop_maps(b, (G, G), size, masks=masks, min_tissue=0.5, tries=16)
    tissue = tissue_of(masks, size, rows, cols)
    feasible = torch.tensor([max(int(masks[k, t:t + size, c:c + size].sum())
                                 for t in range(G - size + 1) for c in range(G - size + 1))
                             for k in (0, b - 1)])
    assert (feasible >= 18).all()  # min_tissue=0.5 can be met in both halves
    assert (tissue >= 18).float().mean() > 0.95  # 16 tries: met but for rare misses
    impossible = random_crop_maps(b, (G, G), size, masks=masks, min_tissue=1.0, tries=16)
    assert (tissue_of(masks, size, *impossible) >= plain).float().mean() > 0.9  # best kept


def test_min_tissue_zero_draws_exactly_as_before():
    x, masks = torch.randn(8, 3, G, G), torch.rand(8, G, G) < 0.5
    torch.manual_seed(5)
    before = random_crops(x, 6, hflip_prob=0.5, vflip_prob=0.5, rot90=True)
    torch.manual_seed(5)
    pre = GridMultiCropPreprocessor(num_global=1, global_size=6, num_local=1, local_size=6,
                                    vflip_prob=0.5, rot90=True, min_tissue=0.0)
    out = pre(dict(inputs=x, masks=masks), training=True)
    assert torch.equal(out['inputs'][0], before)
    with pytest.raises(ValueError, match='min_tissue'):
        GridMultiCropPreprocessor(min_tissue=1.5)
