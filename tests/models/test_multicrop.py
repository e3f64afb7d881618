import pytest
import torch

from slpd_plugin.models.data_preprocessors import (
    GridMultiCropPreprocessor,
    center_crop,
    random_crops,
)


def dihedral_windows(grid: torch.Tensor, size: int, rotations: bool) -> list[torch.Tensor]:
    """Every size x size window of ``grid`` (C, G, G) under the allowed flips/rotations."""
    g = grid.shape[-1]
    out = []
    for i in range(g - size + 1):
        for j in range(g - size + 1):
            w = grid[:, i:i + size, j:j + size]
            for v in (w, w.flip(-1), w.flip(-2), w.flip(-1).flip(-2)):
                out.extend(torch.rot90(v, r, dims=(1, 2)) for r in range(4 if rotations else 1))
    return out


def is_window_of(crop, grid, rotations=False):
    return any(torch.equal(crop, w) for w in dihedral_windows(grid, crop.shape[-1], rotations))


def test_training_views_shapes_counts_and_order():
    pre = GridMultiCropPreprocessor(num_global=2, global_size=14, num_local=8, local_size=6)
    data = dict(inputs=torch.randn(5, 24, 16, 16).half(),
                data_samples=dict(index=torch.arange(5)))
    out = pre(data, training=True)
    sizes = [tuple(v.shape) for v in out['inputs']]
    assert sizes == [(5, 24, 14, 14)] * 2 + [(5, 24, 6, 6)] * 8
    assert all(v.dtype == torch.float32 for v in out['inputs'])
    assert torch.equal(out['data_samples']['index'], torch.arange(5))


@pytest.mark.parametrize('size,hflip,vflip,rot', [(14, 0.5, 0.0, False), (6, 0.5, 0.5, False),
                                                  (6, 0.5, 0.5, True)])
def test_every_crop_is_a_true_subgrid_of_its_own_input(size, hflip, vflip, rot):
    torch.manual_seed(0)
    x = torch.randn(16, 3, 16, 16)
    crops = random_crops(x, size, hflip_prob=hflip, vflip_prob=vflip, rot90=rot)
    for b in range(len(x)):
        assert is_window_of(crops[b], x[b], rotations=rot)
        # and not (by accident) a window of another sample
        assert not is_window_of(crops[b], x[(b + 1) % len(x)], rotations=True)


def test_crops_vary_and_flip_happens():
    torch.manual_seed(0)
    x = torch.randn(64, 2, 16, 16)
    crops = random_crops(x, 14, hflip_prob=1.0)
    flipped_back = crops.flip(-1)
    assert all(is_window_of(flipped_back[b], x[b]) for b in range(4))
    starts = {tuple(torch.nonzero(x[b, 0] == crops[b, 0, 0, -1])[0].tolist()) for b in range(64)}
    assert len(starts) > 1  # offsets are random


def test_no_flip_by_default_for_vertical():
    torch.manual_seed(0)
    x = torch.arange(16.0).repeat(16, 1).T[None, None].repeat(8, 1, 1, 1)  # rows = row index
    crops = random_crops(x, 6, hflip_prob=0.0, vflip_prob=0.0)
    assert (crops[:, 0, 1:, 0] > crops[:, 0, :-1, 0]).all()  # rows stay increasing


def test_eval_modes():
    x = torch.randn(2, 4, 16, 16)
    assert torch.equal(GridMultiCropPreprocessor()(dict(inputs=x))['inputs'], x)
    centre = GridMultiCropPreprocessor(eval_crop=14)(dict(inputs=x))['inputs']
    assert torch.equal(centre, x[:, :, 1:15, 1:15])
    assert torch.equal(center_crop(x, 6), x[:, :, 5:11, 5:11])


def test_bad_sizes():
    with pytest.raises(ValueError, match='crop size 17'):
        random_crops(torch.randn(1, 1, 16, 16), 17)
    with pytest.raises(ValueError, match='at least two views'):
        GridMultiCropPreprocessor(num_global=1, num_local=0)
