"""Cross-entropy from prototype targets to student views, with a masked, global centre.

Letters: ``B`` regions, ``V`` student views, ``P`` head output dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, is_distributed
from torch import Tensor


def prototype_cross_entropy(target_logits: Tensor, valid: Tensor, student_logits: list[Tensor],
                            center: Tensor, teacher_temp: float, student_temp: float,
                            skip_first_view: bool = False) -> Tensor:
    """Mean over valid regions and student views of ``CE(q, p_s(v))``.

    ``q = softmax((target_logits - center) / teacher_temp)`` (no gradient) and
    ``p_s(v) = softmax(student_logits[v] / student_temp)`` (spec section 4.2).

    Args:
        target_logits: Teacher's last layer applied to each region's prototype, (B, P).
        valid: Which regions have a prototype target, (B,) bool.
        student_logits: V tensors of shape (B, P), global views first.
        center: Prototype-target centre, (1, P).
        teacher_temp: Target temperature.
        student_temp: Student temperature.
        skip_first_view: Leave out student view 0, as the original code's loop does.

    Returns:
        Scalar loss; exactly zero (still attached to the student graph) when no region is
        valid. Invalid rows must hold finite values; they get zero weight. No host sync.
    """
    views = student_logits[1:] if skip_first_view else student_logits
    q = F.softmax((target_logits - center) / teacher_temp, dim=-1).detach()  # (B, P)
    log_p = F.log_softmax(torch.stack(views) / student_temp, dim=-1)  # (V, B, P)
    ce = -(q * log_p).sum(-1).mean(0)  # (B,)
    weight = valid.to(ce.dtype)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


@torch.no_grad()
def update_center(center: Tensor, target_logits: Tensor, valid: Tensor,
                  momentum: float) -> Tensor:
    """EMA of the mean target logit over the valid regions of ALL ranks.

    Every rank must call this every step (it all-reduces), even with no valid region;
    if no rank has one, the centre is returned unchanged. No host sync.

    Args:
        center: (1, P).
        target_logits: (B, P).
        valid: (B,) bool.
        momentum: Weight kept by the old centre (0.9).
    """
    # A masked sum, not target_logits[valid]: boolean indexing waits for the GPU.
    stats = torch.cat([torch.where(valid[:, None], target_logits.float(), 0.0).sum(0),
                       valid.sum().float().reshape(1)])  # (P + 1,)
    if is_distributed():
        all_reduce(stats, op='sum')
    count = stats[-1]
    batch_center = (stats[:-1] / count.clamp_min(1)).reshape_as(center)
    return torch.where(count > 0, center * momentum + batch_center * (1 - momentum), center)
