import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

from slpd_plugin.engine.launch import prepare_config
from slpd_plugin.engine.optimizers import DINOOptimWrapper, dino_param_groups
from slpd_plugin.registry import MODELS
from tests.utils import TINY_CONFIG, run_train


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


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))


def fp16_wrapper(model, optimizer=None, **kw):
    optimizer = optimizer or torch.optim.SGD(dino_param_groups(model), lr=0.1)
    return DINOOptimWrapper(optimizer=optimizer, autocast_dtype='float16',
                            freeze_last_layer_epochs=0, **kw)


def fp16_loss(wrapper, model, factor=0.01):  # small enough for fp16 at scale 2^16
    x = torch.randn(8, 4, device=next(model.parameters()).device)
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.float16  # the forward really ran under fp16 autocast
    return out.float().mean() * factor


def param_copies(model):
    return [p.detach().clone() for p in model.parameters()]


def changed(model, before):
    return [not torch.equal(p, b) for p, b in zip(model.parameters(), before)]


def test_fp16_step_updates_and_the_scaler_state_round_trips_weights_only(tmp_path):
    model = small_model()
    wrapper = fp16_wrapper(model, loss_scale=dict(init_scale=1024.0, growth_interval=1))
    before = param_copies(model)
    wrapper.update_params(fp16_loss(wrapper, model))
    assert all(changed(model, before))
    state = wrapper.state_dict()
    assert state['loss_scaler']['scale'] == 2048.0  # one good step, growth_interval 1
    torch.save(state, tmp_path / 'optim.pth')
    fresh = fp16_wrapper(small_model())
    fresh.load_state_dict(torch.load(tmp_path / 'optim.pth', weights_only=True))
    assert fresh.loss_scaler.get_scale() == 2048.0
    assert fresh.loss_scaler.get_growth_interval() == 1


def test_bf16_and_fp32_have_no_scaler_and_loss_scale_needs_fp16():
    model = small_model()
    for dtype in (None, 'bfloat16'):
        wrapper = wrapper_for(model, autocast_dtype=dtype)
        assert wrapper.loss_scaler is None and 'loss_scaler' not in wrapper.state_dict()
    with pytest.raises(ValueError, match='loss_scale needs'):
        wrapper_for(model, autocast_dtype='bfloat16', loss_scale=512.0)


@pytest.mark.parametrize('fused', [False, True])  # SGD: checked on the host; AdamW: in-kernel
def test_fp16_step_with_inf_gradients_is_skipped_and_the_scale_shrinks(fused):
    model = small_model()
    optimizer = (torch.optim.AdamW(model.parameters(), lr=0.1, fused=True) if fused
                 else torch.optim.SGD(model.parameters(), lr=0.1))
    wrapper = fp16_wrapper(model, optimizer)
    scale = wrapper.loss_scaler.get_scale()
    before = param_copies(model)
    wrapper.update_params(fp16_loss(wrapper, model, factor=float('inf')))
    assert not any(changed(model, before))
    assert wrapper.loss_scaler.get_scale() == scale / 2
    wrapper.update_params(fp16_loss(wrapper, model))
    assert all(changed(model, before))
    assert wrapper.loss_scaler.get_scale() == scale / 2


def test_fp16_clipping_acts_on_unscaled_gradients():
    model, reference = small_model(), small_model()
    wrapper = fp16_wrapper(model, clip_per_tensor=3.0, loss_scale=256.0)
    torch.manual_seed(1)
    wrapper.backward(fp16_loss(wrapper, model, factor=12.0))
    torch.manual_seed(1)
    fp16_loss(wrapper, reference, factor=12.0).backward()  # the same loss, unscaled
    true_norms = [p.grad.norm().item() for p in reference.parameters()]
    assert min(true_norms) < 3.0 < max(true_norms)
    wrapper.step()
    for p, true_norm in zip(model.parameters(), true_norms):
        assert p.grad.norm().item() == pytest.approx(min(true_norm, 3.0), rel=1e-2)
    assert wrapper.loss_scaler.get_scale() == 256.0  # static


