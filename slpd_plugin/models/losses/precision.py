"""Losses in fp32 whatever the autocast setting.

Under ``--amp`` the teacher and student logits arrive in bf16/fp16 and autocast would
run the losses' matrix products (lightly's DINO ``einsum``) in that precision too: the
sum over a batch then loses digits (bf16) or overflows 65504 (fp16, once the per-GPU
batch reaches the thousands). The original DINO computes its loss in fp32; so do we.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import Tensor


def fp32_region(like: Tensor) -> AbstractContextManager:
    """Autocast switched off on the device type of ``like`` (inputs still need
    ``.float()``: autocast off does not cast them back)."""
    return torch.autocast(device_type=like.device.type, enabled=False)
