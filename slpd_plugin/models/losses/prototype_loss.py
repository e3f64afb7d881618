"""Cross-entropy from prototype targets to student views, with a masked, global centre.

Letters: ``B`` regions, ``V`` student views, ``P`` head output dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .center_sync import reduce_then
from .precision import fp32_region


def prototype_cross_entropy(target_logits: Tensor, valid: Tensor, student_log_p: Tensor,
                            center: Tensor, teacher_temp: float,
                            skip_first_view: bool = False) -> Tensor:
    """Mean over valid regions and student views of ``CE(q, p_s(v))``.

    ``q = softmax((target_logits - center) / teacher_temp)`` (no gradient) and
    ``log p_s(v) = log_softmax(student_logits[v] / student_temp)``, given as
    ``student_log_p`` (:func:`~.log_probs.student_log_probs`, made once per step and
    shared by every term; DINO's cross-entropy, as SLPD's ``losses.py`` applies it to
    prototype targets).

    Args:
        target_logits: Teacher's last layer applied to each region's prototype, (B, P).
        valid: Which regions have a prototype target, (B,) bool.
        student_log_p: The students' log-softmax, (V, B, P) fp32, global views first.
        center: Prototype-target centre, (1, P).
        teacher_temp: Target temperature.
        skip_first_view: Leave out student view 0, as the original code's loop does.

    Returns:
        Scalar fp32 loss, computed in strict fp32 whatever the autocast and TF32
        settings; exactly zero (still attached to the student graph) when no region is
        valid. Invalid rows must hold finite values; they get zero weight. No host sync.
    """
    log_p = student_log_p[1:] if skip_first_view else student_log_p  # (V, B, P)
    with fp32_region(target_logits):
        q = F.softmax((target_logits.float() - center) / teacher_temp, -1).detach()  # (B, P)
        ce = -torch.einsum('bp,vbp->b', q, log_p) / log_p.shape[0]  # (B,), mean over views
        weight = valid.to(ce.dtype)
        return (ce * weight).sum() / weight.sum().clamp_min(1.0)


@torch.no_grad()
def update_center(center: Tensor, target_logits: list[Tensor], valid: list[Tensor],
                  momentum: float) -> None:
    """Move ``center`` in place by the EMA of the targets' mean logits over all ranks.

    ``center`` becomes the mean over targets of each target's EMA update with its mean
    logit over the valid regions of ALL ranks.

    For target ``j``: ``c_j = m * center + (1 - m) * mean_valid(target_logits[j])``, or
    ``center`` unchanged if no rank has a valid region for it; ``center <- mean_j c_j``.
    The sums and counts of all targets go into one collective (:func:`reduce_then`,
    merged with the step's other centres inside ``merged_center_updates``). Every rank
    must call this every step, even with no valid region. No host sync.

    Args:
        center: (1, P), updated in place.
        target_logits: T tensors (B, P).
        valid: T tensors (B,) bool.
        momentum: Weight kept by the old centre (0.9).
    """
    # A masked sum, not target_logits[valid]: boolean indexing waits for the GPU.
    stats = torch.stack([torch.cat([torch.where(v[:, None], t.float(), 0.0).sum(0),
                                    v.sum().float().reshape(1)])
                         for t, v in zip(target_logits, valid)])  # (T, P + 1)

    def finish(summed: Tensor) -> None:  # (T * (P + 1),): sums over ranks
        summed = summed.view_as(stats)
        count = summed[:, -1:]  # (T, 1)
        batch_center = summed[:, :-1] / count.clamp_min(1)  # (T, P)
        updated = torch.where(count > 0, center * momentum + batch_center * (1 - momentum),
                              center)  # (T, P)
        center.copy_(updated.mean(0, keepdim=True))

    reduce_then(stats, finish)
