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
                data_samples=dict(index=torch.arange(n), slide_index=torch.zeros(n, dtype=torch.long),
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
    data = model.data_preprocessor(batch(), training=True)
    views = data['inputs']
    loss = model(views, data['data_samples'], mode='loss')['loss_dino']
    with torch.no_grad():
        t = [model.teacher.head(model.teacher.backbone(v)) for v in views[:2]]
        s = [model.student.head(model.student.backbone(v)) for v in views]
    terms = [-(F.softmax(t[i] / 0.04, -1) * F.log_softmax(s[v] / 0.1, -1)).sum(-1).mean()
             for i in range(2) for v in range(len(s)) if v != i]
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
