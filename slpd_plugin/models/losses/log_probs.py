"""The students' log-probabilities, computed once per step for every loss term.

The DINO loss and each prototype target (intra, and one per inter-slide neighbour) take
a cross-entropy against the same softmax of the student's views. At paper size that is
a (V, B, 65536) fp32 tensor (V = 10 views, B = 128): about 335 MB for the float copy and
as much for its log-softmax, read and written once per term. :func:`student_log_probs`
makes it once; the terms share it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .precision import fp32_region


def student_log_probs(student_logits: list[Tensor], student_temp: float) -> Tensor:
    """``log_softmax(logits_v / student_temp)`` of every student view, stacked.

    ``V`` tensors (B, P) -> (V, B, P) fp32, in strict fp32 whatever the autocast.
    """
    with fp32_region(student_logits[0]):
        return F.log_softmax(torch.stack(student_logits).float() / student_temp, -1)
