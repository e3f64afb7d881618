"""Whole-slide encoding equals the backbone's dense forward on the slide's bounding grid."""
from __future__ import annotations

import inspect

import pytest
import torch

from slpd_plugin.models.backbones import ALiBiViT, PooledMLP, ViT4K
from slpd_plugin.models.backbones.slide_encoding import encode_slide

C = 32


def slide(height: int, width: int, present: int, seed: int = 0
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random slide: bounding grid ``(C, H, W)``, mask ``(H, W)`` with ``present`` cells.

    Missing cells hold noise too, which the dense forward must ignore.
    """
    gen = torch.Generator().manual_seed(seed)
    grid = torch.randn(C, height, width, generator=gen)
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[torch.randperm(height * width, generator=gen)[:present]] = True
    mask = mask.reshape(height, width)
    mask[0, 0] = True  # the bounding grid starts at row 0, col 0
    mask[-1, -1] = True  # and ends at the last row and column
    return grid, mask, mask.nonzero()  # cells (N, 2) (row, col), row-major


def present(grid: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The present cells' features ``(N, C)``."""
    return grid[:, cells[:, 0], cells[:, 1]].T


def dense(backbone, grid: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return backbone(grid[None], mask[None])[0]


@pytest.fixture(scope='module')
def big_slide():
    return slide(60, 70, 3000)


@pytest.mark.parametrize('chunk_size', [1024, 333])
def test_alibi_vit_whole_slide_equals_the_dense_masked_forward(big_slide, chunk_size):
    grid, mask, cells = big_slide
    torch.manual_seed(0)
    vit = ALiBiViT(arch='xs', in_channels=C, depth=2, drop_path_rate=0.0).eval()
    expected = dense(vit, grid, mask)
    # only differences between cells matter: any lattice origin gives the same embedding
    got = encode_slide(vit, present(grid, cells), cells + torch.tensor([17, 5]), chunk_size)
    assert got.shape == (192,)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_cell_order_does_not_matter_but_positions_do(big_slide):
    grid, _, cells = big_slide
    torch.manual_seed(1)
    vit = ALiBiViT(arch='xs', in_channels=C, depth=2, drop_path_rate=0.0).eval()
    feats = present(grid, cells)
    base = encode_slide(vit, feats, cells)
    order = torch.randperm(len(cells))
    torch.testing.assert_close(encode_slide(vit, feats[order], cells[order]), base,
                               rtol=1e-4, atol=1e-4)
    stretched = encode_slide(vit, feats, cells * 2)  # the same patches, farther apart
    assert (stretched - base).abs().max() > 1e-3


def test_vit4k_whole_slide_equals_the_dense_masked_forward():
    grid, mask, cells = slide(23, 31, 400, seed=2)
    torch.manual_seed(2)
    vit = ViT4K(arch='xs', in_channels=C, depth=2, drop_path_rate=0.0).eval()
    expected = dense(vit, grid, mask)
    for chunk_size in (128, 37):
        got = encode_slide(vit, present(grid, cells), cells + 3, chunk_size)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_runs_in_eval_mode_and_restores_the_mode():
    grid, mask, cells = slide(12, 15, 100, seed=3)
    torch.manual_seed(3)
    vit = ALiBiViT(arch=dict(embed_dims=48, depth=3, num_heads=4), in_channels=C,
                   drop_rate=0.5, drop_path_rate=0.5)
    vit.train()
    got = encode_slide(vit, present(grid, cells), cells, chunk_size=7)
    assert vit.training
    torch.testing.assert_close(got, dense(vit.eval(), grid, mask), rtol=1e-4, atol=1e-4)


def test_a_slide_without_patches_is_its_cls_token_alone():
    grid, mask, _ = slide(4, 5, 0, seed=4)
    mask[:] = False
    torch.manual_seed(4)
    vit = ALiBiViT(arch=dict(embed_dims=48, depth=2, num_heads=4), in_channels=C).eval()
    got = encode_slide(vit, torch.zeros(0, C), torch.zeros(0, 2, dtype=torch.long))
    torch.testing.assert_close(got, dense(vit, grid, mask), rtol=1e-5, atol=1e-5)


def test_unsupported_backbone_and_bad_inputs_are_refused():
    feats, cells = torch.randn(5, C), torch.arange(10).reshape(5, 2)
    with pytest.raises(TypeError, match=r"supports \['ALiBiViT', 'ViT4K'\].*got PooledMLP"):
        encode_slide(PooledMLP(in_channels=C), feats, cells)
    vit = ALiBiViT(arch=dict(embed_dims=48, depth=1, num_heads=4), in_channels=C)
    with pytest.raises(ValueError, match=r'expected slide features \(N, 32\)'):
        encode_slide(vit, torch.randn(5, C + 1), cells)
    with pytest.raises(ValueError, match=r'integer cells \(N, 2\)'):
        encode_slide(vit, feats, cells.float())
    with pytest.raises(ValueError, match='chunk_size'):
        encode_slide(vit, feats, cells, chunk_size=0)


@pytest.mark.skipif('num_registers' not in inspect.signature(ALiBiViT).parameters,
                    reason='backbones without register tokens')
@pytest.mark.parametrize('backbone', [ALiBiViT, ViT4K])
def test_register_tokens_count_as_in_the_dense_forward(backbone):
    grid, mask, cells = slide(20, 26, 300, seed=5)
    torch.manual_seed(5)
    vit = backbone(arch=dict(embed_dims=48, depth=2, num_heads=4), in_channels=C,
                   num_registers=3, drop_path_rate=0.0).eval()
    with torch.no_grad():
        vit.register_tokens.normal_()  # away from any init that would hide them
    got = encode_slide(vit, present(grid, cells), cells, chunk_size=50)
    torch.testing.assert_close(got, dense(vit, grid, mask), rtol=1e-4, atol=1e-4)


def test_each_chunks_bias_is_those_rows_of_the_dense_alibi_bias():
    from slpd_plugin.models.backbones.alibi_vit import alibi_bias, alibi_slopes
    from slpd_plugin.models.backbones.slide_encoding import _alibi_chunk
    height, width, heads = 7, 9, 6
    dense_bias = alibi_bias(height, width, heads, torch.device('cpu'))[0]  # (h, T, T)
    cells = torch.cartesian_prod(torch.arange(height), torch.arange(width)).float()
    for lo, hi in [(0, 5), (0, 64), (3, 40), (40, 64)]:  # CLS in the chunk or not
        got = _alibi_chunk(alibi_slopes(heads), cells, 1, lo, hi)
        assert torch.equal(got, dense_bias[:, lo:hi])
