import torch
from mmengine.logging import MessageHub
from torch import nn

from slpd_plugin.engine.optimizers import DINOOptimWrapper, dino_param_groups
from slpd_plugin.registry import MODELS


def wrapper_for(model, **kw):
    groups = dino_param_groups(model)
    return DINOOptimWrapper(optimizer=torch.optim.SGD(groups, lr=0.0), **kw)


def head_model():
    return nn.ModuleDict(dict(backbone=nn.Linear(4, 8),
                              head=MODELS.build(dict(type='DINOHead', in_channels=8,
                                                     hidden_dims=16, bottleneck_dims=4,
                                                     out_channels=10))))


def test_param_groups_split_like_dino():
    groups = {g['name']: g for g in dino_param_groups(head_model())}
    assert set(groups) == {'decay', 'no_decay', 'last_layer'}
    assert groups['no_decay']['weight_decay'] == 0.0
    assert all(p.ndim == 1 for p in groups['no_decay']['params'])
    assert all(p.ndim > 1 for p in groups['decay']['params'])
    assert len(groups['last_layer']['params']) == 1  # weight_v; weight_g is frozen


def test_each_tensor_is_clipped_separately():
    model = head_model()
    wrapper = wrapper_for(model, clip_per_tensor=3.0, freeze_last_layer_epochs=0)
    params = [p for p in model.parameters() if p.requires_grad]
    for i, p in enumerate(params):
        p.grad = torch.randn_like(p)
        p.grad *= (10.0 if i % 2 else 0.5) / p.grad.norm()
    wrapper.step()
    for i, p in enumerate(params):
        expected = 3.0 if i % 2 else 0.5
        assert abs(p.grad.norm().item() - expected) < 1e-3


def test_last_layer_gradients_dropped_only_in_first_epochs():
    model = head_model()
    wrapper = wrapper_for(model, clip_per_tensor=None, freeze_last_layer_epochs=1)
    last = model['head'].projection.last_layer.weight_v
    hub = MessageHub.get_current_instance()
    for epoch, dropped in ((0, True), (1, False)):
        hub.update_info('epoch', epoch)
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        wrapper.step()
        assert (last.grad is None) == dropped
        assert model['backbone'].weight.grad is not None
