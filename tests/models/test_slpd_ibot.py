"""SLPD with an iBOT patch loss: block-masked global views for the student, the loss on
the masked cells against an explicit reference, a training step on CPU (ALiBiViT and
ViT4K, 8x8 grids, with and without prototype terms, shared or separate patch head)."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from slpd_plugin.engine.optimizers import dino_param_groups
from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.registry import MODELS

P, Z, B = 32, 8, 4
HEAD = dict(type='DINOHead', hidden_dims=16, bottleneck_dims=Z, out_channels=P)
BACKBONES = {
    'alibi': dict(type='ALiBiViT', arch=dict(embed_dims=24, depth=1, num_heads=2),
                  in_channels=8, num_registers=2),
    'vit4k': dict(type='ViT4K', arch=dict(embed_dims=24, depth=1, num_heads=2),
                  in_channels=8, pos_grid_size=6),
}


def build(backbone='alibi', prototypes=False, patch_head=None, **kw):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SLPD', backbone=BACKBONES[backbone], head=HEAD,
        data_preprocessor=dict(type='GridMultiCropPreprocessor', global_size=6,
                               num_local=2, local_size=4),
        loss=dict(type='DINOLoss', output_dim=P),
        prototype_head=dict(type='PrototypeDistillHead') if prototypes else None,
        patch_loss=dict(type='IBOTPatchLoss'),
        mask_generator=dict(type='BlockMaskGenerator', mask_probability=0.75),
        patch_head=patch_head, **kw))
    model.teacher_temp = model.teacher_patch_temp = 0.04
    if prototypes:  # two slides of two regions, each its own prototype
        g = torch.Generator().manual_seed(1)
        model.bank = PrototypeBank(
            centroids=F.normalize(torch.randn(2, 2, Z, generator=g), dim=-1),
            valid=torch.tensor([True, True]), assignments=torch.tensor([0, 1, 0, 1]),
            neighbors=torch.tensor([[1], [0]]), matched=torch.zeros(2, 2, 1).long(),
            neighbor_similarity=torch.zeros(2, 1), inertia=torch.zeros(2),
            cluster_sizes=torch.ones(2, 2, dtype=torch.long))
    return model


def batch(holes=True):
    g = torch.Generator().manual_seed(2)
    out = dict(inputs=torch.randn(B, 8, 8, 8, generator=g),
               data_samples=dict(index=torch.arange(B), region_index=torch.arange(B),
                                 slide_index=torch.tensor([0, 0, 1, 1])))
    if holes:
        out['masks'] = torch.rand(B, 8, 8, generator=g) > 0.2
    return out


@pytest.mark.parametrize('backbone', ['alibi', 'vit4k'])
@pytest.mark.parametrize('prototypes', [False, True], ids=['dino', 'slpd'])
@pytest.mark.parametrize('separate_head', [False, True], ids=['shared', 'separate'])
def test_training_step_is_finite_and_leaves_the_teacher_alone(backbone, prototypes,
                                                              separate_head):
    model = build(backbone, prototypes, patch_head=HEAD if separate_head else None)
    assert ('patch_head' in model.student) == ('patch_head' in model.teacher) == separate_head
    opt = OptimWrapper(torch.optim.SGD(dino_param_groups(model.student), lr=0.1))
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student = {k: v.clone() for k, v in model.student.state_dict().items()}
    log = model.train_step(batch(), opt)
    expected = {'loss', 'loss_dino', 'loss_ibot'} | (
        {'loss_intra', 'loss_inter'} if prototypes else set())
    assert set(log) == expected and all(torch.isfinite(v) for v in log.values())
    assert log['loss_ibot'] > 0
    assert all(torch.equal(v, model.teacher.state_dict()[k]) for k, v in teacher.items())
    assert all(p.grad is None for p in model.teacher.parameters())  # no teacher gradients
    assert not torch.equal(student['backbone.mask_token'],
                           model.student.state_dict()['backbone.mask_token'])
    if separate_head:  # its last layer is in the group frozen in the first epoch
        names = [n for n, p in model.student.named_parameters()
                 if any(p is q for g in dino_param_groups(model.student)
                        if g['name'] == 'last_layer' for q in g['params'])]
        assert any(n.startswith('patch_head.projection.last_layer') for n in names)


@pytest.mark.parametrize('backbone', ['alibi', 'vit4k'])
@pytest.mark.parametrize('separate_head', [False, True], ids=['shared', 'separate'])
def test_loss_ibot_matches_an_explicit_reference(backbone, separate_head):
    model = build(backbone, patch_head=HEAD if separate_head else None).eval()
    model.teacher_patch_temp = 0.06
    with torch.no_grad():  # the teacher differs from the student, so both matter
        for p in model.teacher.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.patch_loss.center.center = torch.randn(1, P)
    center = model.patch_loss.center.center.clone()
    data = model.data_preprocessor(batch(), training=True)
    views, masks = data['inputs'], data['masks']
    torch.manual_seed(7)
    losses = model.loss(views, data['data_samples'], masks)
    # the same token masks: the generator is the first to draw in SLPD.loss
    tissue = torch.cat(masks[:2])
    torch.manual_seed(7)
    token_mask = model.mask_generator(tissue)
    assert token_mask.any() and not (token_mask & ~tissue).any()
    grids = torch.cat(views[:2])
    with torch.no_grad():
        head = 'patch_head' if separate_head else 'head'
        t_cells = model.teacher.backbone.forward_tokens(grids, tissue)[1]
        s_cells = model.student.backbone.forward_tokens(grids, tissue, token_mask)[1]
        expected = []
        for g in range(grids.shape[0]):
            cells = token_mask[g].flatten().nonzero().flatten().tolist()
            ce = [-(F.softmax((model.teacher[head](t_cells[g, c]) - center[0]) / 0.06, -1)
                    * F.log_softmax(model.student[head](s_cells[g, c]) / 0.1, -1)).sum()
                  for c in cells]
            expected.append(torch.stack(ce).mean() if ce else torch.tensor(0.0))
    torch.testing.assert_close(losses['loss_ibot'], torch.stack(expected).mean(),
                               atol=1e-5, rtol=1e-5)


def test_gradients_reach_the_students_mask_token_only_through_masked_views():
    model = build(prototypes=True)
    data = model.data_preprocessor(batch(), training=True)
    torch.manual_seed(3)
    losses = model.loss(data['inputs'], data['data_samples'], data['masks'])
    losses['loss_ibot'].backward()
    assert model.student.backbone.mask_token.grad.abs().sum() > 0
    assert model.teacher.backbone.mask_token.grad is None
    # the DINO term also sees the masked global views through the student's CLS
    model.zero_grad()
    torch.manual_seed(3)
    model.loss(data['inputs'], data['data_samples'], data['masks'])['loss_dino'].backward()
    assert model.student.backbone.mask_token.grad.abs().sum() > 0


def test_without_tissue_masks_every_cell_may_be_masked():
    model = build('vit4k')
    opt = OptimWrapper(torch.optim.SGD(dino_param_groups(model.student), lr=0.1))
    log = model.train_step(batch(holes=False), opt)
    assert torch.isfinite(log['loss_ibot'])


def test_clear_errors_for_a_backbone_without_patch_tokens_and_a_lone_patch_head():
    with pytest.raises(ValueError, match="patch_loss needs a backbone that returns patch "
                                         "tokens.*'PooledMLP'"):
        MODELS.build(dict(type='SLPD', head=HEAD, patch_loss=dict(type='IBOTPatchLoss'),
                          backbone=dict(type='PooledMLP', in_channels=8, embed_dims=24,
                                        hidden_dims=32)))
    with pytest.raises(ValueError, match='need model.patch_loss'):
        MODELS.build(dict(type='SLPD', head=HEAD, patch_head=HEAD,
                          backbone=BACKBONES['alibi']))


def test_without_patch_loss_nothing_changes():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='SLPD', head=HEAD, backbone=BACKBONES['alibi']))
    assert model.patch_loss is None and not hasattr(model, 'teacher_patch_temp')
    assert not any('mask_token' in k or 'patch' in k for k in model.state_dict())


def test_pretrained_backbone_without_a_mask_token_loads(tmp_path):
    plain = MODELS.build(BACKBONES['alibi'])
    torch.save(plain.state_dict(), tmp_path / 'backbone.pth')
    cfg = dict(BACKBONES['alibi'], init_cfg=dict(type='Pretrained',
                                                 checkpoint=str(tmp_path / 'backbone.pth')))
    torch.manual_seed(0)
    model = MODELS.build(dict(type='SLPD', head=HEAD, backbone=cfg,
                              patch_loss=dict(type='IBOTPatchLoss')))
    model.init_weights()
    for key, value in plain.state_dict().items():
        assert torch.equal(model.student.backbone.state_dict()[key], value)
        assert torch.equal(model.teacher.backbone.state_dict()[key], value)


def test_a_trained_teacher_backbone_loads_into_a_config_without_patch_loss():
    from slpd_plugin.checkpoints.reading import build_model
    trained = build()
    config = Config(dict(model=dict(type='SLPD', head=HEAD, backbone=BACKBONES['alibi'])))
    model = build_model(dict(state_dict=trained.state_dict()), 'trained.pth', config,
                        encoder='teacher')
    x = torch.randn(2, 8, 8, 8)
    torch.testing.assert_close(model.embed(x), trained.embed(x))
