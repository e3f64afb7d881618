"""Register tokens, forward_tokens and the mask token of ViT4K and ALiBiViT, against an
explicit per-grid reference (present cells only, softmax attention written out)."""
import math

import pytest
import torch
import torch.nn.functional as F

from slpd_plugin.models.backbones import ALiBiViT, ViT4K
from slpd_plugin.models.backbones.alibi_vit import alibi_slopes
from slpd_plugin.models.backbones.special_tokens import fit_special_tokens
from tests.models.explicit_vit import explicit_blocks, perturbed

ARCH = dict(embed_dims=24, depth=2, num_heads=4)
BACKBONES = {'alibi': ALiBiViT, 'vit4k': ViT4K}


def build(kind: str, perturb: bool = True, **kw):
    torch.manual_seed(0)
    extra = dict(pos_grid_size=4) if kind == 'vit4k' else {}
    model = BACKBONES[kind](arch=ARCH, in_channels=8, drop_path_rate=0.0, **extra, **kw)
    return perturbed(model) if perturb else model.eval()


def grids(b=3, h=5, w=6, seed=1):
    return torch.randn(b, 8, h, w, generator=torch.Generator().manual_seed(seed))


def holes(b=3, h=5, w=6, seed=2):
    return torch.rand(b, h, w, generator=torch.Generator().manual_seed(seed)) > 0.3


def chosen(b=3, h=5, w=6, seed=3):
    return torch.rand(b, h, w, generator=torch.Generator().manual_seed(seed)) > 0.6


