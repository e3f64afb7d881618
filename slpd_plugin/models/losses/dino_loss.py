"""lightly's DINO loss, in fp32 and with its centre all-reduce mergeable.

Letters: ``Vt`` teacher views, ``Vs`` student views, ``B`` batch, ``P`` output dim.
"""
from __future__ import annotations

import torch
from lightly.loss import DINOLoss as LightlyDINOLoss
from lightly.models.modules.center import center_momentum
from mmengine.dist import get_world_size
from torch import Tensor

from slpd_plugin.registry import MODELS

from .center_sync import reduce_then
from .precision import fp32_region

#: The teacher softmax temperature of DINO-4K and SLPD's runs (after any warm-up), and
#: lightly's ``DINOLoss`` default: the default of every teacher temperature here.
TEACHER_TEMP = 0.04


@MODELS.register_module('DINOLoss')
class DINOLoss(LightlyDINOLoss):
    """:class:`lightly.loss.DINOLoss` (teacher views first) with two changes:

    - the loss is computed in fp32 from fp32 copies of the logits, with autocast off;
    - the centre update sums the local batch mean over ranks through
      :func:`~.center_sync.reduce_then` (one collective per step when the caller merges
      them, see :func:`~.center_sync.merged_center_updates`). The new centre is the
      same as lightly's: ``center * m + (sum_ranks mean_local) / world_size * (1 - m)``.

    Arguments, buffers (``center``, (1, 1, P)) and state-dict keys are lightly's.

    Example:
        >>> loss_fn = DINOLoss(output_dim=8)
        >>> loss = loss_fn([torch.randn(4, 8)] * 2, [torch.randn(4, 8)] * 3)
    """

    def forward(self, teacher_out: list[Tensor], student_out: list[Tensor],
                teacher_temp: float | None = None, epoch: int | None = None) -> Tensor:
        """Lightly's loss of ``Vt`` tensors (B, P) and ``Vs`` tensors (B, P), in fp32."""
        with fp32_region(teacher_out[0]):
            return super().forward([t.float() for t in teacher_out],
                                   [s.float() for s in student_out], teacher_temp, epoch)

    @torch.no_grad()
    def update_center(self, teacher_out: Tensor) -> None:
        """EMA of the teacher's mean output; ``teacher_out`` is (Vt, B, P)."""
        world_size = get_world_size()

        def finish(summed: Tensor) -> None:  # (P,): local means summed over ranks
            batch_center = (summed / world_size).view_as(self.center)
            self.center.data = center_momentum(self.center, batch_center,
                                               self.center_momentum)

        reduce_then(teacher_out.mean(dim=(0, 1), keepdim=True), finish)
