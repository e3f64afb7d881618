import pytest
import torch
import torch.nn.functional as F

from slpd_plugin.registry import MODELS


def tiny_cfg(backbone=None, **kw):
    return dict(
        type='SLPD',
        data_preprocessor=dict(type='GridMultiCropPreprocessor', num_local=3),
        backbone=backbone or dict(type='ViT4K', in_channels=16, depth=1, drop_path_rate=0.1),
        head=dict(type='DINOHead', hidden_dims=32, bottleneck_dims=16, out_channels=64),
        loss=dict(type='DINOLoss', output_dim=64), **kw)


def batch(n=6, c=16):
    return dict(inputs=torch.randn(n, c, 16, 16).half(),
                data_samples=dict(index=torch.arange(n),
                                  slide_index=torch.zeros(n, dtype=torch.long),
                                  region_index=torch.arange(n)))


def test_teacher_starts_as_student_without_gradients_or_drop_path():
    model = MODELS.build(tiny_cfg())
    for (ns, ps), (nt, pt) in zip(model.student.named_parameters(),
                                  model.teacher.named_parameters()):
        assert ns == nt and torch.equal(ps, pt)
        assert ps.requires_grad == (not ns.endswith('weight_g'))  # frozen weight norm
        assert not pt.requires_grad
    assert model.student.backbone.blocks[0].drop_path.p == 0.0  # linspace(0, 0.1, 1)
    deep = MODELS.build(tiny_cfg(dict(type='ViT4K', in_channels=16, depth=3)))
    assert deep.student.backbone.blocks[2].drop_path.p == pytest.approx(0.1)
    assert all(b.drop_path.p == 0.0 for b in deep.teacher.backbone.blocks)


def test_dino_loss_matches_plain_reference():
    model = MODELS.build(tiny_cfg()).eval()  # no dropout: deterministic forwards
    model.teacher_temp = 0.04
    from mmengine.optim import OptimWrapper
    opt = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0))
    model.train_step(batch(), opt)  # the student and the centre move off their start
    for part in ('backbone', 'head'):
        assert any(not torch.equal(a, b) for a, b in zip(
            getattr(model.student, part).parameters(), getattr(model.teacher, part).parameters()))
    center = model.loss_module.center.clone()
    assert center.abs().max() > 0
    data = model.data_preprocessor(batch(), training=True)
    views = data['inputs']
    loss = model(views, data['data_samples'], mode='loss')['loss_dino']
    with torch.no_grad():
        t = [model.teacher.head(model.teacher.backbone(v)) for v in views[:2]]
        s = [model.student.head(model.student.backbone(v)) for v in views]
    terms = [-(F.softmax((t[i] - center[0]) / 0.04, -1) * F.log_softmax(s[v] / 0.1, -1))
             .sum(-1).mean() for i in range(2) for v in range(len(s)) if v != i]
    torch.testing.assert_close(loss, torch.stack(terms).mean())


def test_train_step_updates_student_only_and_swapped_backbone_trains():
    cfg = tiny_cfg(dict(type='PooledMLP', in_channels=16, embed_dims=24, hidden_dims=32))
    model = MODELS.build(cfg)
    assert model.student.head.in_channels == 24  # taken from the backbone
    from mmengine.optim import OptimWrapper
    opt = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1))
    before_s = [p.clone() for p in model.student.parameters()]
    before_t = [p.clone() for p in model.teacher.parameters()]
    for _ in range(2):
        log = model.train_step(batch(), opt)
    assert torch.isfinite(log['loss'])
    assert any(not torch.equal(a, b) for a, b in zip(before_s, model.student.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before_t, model.teacher.parameters()))


def test_tensor_mode_embeds_with_teacher_and_bad_mode_raises():
    model = MODELS.build(tiny_cfg()).eval()
    x = torch.randn(3, 16, 16, 16)
    assert model(x, mode='tensor').shape == (3, 192)
    z = model.embed(x, output='z')
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(3))
    with pytest.raises(RuntimeError, match='predict'):
        model(x, mode='predict')


def test_head_dims_must_match_backbone():
    cfg = tiny_cfg()
    cfg['head']['in_channels'] = 100
    with pytest.raises(ValueError, match='in_channels=100.*embed_dims=192'):
        MODELS.build(cfg)


def test_compile_flag_keeps_state_dict_keys_and_outputs():
    plain = MODELS.build(tiny_cfg()).eval()
    compiled = MODELS.build(dict(tiny_cfg(), compile=dict(backend='eager'))).eval()
    assert list(compiled.state_dict()) == list(plain.state_dict())
    compiled.load_state_dict(plain.state_dict())
    x = torch.randn(2, 16, 14, 14)
    torch.testing.assert_close(compiled.embed(x), plain.embed(x))


