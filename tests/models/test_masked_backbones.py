"""Backbones that accept masks: ViT4K leaves missing cells out of attention, PooledMLP
averages over present cells; an all-True mask is the unmasked model, and what a missing
cell holds changes nothing. SLPD hands each view's mask to backbones that accept them."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from slpd_plugin.models.backbones import PooledMLP, ViT4K, accepts_masks
from slpd_plugin.registry import MODELS


def holey(b: int, c: int, side: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(b, side, side, generator=g) < 0.6
    masks[:, side // 2, side // 2] = True
    masks[-1] = False  # one grid with no patch at all
    return torch.randn(b, c, side, side, generator=g), masks


def refill(x: Tensor, masks: Tensor, seed: int = 1) -> Tensor:
    """``x`` with other values (large, NaN, Inf) in the missing cells."""
    g = torch.Generator().manual_seed(seed)
    noise = 100 * torch.randn(x.shape, generator=g)
    noise[:, 0] = float('nan')
    noise[:, 1] = float('inf')
    return torch.where(masks[:, None], x, noise)


def run(model: nn.Module, x: Tensor, mask: Tensor | None = None, seed: int = 0) -> Tensor:
    torch.manual_seed(seed)  # the same dropout / drop-path draws in training mode
    with torch.no_grad():
        return model(x) if mask is None else model(x, mask=mask)


HIPT_XS = dict(arch='xs', in_channels=384)  # HIPT's vit4k_xs: 192-d, 6 blocks, 6 heads


@pytest.mark.parametrize('attn_impl', ['sdpa', 'math'])
@pytest.mark.parametrize('side', [16, 6])
def test_vit4k_all_true_mask_is_the_unmasked_model_and_missing_cells_do_not_count(
        attn_impl, side):
    torch.manual_seed(0)
    model = ViT4K(**HIPT_XS, attn_impl=attn_impl, drop_rate=0.1, drop_path_rate=0.1)
    x, masks = holey(4, 384, side)
    for train in (False, True):
        model.train(train)
        plain = run(model, x)
        assert (run(model, x, torch.ones_like(masks)) - plain).abs().max() < 1e-6
        masked = run(model, x, masks)
        assert torch.equal(run(model, refill(x, masks), masks), masked)
        assert masked.isfinite().all()
        assert not torch.allclose(masked[:-1], plain[:-1], atol=1e-3)  # the mask acts


def test_vit4k_masked_equals_attention_over_the_present_tokens_only():
    """Independent reference: drop the missing tokens from the sequence, no mask."""
    torch.manual_seed(0)
    model = ViT4K(**HIPT_XS).eval()
    x, masks = holey(3, 384, 16)
    masked = run(model, x, masks)
    pos = model.interpolate_pos_encoding(16, 16)  # (1, 257, E)
    for k in range(3):
        keep = masks[k].flatten()  # (256,)
        cells = x[k].flatten(1).T[keep]  # (n, C) present cells, row-major
        with torch.no_grad():
            tokens = torch.cat([model.cls_token[0] + pos[0, :1],
                                model.phi(cells) + pos[0, 1:][keep]])[None]
            for block in model.blocks:
                tokens = block(tokens)
            expected = model.norm(tokens)[0, 0]
        assert (masked[k] - expected).abs().max() < 1e-5


def test_pooled_mlp_masked_mean():
    torch.manual_seed(0)
    model = PooledMLP(in_channels=8, embed_dims=16).eval()
    x, masks = holey(5, 8, 16)
    assert (run(model, x, torch.ones_like(masks)) - run(model, x)).abs().max() < 1e-6
    masked = run(model, x, masks)
    assert torch.equal(run(model, refill(x, masks), masks), masked)
    with torch.no_grad():
        for k in range(4):
            mean = x[k][:, masks[k]].mean(dim=1)  # (C,) over the present cells
            assert (masked[k] - model.mlp(mean)).abs().max() < 1e-6
        assert (masked[-1] - model.mlp(torch.zeros(8))).abs().max() < 1e-6  # no patch: zeros


def test_bad_masks_are_refused():
    with pytest.raises(ValueError, match='bool mask of shape'):
        ViT4K(in_channels=8, depth=1)(torch.randn(2, 8, 6, 6), mask=torch.ones(2, 6, 6))
    with pytest.raises(ValueError, match=r'\(2, 6, 6\)'):
        PooledMLP(in_channels=8)(torch.randn(2, 8, 6, 6), mask=torch.ones(2, 5, 5).bool())


class MeanPool(nn.Module):
    """A user's backbone that knows nothing of masks (no ``accepts_masks``)."""

    def __init__(self, in_channels: int = 16, embed_dims: int = 12) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.proj = nn.Linear(in_channels, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.mean(dim=(2, 3)))


def slpd_cfg(backbone: dict) -> dict:
    return dict(type='SLPD', data_preprocessor=dict(type='GridMultiCropPreprocessor',
                                                    num_local=2),
                backbone=backbone,
                head=dict(type='DINOHead', hidden_dims=32, bottleneck_dims=16,
                          out_channels=64),
                loss=dict(type='DINOLoss', output_dim=64))


def fresh(cfg: dict) -> nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.teacher_temp = 0.04
    return model


def step_losses(cfg: dict, grids: Tensor, masks: Tensor | None) -> dict[str, Tensor]:
    """One step's losses of a freshly built model (the DINO centre starts the same)."""
    model = fresh(cfg)
    data = dict(inputs=grids, data_samples=dict(index=torch.arange(len(grids))))
    if masks is not None:
        data['masks'] = masks
    torch.manual_seed(0)  # the same crops and drop-path draws
    return model(**model.data_preprocessor(data, training=True), mode='loss')


@pytest.mark.parametrize('backbone', [
    dict(type='ViT4K', in_channels=16, depth=1, drop_path_rate=0.1),
    dict(type='PooledMLP', in_channels=16, embed_dims=24)])
def test_slpd_passes_every_views_mask_to_student_and_teacher(backbone):
    cfg = slpd_cfg(backbone)
    model = fresh(cfg)
    x, masks = holey(6, 16, 16)
    masks[-1, 8, 8] = True  # every region keeps a cell
    zeroed = x * masks[:, None]
    with torch.no_grad():
        losses = step_losses(cfg, zeroed, masks)['loss_dino']
        assert torch.equal(step_losses(cfg, refill(x, masks), masks)['loss_dino'], losses)
        assert not torch.allclose(step_losses(cfg, zeroed, None)['loss_dino'], losses)
    embedded = model(zeroed, masks=masks, mode='tensor')  # (B, E), the teacher's
    assert torch.equal(model(refill(x, masks), masks=masks, mode='tensor'), embedded)
    assert torch.equal(embedded, model.embed(zeroed, masks=masks))
    assert (model(zeroed, mode='tensor')
            - model.embed(zeroed, masks=torch.ones_like(masks))).abs().max() < 1e-6


def test_a_backbone_without_accepts_masks_is_called_without_them():
    MODELS.register_module(name='MeanPoolNoMasks', module=MeanPool, force=True)
    assert not accepts_masks(MeanPool) and accepts_masks(ViT4K) and accepts_masks(PooledMLP)
    cfg = slpd_cfg(dict(type='MeanPoolNoMasks', in_channels=16))
    model = fresh(cfg)
    x, masks = holey(4, 16, 16)
    with torch.no_grad():
        with_masks = step_losses(cfg, x, masks)['loss_dino']
        assert torch.equal(with_masks, step_losses(cfg, x, None)['loss_dino'])
    assert torch.equal(model(x, masks=masks, mode='tensor'), model(x, mode='tensor'))