def reference_tokens(model, kind, x, mask, token_mask):
    """Per grid: tokens [CLS, registers, present cells] built by hand, explicit attention
    with the bias expected (ALiBi: -slope * distance between cells, 0 for every pair
    involving CLS or a register; ViT4K: none), final norm. Returns CLS (B, E) and the
    present cells' tokens in row-major order, concatenated over grids (n, E)."""
    sd, e, heads = model.state_dict(), model.embed_dims, ARCH['num_heads']
    h, w = x.shape[-2:]
    slopes = alibi_slopes(heads).tolist()
    pos = model.interpolate_pos_encoding(h, w)[0].detach() if kind == 'vit4k' else None
    regs = sd['register_tokens'][0] if 'register_tokens' in sd else torch.zeros(0, e)
    cls_out, cell_out = [], []
    for b in range(x.shape[0]):
        cells = [(i, j) for i in range(h) for j in range(w) if mask is None or mask[b, i, j]]
        tok = []
        for i, j in cells:
            t = F.gelu(x[b, :, i, j] @ sd['phi.0.weight'].T + sd['phi.0.bias'])
            if token_mask is not None and token_mask[b, i, j]:
                t = sd['mask_token'][0, 0]
            tok.append(t + (pos[1 + i * w + j] if pos is not None else 0))
        cls = sd['cls_token'][0] + (pos[:1] if pos is not None else 0)
        tok = torch.cat([cls, regs, torch.stack(tok)]) if tok else torch.cat([cls, regs])
        t, prefix = tok.shape[0], 1 + regs.shape[0]
        bias = torch.zeros(heads, t, t)
        if kind == 'alibi':
            for p, a in enumerate(cells, start=prefix):
                for q, c in enumerate(cells, start=prefix):
                    bias[:, p, q] = torch.tensor([-s * math.dist(a, c) for s in slopes])
        tok = explicit_blocks(sd, tok, bias, ARCH['depth'], heads)
        cls_out.append(tok[0])
        cell_out.append(tok[prefix:])
    return torch.stack(cls_out), torch.cat(cell_out)


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
@pytest.mark.parametrize('registers', [0, 3])
@pytest.mark.parametrize('masked', [False, True], ids=['full', 'holes'])
@pytest.mark.parametrize('tokens_masked', [False, True], ids=['no-mask-token', 'mask-token'])
def test_forward_tokens_match_explicit_reference(kind, registers, masked, tokens_masked):
    model = build(kind, num_registers=registers, mask_token=True)
    x = grids()
    mask = holes() if masked else None
    token_mask = chosen() if tokens_masked else None
    with torch.no_grad():
        cls, patches = model.forward_tokens(x, mask, token_mask)
        ref_cls, ref_cells = reference_tokens(model, kind, x, mask, token_mask)
    assert cls.shape == (3, 24) and patches.shape == (3, 30, 24)
    present = torch.ones(3, 5, 6, dtype=torch.bool) if mask is None else mask
    torch.testing.assert_close(cls, ref_cls, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(patches[present.flatten(1)], ref_cells, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # forward = forward_tokens[0], without a token mask
        torch.testing.assert_close(model(x, mask), model.forward_tokens(x, mask)[0])


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
def test_defaults_add_no_parameter_and_draw_the_same_weights(kind):
    plain = build(kind, perturb=False)
    explicit = build(kind, perturb=False, num_registers=0, mask_token=False)
    assert plain.register_tokens is None and plain.mask_token is None
    assert not {'register_tokens', 'mask_token'} & set(plain.state_dict())
    # The new parameters are created after the others: with them the rest is unchanged.
    full = build(kind, perturb=False, num_registers=2, mask_token=True)
    assert set(full.state_dict()) - set(plain.state_dict()) == {'register_tokens',
                                                                'mask_token'}
    for key, value in plain.state_dict().items():
        assert torch.equal(value, explicit.state_dict()[key])
        assert torch.equal(value, full.state_dict()[key]), key
    assert full.register_tokens.shape == (1, 2, 24) and full.mask_token.shape == (1, 1, 24)


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
def test_registers_change_the_output_and_influence_cls(kind):
    x, mask = grids(), holes()
    model = build(kind, num_registers=2)
    plain = build(kind)
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if k != 'register_tokens'})
    with torch.no_grad():
        out = model(x, mask)
        assert not torch.allclose(out, plain(x, mask), atol=1e-4)
        model.register_tokens.add_(torch.randn_like(model.register_tokens))
        assert not torch.allclose(model(x, mask), out, atol=1e-4)


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
def test_masked_cells_inputs_and_holes_do_not_reach_the_outputs(kind):
    model = build(kind, num_registers=2, mask_token=True)
    x, mask, token_mask = grids(), holes(), chosen()
    other = x.clone()
    other[token_mask[:, None].expand_as(x)] = 7.0  # what the mask token replaces
    other[~mask[:, None].expand_as(x)] = float('nan')  # missing cells
    with torch.no_grad():
        cls, patches = model.forward_tokens(x, mask, token_mask)
        cls2, patches2 = model.forward_tokens(other, mask, token_mask)
    torch.testing.assert_close(cls2, cls)
    torch.testing.assert_close(patches2[mask.flatten(1)], patches[mask.flatten(1)])


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
def test_gradients_reach_the_mask_token_and_registers(kind):
    model = build(kind, num_registers=2, mask_token=True).train()
    cls, patches = model.forward_tokens(grids(), holes(), chosen() & holes())
    (cls.square().sum() + patches.square().sum()).backward()
    assert model.mask_token.grad.abs().sum() > 0
    assert model.register_tokens.grad.abs().sum() > 0


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
def test_token_mask_without_mask_token_and_bad_shapes_are_refused(kind):
    model = build(kind)
    with pytest.raises(ValueError, match='mask_token=True'):
        model.forward_tokens(grids(), token_mask=chosen())
    with pytest.raises(ValueError, match='bool mask of shape'):
        build(kind, mask_token=True).forward_tokens(grids(), token_mask=chosen(h=4))
    with pytest.raises(ValueError, match='>= 0'):
        build(kind, num_registers=-1)


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
def test_checkpoints_without_the_new_tokens_still_load_strictly(kind):
    old = build(kind).state_dict()
    model = build(kind, num_registers=2, mask_token=True)
    tokens = {k: v.clone() for k, v in model.state_dict().items()
              if k in ('register_tokens', 'mask_token')}
    state, fitted = fit_special_tokens(old, model)
    assert sorted(fitted) == ['mask_token', 'register_tokens']
    model.load_state_dict(state, strict=True)
    for key, value in old.items():
        assert torch.equal(model.state_dict()[key], value)
    for key, value in tokens.items():  # kept as initialised
        assert torch.equal(model.state_dict()[key], value)
    assert fit_special_tokens(old, build(kind)) == (old, [])


@pytest.mark.parametrize('kind', ['alibi', 'vit4k'])
def test_a_trained_mask_token_is_dropped_but_registers_are_not(kind):
    trained = build(kind, num_registers=2, mask_token=True).state_dict()
    plain = build(kind, num_registers=2)
    state, fitted = fit_special_tokens(trained, plain)
    assert fitted == ['mask_token']
    plain.load_state_dict(state, strict=True)
    state, fitted = fit_special_tokens(trained, build(kind))  # no registers
    assert fitted == ['mask_token'] and 'register_tokens' in state
    with pytest.raises(RuntimeError, match='register_tokens'):
        build(kind).load_state_dict(state, strict=True)
