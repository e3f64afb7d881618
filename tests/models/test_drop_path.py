"""DropPath: per-sample stochastic depth, in one pass over the activation."""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from slpd_plugin.models.backbones.vit_blocks import DropPath


class FullSizeOps(TorchDispatchMode):
    """Names of the ops whose output is as large as ``numel`` (passes over x)."""

    def __init__(self, numel):
        super().__init__()
        self.numel, self.ops = numel, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.numel() == self.numel:
            self.ops.append(func.overloadpacket.__name__)
        return out


def test_drop_path_equals_the_formula_in_one_pass():
    p = 0.3
    x = torch.randn(64, 5, 8)
    torch.manual_seed(0)
    keep = torch.empty(64, 1, 1).bernoulli_(1 - p)  # the same draws the module makes
    expected = x * keep / (1 - p)
    layer = DropPath(p).train()
    torch.manual_seed(0)
    with FullSizeOps(x.numel()) as ops:
        out = layer(x)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=0)
    assert ops.ops == ['mul']  # formerly mul then div
    dropped = (out == 0).flatten(1).all(1)
    assert 0 < dropped.sum() < 64
    assert layer.eval()(x) is x
