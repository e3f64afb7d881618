"""ALiBiViT: 2-D ALiBi bias checked against per-pair distances, masks leave missing cells
out, any grid size, and SLPD's heads on it (tools/train.py with it, on 1 and 2 processes
and a store with holes: tests/engine/test_masked_training.py)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from torch.utils._python_dispatch import TorchDispatchMode

from slpd_plugin.models.backbones import ALiBiViT
from slpd_plugin.models.backbones.alibi_vit import alibi_slopes
from slpd_plugin.prototypes import build_bank
from slpd_plugin.registry import MODELS
from tests.models.explicit_vit import explicit_blocks, perturbed

SMALL = dict(embed_dims=48, depth=2, num_heads=6)
# ALiBi's rule for 6 heads: the 4-head sequence 2^-2, 2^-4, 2^-6, 2^-8, then the first
# two odd-indexed terms of the 8-head sequence, 2^-1 and 2^-3.
SLOPES_6 = [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]


def small(**kw) -> ALiBiViT:
    torch.manual_seed(0)
    return perturbed(ALiBiViT(arch=SMALL, in_channels=8,
                              **dict(dict(drop_path_rate=0.0), **kw)))


def grids(b=3, h=5, w=7, seed=1):
    return torch.randn(b, 8, h, w, generator=torch.Generator().manual_seed(seed))


def holes(b=3, h=5, w=7, seed=2):
    mask = torch.rand(b, h, w, generator=torch.Generator().manual_seed(seed)) > 0.35
    mask[-1] = False  # one grid without any patch: its CLS attends to itself only
    return mask


def reference_forward(model: ALiBiViT, x: torch.Tensor, mask: torch.Tensor | None,
                      slopes: list[float]) -> torch.Tensor:
    """One grid at a time, present cells only: tokens of missing cells do not exist here,
    and the bias of each pair of present cells is computed from their positions."""
    sd, heads = model.state_dict(), len(slopes)
    out = []
    for b in range(x.shape[0]):
        cells = [(i, j) for i in range(x.shape[2]) for j in range(x.shape[3])
                 if mask is None or mask[b, i, j]]
        feats = torch.stack([x[b, :, i, j] for i, j in cells]) if cells else x.new_zeros(0, 8)
        tok = F.gelu(feats @ sd['phi.0.weight'].T + sd['phi.0.bias'])
        tok = torch.cat([sd['cls_token'][0], tok])  # (1 + n, E)
        t = tok.shape[0]
        bias = torch.zeros(heads, t, t)
        for p, a in enumerate(cells, start=1):
            for q, c in enumerate(cells, start=1):
                d = math.dist(a, c)
                bias[:, p, q] = torch.tensor([-s * d for s in slopes])
        out.append(explicit_blocks(sd, tok, bias, len(model.blocks), heads)[0])
    return torch.stack(out)


def test_slopes_follow_alibis_geometric_sequence():
    torch.testing.assert_close(alibi_slopes(6), torch.tensor(SLOPES_6))
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -k for k in range(1, 9)]))
    # 12 heads (TITAN's size): the 8-head sequence, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5
    expected = [2.0 ** -k for k in range(1, 9)] + [2.0 ** -(k + 0.5) for k in range(4)]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected))


@pytest.mark.parametrize('attn_impl', ['sdpa', 'math'])
@pytest.mark.parametrize('masked', [False, True], ids=['full', 'holes'])
def test_output_equals_per_pair_distance_reference(attn_impl, masked):
    model = small(attn_impl=attn_impl)
    x, mask = grids(), holes() if masked else None
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask), reference_forward(model, x, mask, SLOPES_6),
                                   atol=1e-5, rtol=1e-4)


def test_bias_is_minus_slope_times_distance_and_zero_for_cls():
    model = small()
    bias = model.attention_bias(3, 4, torch.device('cpu'))  # (1, h, 13, 13)
    cells = [(i, j) for i in range(3) for j in range(4)]
    for p, a in enumerate(cells, start=1):
        for q, c in enumerate(cells, start=1):
            torch.testing.assert_close(bias[0, :, p, q],
                                       torch.tensor([-s * math.dist(a, c) for s in SLOPES_6]))
    assert not bias[0, :, 0].any() and not bias[0, :, :, 0].any()
    mask = holes(2, 3, 4)
    masked = model.attention_bias(3, 4, torch.device('cpu'), mask)  # (2, h, 13, 13)
    keys = torch.cat([torch.ones(2, 1, dtype=torch.bool), mask.flatten(1)], 1)
    assert torch.isneginf(masked).equal(~keys[:, None, None, :].expand_as(masked))
    torch.testing.assert_close(masked[keys[:, None, None, :].expand_as(masked)],
                               bias.expand_as(masked)[keys[:, None, None, :].expand_as(masked)])


@pytest.mark.parametrize('side', [6, 14, 16, 32])
def test_any_grid_size_without_positional_parameters(side):
    model = small()
    x = torch.randn(2, 8, side, side)
    with torch.no_grad():
        out = model(x)
        # positions enter only through distances (from block 2 on: CLS itself has none):
        # a transposed or mirrored grid has the same pairwise distances, so the same CLS
        # output; a shuffled one does not
        torch.testing.assert_close(model(x.transpose(-1, -2)), out, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model(x.flip(-1)), out, atol=1e-5, rtol=1e-4)
        perm = torch.randperm(side * side, generator=torch.Generator().manual_seed(0))
        shuffled = x.flatten(2)[..., perm].reshape_as(x)
        assert not torch.allclose(model(shuffled), out, atol=1e-4)
    assert out.shape == (2, 48) and torch.isfinite(out).all()
    assert all(side not in p.shape for p in model.parameters())  # nothing sized by the grid


@pytest.mark.parametrize('masked', [False, True], ids=['full', 'holes'])
def test_sdpa_matches_explicit_softmax_attention(masked):
    fast, slow = small(attn_impl='sdpa'), small(attn_impl='math')
    x, mask = grids(4, 16, 16), holes(4, 16, 16) if masked else None
    with torch.no_grad():
        torch.testing.assert_close(fast(x, mask), slow(x, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('attn_impl', ['sdpa', 'math'])
def test_all_present_mask_equals_no_mask(attn_impl):
    model = small(attn_impl=attn_impl)
    x = grids(3, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(model(x, torch.ones(3, 14, 14, dtype=torch.bool)),
                                   model(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize('mode', ['train', 'eval'])
@pytest.mark.parametrize('fill', [1e3, float('nan')], ids=['large', 'nan'])
def test_values_in_masked_cells_change_nothing(mode, fill):
    model = small().train(mode == 'train')  # drop_path 0, drop_rate 0: deterministic
    x, mask = grids(3, 16, 16), holes(3, 16, 16)
    other = x.clone()
    other.permute(0, 2, 3, 1)[~mask] = fill  # whatever the holes hold
    with torch.no_grad():
        out = model(x, mask)
        torch.testing.assert_close(model(other, mask), out, atol=1e-6, rtol=0)
        assert not torch.allclose(model(other.nan_to_num(7.0)), model(x))  # unmasked: they count


def test_built_from_registry_with_titan_preset_and_drop_path_schedule():
    model = MODELS.build(dict(type='ALiBiViT', arch='titan', in_channels=768, depth=1))
    assert (model.embed_dims, model.in_channels, model.num_heads) == (768, 768, 12)
    assert model.accepts_masks is True
    assert not any('pos' in name for name, _ in model.named_parameters())
    deep = MODELS.build(dict(type='ALiBiViT', arch=dict(SMALL, depth=3), in_channels=8,
                             drop_path_rate=0.2))
    assert [b.drop_path.p for b in deep.blocks] == pytest.approx([0.0, 0.1, 0.2])


def test_bad_arguments_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="'xl'.*'s', 'titan', 'xs'"):
        ALiBiViT(arch='xl')
    with pytest.raises(ValueError, match=r"missing \['num_heads'\]"):
        ALiBiViT(arch=dict(embed_dims=32, depth=1))
    model = small()
    with pytest.raises(ValueError, match=r'\(B, 8, H, W\).*\(2, 4, 6, 6\)'):
        model(torch.randn(2, 4, 6, 6))
    with pytest.raises(ValueError, match=r'bool mask of shape \(2, 6, 6\).*torch.float32'):
        model(torch.randn(2, 8, 6, 6), torch.ones(2, 6, 6))
    with pytest.raises(ValueError, match=r'bool mask of shape \(2, 6, 6\).*\(2, 5, 5\)'):
        model(torch.randn(2, 8, 6, 6), torch.ones(2, 5, 5, dtype=torch.bool))


# --- inside SLPD: the DINO head and the prototype head take their sizes from it ---

def slpd_cfg():
    return dict(
        type='SLPD',
        data_preprocessor=dict(type='GridMultiCropPreprocessor', num_local=2),
        backbone=dict(type='ALiBiViT', arch=dict(embed_dims=24, depth=2, num_heads=4),
                      in_channels=16, drop_path_rate=0.1),
        head=dict(type='DINOHead', hidden_dims=32, bottleneck_dims=16, out_channels=64),
        loss=dict(type='DINOLoss', output_dim=64),
        prototype_head=dict(type='PrototypeDistillHead', loss_type='intra_inter'))


def test_slpd_on_alibi_vit_trains_with_dino_and_prototype_losses():
    torch.manual_seed(0)
    model = MODELS.build(slpd_cfg())
    assert model.student.head.in_channels == 24  # taken from the backbone
    assert model.prototype_head.center_intra.shape == (1, 64)  # from the DINO head
    assert [b.drop_path.p for b in model.student.backbone.blocks] == pytest.approx([0, 0.1])
    assert all(b.drop_path.p == 0 for b in model.teacher.backbone.blocks)
    n = 8
    g = torch.Generator().manual_seed(3)
    inputs = torch.randn(n, 16, 16, 16, generator=g)
    slide_index = torch.arange(n) // 4  # two slides of 4 regions
    samples = dict(index=torch.arange(n), slide_index=slide_index, region_index=torch.arange(n))
    assert model(inputs, mode='tensor').shape == (n, 24)
    # the bank as PrototypeHook builds it: teacher bottleneck embeddings, k-means per slide
    z = model.embed(inputs, output='z')  # (n, 16)
    model.bank = build_bank(z, slide_index, num_clusters=2, min_regions=2, num_neighbors=1)
    assert model.bank.valid.all()
    opt = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                       lr=0.1))
    before_s = [p.clone() for p in model.student.backbone.parameters()]
    before_t = [p.clone() for p in model.teacher.parameters()]
    log = model.train_step(dict(inputs=inputs, data_samples=samples), opt)
    assert {'loss_dino', 'loss_intra', 'loss_inter'} <= set(log)
    assert all(torch.isfinite(v) for v in log.values())
    assert any(not torch.equal(a, b)
               for a, b in zip(before_s, model.student.backbone.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before_t, model.teacher.parameters()))


class CastsOfShape(TorchDispatchMode):
    """Counts dtype casts (``_to_copy``) of tensors whose last two dims are ``(T, T)``."""

    def __init__(self, t):
        super().__init__()
        self.t, self.casts = t, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ == '_to_copy' and args[0].shape[-2:] == (self.t, self.t):
            self.casts += 1
        return func(*args, **(kwargs or {}))


def blocks_with_fp32_bias(model, x, mask):
    """The former forward: the fp32 bias handed to every block (SDPA then casts it under
    autocast, once per block)."""
    x = x if mask is None else x.masked_fill(~mask[:, None], 0.0)
    b, _, h, w = x.shape
    tokens = model.phi(x.flatten(2).transpose(1, 2))
    tokens = torch.cat([model.cls_token.expand(b, -1, -1), tokens], dim=1)
    bias = model.attention_bias(h, w, x.device, mask)  # float32
    for block in model.blocks:
        tokens = block(tokens, bias)
    return model.norm(tokens)[:, 0]


@pytest.mark.parametrize('masked', [False, True])
def test_bias_is_made_in_the_compute_dtype_once_and_outputs_are_unchanged(masked):
    model = small()
    x, mask = grids(), holes() if masked else None
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        model(x, mask)  # fills the cache
        with CastsOfShape(5 * 7 + 1) as casts:
            out = model(x, mask)
        ref = blocks_with_fp32_bias(model, x, mask)
    assert casts.casts == 0  # formerly one cast of the bias per block
    assert model.attention_bias(5, 7, torch.device('cpu'), mask, torch.bfloat16).dtype \
        == torch.bfloat16
    torch.testing.assert_close(out, ref, atol=0, rtol=0)
