import pytest
import torch
import torch.nn.functional as F

from slpd_plugin.models import ViT4K
from slpd_plugin.registry import MODELS


def hipt_vit4k_xs_state_dict(channels: int = 384) -> dict[str, torch.Tensor]:
    """Random weights in the key layout and shapes of HIPT's vit4k_xs teacher backbone."""
    e, hidden = 192, 768
    shapes = {'cls_token': (1, 1, e), 'pos_embed': (1, 14 * 14 + 1, e),
              'phi.0.weight': (e, channels), 'phi.0.bias': (e,),
              'norm.weight': (e,), 'norm.bias': (e,)}
    for i in range(6):
        b = f'blocks.{i}.'
        shapes.update({b + 'norm1.weight': (e,), b + 'norm1.bias': (e,),
                       b + 'attn.qkv.weight': (3 * e, e), b + 'attn.qkv.bias': (3 * e,),
                       b + 'attn.proj.weight': (e, e), b + 'attn.proj.bias': (e,),
                       b + 'norm2.weight': (e,), b + 'norm2.bias': (e,),
                       b + 'mlp.fc1.weight': (hidden, e), b + 'mlp.fc1.bias': (hidden,),
                       b + 'mlp.fc2.weight': (e, hidden), b + 'mlp.fc2.bias': (e,)})
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}


def reference_forward(sd: dict, x: torch.Tensor, heads: int = 6) -> torch.Tensor:
    """Spec section 2 written out plainly: the CLS output of HIPT's ViT-4K."""
    b, c, w, h = x.shape
    tok = F.gelu(x.flatten(2).transpose(1, 2) @ sd['phi.0.weight'].T + sd['phi.0.bias'])
    tok = torch.cat([sd['cls_token'].expand(b, -1, -1), tok], 1)
    pos = sd['pos_embed']
    if (w, h) != (14, 14):
        grid = pos[:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((w + 0.1) / 14, (h + 0.1) / 14),
                             mode='bicubic')
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, w * h, -1)], 1)
    tok = tok + pos
    e = tok.shape[-1]
    for i in range(6):
        p = lambda n: sd[f'blocks.{i}.{n}']  # noqa: E731
        y = F.layer_norm(tok, (e,), p('norm1.weight'), p('norm1.bias'), eps=1e-6)
        q, k, v = (y @ p('attn.qkv.weight').T + p('attn.qkv.bias')).reshape(
            b, -1, 3, heads, e // heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / (e // heads) ** 0.5, -1) @ v
        tok = tok + att.transpose(1, 2).reshape(b, -1, e) @ p('attn.proj.weight').T \
            + p('attn.proj.bias')
        y = F.layer_norm(tok, (e,), p('norm2.weight'), p('norm2.bias'), eps=1e-6)
        y = F.gelu(y @ p('mlp.fc1.weight').T + p('mlp.fc1.bias'))
        tok = tok + y @ p('mlp.fc2.weight').T + p('mlp.fc2.bias')
    return F.layer_norm(tok, (e,), sd['norm.weight'], sd['norm.bias'], eps=1e-6)[:, 0]


@pytest.mark.parametrize('side', [14, 6, 16])
def test_output_shapes(side):
    model = ViT4K(arch='xs').eval()
    assert model(torch.randn(3, 384, side, side)).shape == (3, 192)


def test_in_channels_1024_and_larger_preset():
    model = ViT4K(arch='s', in_channels=1024).eval()
    assert model(torch.randn(2, 1024, 16, 16)).shape == (2, 384)


def test_wrong_channel_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r'\(B, 384, H, W\).*\(2, 512, 16, 16\)'):
        ViT4K()(torch.randn(2, 512, 16, 16))


def test_unknown_arch_names_the_options():
    with pytest.raises(ValueError, match="'xl'.*'b', 's', 'xs'"):
        ViT4K(arch='xl')


@pytest.mark.parametrize('side', [14, 6, 16])
def test_hipt_state_dict_loads_strictly_and_reproduces_reference(side):
    sd = hipt_vit4k_xs_state_dict()
    model = ViT4K(arch='xs', drop_path_rate=0.0).eval()
    model.load_state_dict(sd, strict=True)
    x = torch.randn(2, 384, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(sd, x), atol=1e-5, rtol=1e-4)


def test_sdpa_matches_explicit_softmax_attention():
    fast = ViT4K(arch='xs', attn_impl='sdpa').eval()
    slow = ViT4K(arch='xs', attn_impl='math').eval()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(4, 384, 16, 16)
    with torch.no_grad():
        assert (fast(x) - slow(x)).abs().max().item() < 1e-5


def test_pos_embed_is_untouched_at_14_and_interpolated_elsewhere():
    model = ViT4K()
    assert model.interpolate_pos_encoding(14, 14) is model.pos_embed
    assert model.interpolate_pos_encoding(6, 6).shape == (1, 37, 192)
    assert model.interpolate_pos_encoding(16, 16).shape == (1, 257, 192)


def test_built_from_registry_with_depth_override():
    model = MODELS.build(dict(type='ViT4K', arch='xs', depth=2, in_channels=64))
    assert len(model.blocks) == 2 and model.embed_dims == 192


def test_input_dropout_defaults_to_hipt_drop_rate_0():
    model = ViT4K()
    assert model.phi[2].p == 0.0
    assert ViT4K(drop_rate=0.1).phi[2].p == 0.1


@pytest.mark.parametrize('side', [14, 6, 16])
def test_hipt_weights_reproduce_reference_in_training_mode(side):
    """HIPT's vit4k_xs has no dropout by default: in train mode (no stochastic depth, as
    HIPT's teacher) its output is the same as in eval mode."""
    sd = hipt_vit4k_xs_state_dict()
    model = ViT4K(arch='xs', drop_path_rate=0.0).train()
    model.load_state_dict(sd, strict=True)
    x = torch.randn(2, 384, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(sd, x), atol=1e-5, rtol=1e-4)


def write_hipt_checkpoint(path, sd: dict) -> None:
    """A file in the layout of HIPT's vit4k_xs_dino.pth: the DINO teacher, backbone and
    head, under 'teacher' (only tensors, so it loads weights-only)."""
    head = {'head.mlp.0.weight': torch.zeros(2048, 192), 'head.last_layer.weight_g':
            torch.ones(65536, 1)}
    torch.save({'teacher': {**{f'backbone.{k}': v for k, v in sd.items()}, **head},
                'epoch': 100}, path)


@pytest.mark.parametrize('side', [14, 6])
def test_training_mode_slpd_teacher_with_hipt_weights_gives_hipt_output(side, tmp_path):
    """The paper model's teacher, started from a HIPT checkpoint through
    ``backbone.init_cfg=Pretrained`` and run in training mode, computes HIPT's output."""
    from mmengine.config import Config

    from tests.utils import ROOT
    sd = hipt_vit4k_xs_state_dict()
    write_hipt_checkpoint(tmp_path / 'vit4k_xs_dino.pth', sd)
    cfg = Config.fromfile(ROOT / 'configs' / 'dino4k_lung.py').model
    cfg.head.update(hidden_dims=64, out_channels=128)  # small head; backbone as in the paper
    cfg.loss.output_dim = 128
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'vit4k_xs_dino.pth'))
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    x = torch.randn(2, 384, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.teacher.backbone(x), reference_forward(sd, x),
                                   atol=1e-5, rtol=1e-4)
