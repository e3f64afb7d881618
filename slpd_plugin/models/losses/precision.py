"""Losses in strict fp32 whatever the autocast and TF32 settings.

Under ``--amp`` the teacher and student logits arrive in bf16/fp16 and autocast would
run the losses' matrix products (lightly's DINO ``einsum``) in that precision too: the
sum over a batch then loses digits (bf16) or overflows 65504 (fp16, once the per-GPU
batch reaches the thousands). And with TF32 on (our runs' default, for the backbones),
an fp32 product on a GPU rounds its inputs to a 10-bit mantissa. The original DINO
computes its loss in fp32; so do we: autocast off and fp32 matrix products in IEEE fp32
(torch's ``fp32_precision`` setting, the one :func:`~slpd_plugin.engine.launch.set_tf32`
uses too: torch refuses to read a mix of it and the older ``allow_tf32`` flags).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor


@contextmanager
def fp32_region(like: Tensor) -> Iterator[None]:
    """A block in strict fp32: autocast off on ``like``'s device type, no TF32.

    CUDA's fp32 matrix products run in IEEE fp32 inside the block; the previous settings
    come back after. Inputs still need ``.float()``: autocast off does not cast them back.
    """
    matmul = torch.backends.cuda.matmul
    saved = matmul.fp32_precision
    matmul.fp32_precision = 'ieee'
    try:
        with torch.autocast(device_type=like.device.type, enabled=False):
            yield
    finally:
        matmul.fp32_precision = saved
