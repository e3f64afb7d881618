"""The DINO loss of lightly, in strict fp32, from shared student log-probabilities.

Its centre all-reduce can be merged with the other losses'.

Letters: ``Vt`` teacher views, ``Vs`` student views, ``B`` batch, ``P`` output dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from lightly.loss import DINOLoss as LightlyDINOLoss
from lightly.models.modules.center import center_momentum
from mmengine.dist import get_world_size
from torch import Tensor

from slpd_plugin.registry import MODELS

from .center_sync import reduce_then
from .log_probs import student_log_probs
from .precision import fp32_region

#: The teacher softmax temperature of DINO-4K and SLPD's runs (after any warm-up), and
#: lightly's ``DINOLoss`` default: the default of every teacher temperature here.
TEACHER_TEMP = 0.04


@MODELS.register_module('DINOLoss')
class DINOLoss(LightlyDINOLoss):
    """:class:`lightly.loss.DINOLoss` (teacher views first) with three changes.

    - the loss is computed in strict fp32 (autocast and TF32 off) from fp32 copies of
      the logits;
    - :meth:`from_log_probs` takes the students' log-softmax made once per step
      (:func:`~.log_probs.student_log_probs`, shared with the prototype terms);
      :meth:`forward` makes it and calls it;
    - the centre update sums the local batch mean over ranks through
      :func:`~.center_sync.reduce_then` (one collective per step when the caller merges
      them, see :func:`~.center_sync.merged_center_updates`). The new centre is the
      same as lightly's: ``center * m + (sum_ranks mean_local) / world_size * (1 - m)``.

    The value is lightly's: the mean over ``B`` and over the pairs (teacher view ``t``,
    student view ``s``), ``t != s``, of ``CE(softmax((t - center) / T_t),
    softmax(s / T_s))``. Arguments, buffers (``center``, (1, 1, P)) and state-dict keys
    are lightly's.

    Example:
        >>> loss_fn = DINOLoss(output_dim=8)
        >>> loss = loss_fn([torch.randn(4, 8)] * 2, [torch.randn(4, 8)] * 3)
    """

    def forward(self, teacher_out: list[Tensor], student_out: list[Tensor],
                teacher_temp: float | None = None, epoch: int | None = None) -> Tensor:
        """The loss of ``Vt`` tensors (B, P) and ``Vs`` tensors (B, P), in fp32."""
        return self.from_log_probs(teacher_out, student_log_probs(student_out,
                                                                  self.student_temp),
                                   teacher_temp, epoch)

    def from_log_probs(self, teacher_out: list[Tensor], student_log_p: Tensor,
                       teacher_temp: float | None = None, epoch: int | None = None) -> Tensor:
        """The loss from teacher logits and the students' log-softmax; updates the centre.

        Takes ``Vt`` teacher tensors (B, P) and the log-softmax at ``self.student_temp``,
        (Vs, B, P) fp32.
        """
        if teacher_temp is None:
            warm = epoch is not None and epoch < self.warmup_teacher_temp_epochs
            teacher_temp = float(self.teacher_temp_schedule[epoch]) if warm \
                else self.teacher_temp
        with fp32_region(student_log_p):
            teacher = torch.stack(teacher_out).float()  # (Vt, B, P)
            q = F.softmax((teacher - self.center) / teacher_temp, dim=-1)
            ce = -torch.einsum('tbp,sbp->ts', q, student_log_p)  # (Vt, Vs), summed over B
            ce.fill_diagonal_(0)
            pairs = ce.numel() - ce.diagonal().numel()
            if pairs == 0:
                raise ValueError(f'DINOLoss needs two views in total outside the diagonal, '
                                 f'got {len(teacher_out)} teacher and '
                                 f'{student_log_p.shape[0]} student view(s)')
            loss = ce.sum() / (pairs * teacher.shape[1])
            self.update_center(teacher)
            return loss

    @torch.no_grad()
    def update_center(self, teacher_out: Tensor) -> None:
        """EMA of the teacher's mean output; ``teacher_out`` is (Vt, B, P)."""
        world_size = get_world_size()

        def finish(summed: Tensor) -> None:  # (P,): local means summed over ranks
            batch_center = (summed / world_size).view_as(self.center)
            self.center.data = center_momentum(self.center, batch_center,
                                               self.center_momentum)

        reduce_then(teacher_out.mean(dim=(0, 1), keepdim=True), finish)
