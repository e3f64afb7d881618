"""Which attention kernel a step ran, read from the profiler's kernel (or CPU op) names.

SDPA picks a kernel per call: flash (no float bias), memory-efficient (cutlass ``fmha``,
takes a bias), cuDNN, or the math fallback (matmuls and a softmax; no fused kernel).
ALiBiViT's float bias rules flash out; the math kernel is a fallback for both backbones.

Example:
    >>> kind, names = attention_kind(lambda: model(x), torch.device('cuda'))
    >>> kind
    'flash'
"""
from __future__ import annotations

import re
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

_ATTENTION = re.compile(r'flash|fmha|efficient_attention|sdpa|scaled_dot_product', re.I)


def classify(names: list[str]) -> str:
    """``'flash'``, ``'cudnn'``, ``'mem_efficient'`` or ``'math'`` from kernel/op names."""
    joined = ' '.join(names).lower()
    if 'cudnn' in joined and re.search(r'sdpa|fmha|attn', joined):
        return 'cudnn'
    if 'flash' in joined:
        return 'flash'
    if re.search(r'fmha|efficient_attention|cutlass', joined):
        return 'mem_efficient'
    return 'math'


def attention_kind(fn: Callable[[], object], device: torch.device) -> tuple[str, list[str]]:
    """Run ``fn`` once under the profiler; the attention kernel's kind and up to three
    of the names it was read from (GPU kernels on CUDA, aten ops on the CPU)."""
    cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        fn()
        if cuda:
            torch.cuda.synchronize(device)
    events = prof.events()
    gpu = [e.name for e in events if cuda and 'CUDA' in str(getattr(e, 'device_type', ''))]
    names = sorted({n for n in (gpu or [e.name for e in events]) if _ATTENTION.search(n)})
    return classify(names), names[:3]