class _RandomDropPath(torch.nn.Module):
    """A user's stochastic depth (rate in ``drop_prob``, as timm's DropPath)."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if not self.training or self.drop_prob == 0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.dim() - 1))) >= self.drop_prob
        return x * keep / (1 - self.drop_prob)


@MODELS.register_module(force=True)
class DropoutHeavyNet(torch.nn.Module):
    """A user-registered backbone with every kind of stochastic layer: nn.Dropout,
    attention dropout, a custom drop-path module and functional dropout from an
    argument."""

    def __init__(self, in_channels: int = 16, embed_dims: int = 24, dropout: float = 0.5,
                 attn_dropout: float = 0.5, drop_path: float = 0.5,
                 feature_drop: float = 0.5) -> None:
        super().__init__()
        self.embed_dims, self.feature_drop = embed_dims, feature_drop
        self.proj = torch.nn.Sequential(torch.nn.Linear(in_channels, embed_dims),
                                        torch.nn.Dropout(dropout))
        self.attn = torch.nn.MultiheadAttention(embed_dims, 2, dropout=attn_dropout,
                                                batch_first=True)
        self.path = _RandomDropPath(drop_path)

    def forward(self, x):
        tokens = self.proj(x.flatten(2).transpose(1, 2))  # (B, HW, E)
        tokens = tokens + self.path(self.attn(tokens, tokens, tokens)[0])
        return F.dropout(tokens.mean(1), self.feature_drop, self.training)


def test_teacher_of_any_backbone_holds_no_stochastic_layer():
    model = MODELS.build(tiny_cfg(dict(type='DropoutHeavyNet'))).train()
    x = torch.randn(4, 16, 14, 14)
    with torch.no_grad():
        assert not torch.equal(model.student.backbone(x), model.student.backbone(x))
        first = model.teacher.head(model.teacher.backbone(x))
        assert torch.equal(first, model.teacher.head(model.teacher.backbone(x)))
    teacher = model.teacher.backbone
    assert teacher.proj[1].p == teacher.attn.dropout == teacher.path.drop_prob == 0.0
    assert teacher.feature_drop == 0.0
    assert model.student.backbone.proj[1].p == 0.5  # the student keeps its regulariser


def test_unknown_drop_module_in_teacher_is_refused():
    from slpd_plugin.models.algorithms.teacher import disable_stochastic_layers

    class DropTokens(torch.nn.Module):
        keep = 0.5

    with pytest.raises(ValueError, match=r"'tokens' \(DropTokens\).*cannot be switched off"):
        disable_stochastic_layers(torch.nn.ModuleDict(dict(tokens=DropTokens())))


def _vit_weights(seed, c=16):
    net = MODELS.build(dict(type='ViT4K', in_channels=c, depth=1))
    torch.manual_seed(seed)
    for p in net.parameters():
        torch.nn.init.normal_(p)
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize('layout', ['hipt', 'plugin', 'bare'])
def test_backbone_pretrained_init_cfg_loads_into_student_and_teacher(layout, tmp_path):
    weights = _vit_weights(1)
    path = tmp_path / f'{layout}.pth'
    if layout == 'hipt':  # HIPT/DINO: {'teacher': {'backbone.*', 'head.*'}}
        torch.save({'teacher': {**{f'backbone.{k}': v for k, v in weights.items()},
                                'head.mlp.0.weight': torch.zeros(3, 3)}}, path)
    elif layout == 'plugin':  # a checkpoint of tools/train.py: its teacher backbone
        torch.save({'state_dict': {**{f'teacher.backbone.{k}': v for k, v in weights.items()},
                                   'student.backbone.cls_token': torch.zeros(1)}}, path)
    else:
        torch.save({f'module.{k}': v for k, v in weights.items()}, path)
    backbone = dict(type='ViT4K', in_channels=16, depth=1,
                    init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model = MODELS.build(tiny_cfg(backbone))
    assert not torch.equal(model.student.backbone.cls_token, weights['cls_token'])
    model.init_weights()
    for encoder in (model.student, model.teacher):
        state = encoder.backbone.state_dict()
        assert all(torch.equal(state[k], v) for k, v in weights.items())
    for (_, ps), (_, pt) in zip(model.student.named_parameters(),
                                model.teacher.named_parameters()):
        assert torch.equal(ps, pt)


def test_backbone_pretrained_of_another_shape_is_a_clear_error(tmp_path):
    from slpd_plugin.utils.weights import CheckpointError
    path = tmp_path / 'other.pth'
    torch.save({'teacher': {f'backbone.{k}': v for k, v in _vit_weights(0, c=8).items()}},
               path)
    backbone = dict(type='ViT4K', in_channels=16, depth=1,
                    init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model = MODELS.build(tiny_cfg(backbone))
    with pytest.raises(CheckpointError, match=r'other\.pth: model\.backbone\.init_cfg '
                                              r'Pretrained weights do not fit ViT4K.*phi'):
        model.init_weights()
    missing = MODELS.build(tiny_cfg(dict(backbone, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'missing.pth')))))
    with pytest.raises(FileNotFoundError, match='missing.pth: pretrained backbone weights '
                                                'not found'):
        missing.init_weights()