@pytest.mark.slow
def test_fp16_training_run_checkpoints_the_scaler_and_resumes_it(tmp_path):
    # fp16 has no fast CPU kernels: 3 slides, 2 steps per epoch are enough for the scaler
    store = (f'train_dataloader.dataset.store={tmp_path / "store"}',
             'train_dataloader.dataset.generate.num_slides=3')
    first, resumed = tmp_path / 'first', tmp_path / 'resumed'
    run_train(first, *store, 'train_cfg.max_epochs=1', extra_args=('--amp', 'fp16'))
    ckpt = torch.load(first / 'epoch_1.pth', weights_only=True)
    assert ckpt['optimizer']['loss_scaler']['scale'] > 0
    # a scale no fresh scaler reaches (65536 / 2^k) and a growth interval of our own
    ckpt['optimizer']['loss_scaler'].update(scale=3000.0, growth_interval=12345)
    resumed.mkdir()
    torch.save(ckpt, resumed / 'epoch_1.pth')
    run_train(resumed, *store, extra_args=('--amp', 'fp16', '--resume',
                                          str(resumed / 'epoch_1.pth')))
    scaler = torch.load(resumed / 'epoch_2.pth', weights_only=True)['optimizer']['loss_scaler']
    assert scaler['growth_interval'] == 12345
    assert scaler['scale'] in [3000.0 / 2 ** k for k in range(20)]


@pytest.mark.cuda
def test_fp16_on_cuda_with_fused_adamw_steps_without_a_host_sync():
    model = small_model().cuda()
    wrapper = fp16_wrapper(model, torch.optim.AdamW(model.parameters(), lr=0.1, fused=True))
    wrapper.update_params(fp16_loss(wrapper, model))  # creates the optimizer state
    before = param_copies(model)
    wrapper.backward(fp16_loss(wrapper, model))
    torch.cuda.set_sync_debug_mode('error')  # GradScaler's .item() would raise here
    try:
        wrapper.step()
    finally:
        torch.cuda.set_sync_debug_mode('default')
    assert all(changed(model, before))
    wrapper.zero_grad()
    before = param_copies(model)
    wrapper.update_params(fp16_loss(wrapper, model, factor=float('inf')))
    assert not any(changed(model, before))
    assert wrapper.loss_scaler.get_scale() == 2.0 ** 15


@pytest.mark.parametrize('amp, dtype', [(True, 'bfloat16'), ('bf16', 'bfloat16'),
                                        ('fp16', 'float16'), (None, None)])
def test_prepare_config_maps_amp_to_the_autocast_dtype(amp, dtype, tmp_path):
    cfg = prepare_config(str(TINY_CONFIG), work_dir=str(tmp_path), amp=amp)
    assert cfg.optim_wrapper.get('autocast_dtype') == dtype
    with pytest.raises(ValueError, match='amp must be one of'):
        prepare_config(str(TINY_CONFIG), work_dir=str(tmp_path), amp='fp8')


def grads_of_mixed_norms(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    for i, p in enumerate(params):
        p.grad = torch.randn(p.shape, generator=g) * (0.01 if i % 3 == 0 else 7.0)
    return params


def test_per_tensor_clipping_equals_clipping_each_tensor_on_its_own():
    model, reference = head_model(), head_model()
    reference.load_state_dict(model.state_dict())
    params = grads_of_mixed_norms(model)
    ref_params = grads_of_mixed_norms(reference)
    for p in ref_params:  # torch's own clipping, one tensor at a time: same formula
        torch.nn.utils.clip_grad_norm_([p], 3.0)
    wrapper_for(model, clip_per_tensor=3.0, freeze_last_layer_epochs=0).step()
    assert any(p.grad.norm() < 2.9 for p in params) and any(
        abs(p.grad.norm() - 3.0) < 1e-3 for p in params)  # both cases occur
    for p, r in zip(params, ref_params):
        torch.testing.assert_close(p.grad, r.grad, rtol=1e-7, atol=0)


def test_clip_coefficients_are_computed_once_for_all_tensors():
    model = head_model()
    params = grads_of_mixed_norms(model)
    wrapper = wrapper_for(model, clip_per_tensor=3.0, freeze_last_layer_epochs=0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        wrapper.step()
    calls = {e.key: e.count for e in prof.key_averages()}
    assert len(params) > 5
    assert calls.get('aten::_foreach_norm') == 1 and calls.get('aten::_foreach_mul_') == 1
    assert calls.get('aten::clamp_', 0) + calls.get('aten::clamp', 0) == 1


@pytest.mark.cuda
def test_cuda_clipping_launches_about_one_kernel_per_tensor_not_four():
    model = head_model().cuda()
    params = grads_of_mixed_norms(model)
    for p in params:
        p.grad = p.grad.cuda()
    wrapper = wrapper_for(model, clip_per_tensor=3.0, freeze_last_layer_epochs=0)
    wrapper._clip_each_tensor([p.grad for p in params])  # warm-up
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        wrapper._clip_each_tensor([p.grad for p in params])
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    assert len(kernels) <= len(params) + 8, [e.name for e in kernels]
