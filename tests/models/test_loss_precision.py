"""The losses are computed in fp32 whatever the autocast setting."""
import pytest
import torch

from slpd_plugin.models.losses import prototype_cross_entropy
from slpd_plugin.registry import MODELS

P, B = 256, 64
AUTOCAST = [torch.bfloat16, torch.float16]


def logits(n, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(B, P, generator=g) for _ in range(n)]


def dino_loss(teacher, student, dtype=None):
    loss_fn = MODELS.build(dict(type='DINOLoss', output_dim=P))
    loss_fn.center.normal_(generator=torch.Generator().manual_seed(3))
    with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        loss = loss_fn(teacher, student, teacher_temp=0.04)
    return loss, loss_fn.center


@pytest.mark.parametrize('dtype', AUTOCAST)
def test_dino_loss_under_autocast_equals_the_fp32_loss(dtype):
    teacher, student = logits(2, 1.0, 0), logits(6, 3.0, 1)
    ref_loss, ref_center = dino_loss(teacher, student)
    loss, center = dino_loss(teacher, student, dtype)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(center, ref_center, rtol=1e-6, atol=0)


@pytest.mark.parametrize('dtype', AUTOCAST)
def test_dino_loss_of_low_precision_logits_is_their_fp32_loss(dtype):
    teacher = [t.to(dtype) for t in logits(2, 1.0, 4)]
    student = [s.to(dtype) for s in logits(6, 3.0, 5)]
    ref_loss, _ = dino_loss([t.float() for t in teacher], [s.float() for s in student])
    loss, _ = dino_loss(teacher, student, dtype)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)


@pytest.mark.parametrize('dtype', AUTOCAST)
def test_prototype_loss_under_autocast_equals_the_fp32_loss(dtype):
    target, student = logits(1, 1.0, 6)[0], logits(6, 3.0, 7)
    valid = torch.arange(B) % 3 != 0
    center = 0.1 * logits(1, 1.0, 8)[0][:1]
    args = (target, valid, student, center, 0.04, 0.1)
    ref = prototype_cross_entropy(*args)
    with torch.autocast('cpu', dtype=dtype):
        loss = prototype_cross_entropy(*args)
        low = prototype_cross_entropy(target.to(dtype), valid,
                                      [s.to(dtype) for s in student], center, 0.04, 0.1)
    assert loss.dtype == low.dtype == torch.float32
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=0)
    ref_low = prototype_cross_entropy(target.to(dtype).float(), valid,
                                      [s.to(dtype).float() for s in student], center, 0.04, 0.1)
    torch.testing.assert_close(low, ref_low, rtol=1e-6, atol=0)
