"""The two attention implementations agree with masks and biases, and a key that may
not be attended changes nothing."""
from __future__ import annotations

import pytest
import torch

from slpd_plugin.models.backbones.vit_blocks import Attention


@pytest.fixture
def pair():
    torch.manual_seed(0)
    sdpa, math = Attention(16, 4, 'sdpa'), Attention(16, 4, 'math')
    math.load_state_dict(sdpa.state_dict())
    return sdpa, math


KEEP = torch.tensor([[1, 1, 0, 1, 1], [1, 0, 0, 1, 1]], dtype=torch.bool)[:, None, None]


@pytest.mark.parametrize('mask', [None, KEEP, torch.randn(1, 4, 5, 5)],
                         ids=['none', 'bool', 'bias'])
def test_sdpa_equals_explicit_softmax(pair, mask):
    x = torch.randn(2, 5, 16)
    sdpa, math = pair
    torch.testing.assert_close(sdpa(x, mask), math(x, mask), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('impl', [0, 1])
def test_masked_keys_do_not_change_the_kept_tokens(pair, impl):
    x = torch.randn(2, 5, 16)
    other = x.clone()
    other[~KEEP[:, 0, 0]] = 1e3  # whatever the masked tokens hold
    attn = pair[impl]
    kept = KEEP[:, 0, 0]
    torch.testing.assert_close(attn(x, KEEP)[kept], attn(other, KEEP)[kept])
    assert not torch.allclose(attn(x)[kept], attn(other)[kept])  # unmasked: they count
