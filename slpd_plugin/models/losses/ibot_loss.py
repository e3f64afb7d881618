"""iBOT's masked-patch loss, in strict fp32, with its centre synced in the merged all-reduce.

Letters: ``G`` grids (global views x batch), ``H x W`` cells, ``M`` masked cells over
all grids, ``P`` head output dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from lightly.loss import IBOTPatchLoss as LightlyIBOTPatchLoss
from lightly.models.modules.center import center_momentum
from torch import Tensor

from slpd_plugin.registry import MODELS

from .center_sync import reduce_then
from .dino_loss import TEACHER_TEMP
from .precision import fp32_region


@MODELS.register_module('IBOTPatchLoss')
class IBOTPatchLoss(LightlyIBOTPatchLoss):
    """:class:`lightly.loss.IBOTPatchLoss` (iBOT, Zhou et al., ICLR 2022) on masked cells.

    For the ``M`` masked cells of ``G`` grids, with teacher logits ``t`` of the unmasked
    grid and student logits ``s`` of the masked one at the same cell::

        ce_i = CE(softmax((t_i - center) / T_t), softmax(s_i / T_s))
        loss = loss_weight * mean over the G grids of (mean of ce_i over its masked cells)

    A grid without masked cells counts as 0 in that mean (iBOT's and lightly's
    normalisation); without any masked cell the loss is 0 and keeps the graph.

    Changes to lightly's: computed in strict fp32 (autocast and TF32 off); the centre,
    an EMA of the mean teacher logit over the masked cells, is that mean over the cells
    of all ranks (sum and count all-reduced through :func:`~.center_sync.reduce_then`,
    so inside :func:`~.center_sync.merged_center_updates` it shares the step's one
    collective with the DINO and prototype centres), and is not moved by a step
    without masked cells; ``loss_weight`` scales the value. Arguments (but
    ``loss_weight``), the buffer (``center.center``, ``(1, P)``) and its state-dict key
    are lightly's.

    Args:
        output_dim: ``P``. Defaults to 65536.
        teacher_temp: Teacher temperature when the caller gives none. Defaults to
            :data:`TEACHER_TEMP` (0.04).
        student_temp: Defaults to 0.1.
        center_mode: Only ``'mean'``. Defaults to 'mean'.
        center_momentum: Defaults to 0.9.
        loss_weight: Factor on the loss. Defaults to 1.0 (iBOT's and DINOv2's).

    Example:
        >>> loss_fn = IBOTPatchLoss(output_dim=8)
        >>> token_mask = torch.zeros(2, 3, 3, dtype=torch.bool); token_mask[0, :2, :2] = True
        >>> loss = loss_fn(torch.randn(4, 8), torch.randn(4, 8), token_mask)
    """

    def __init__(self, output_dim: int = 65536, teacher_temp: float = TEACHER_TEMP,
                 student_temp: float = 0.1, center_mode: str = 'mean',
                 center_momentum: float = 0.9, loss_weight: float = 1.0) -> None:
        super().__init__(output_dim=output_dim, teacher_temp=teacher_temp,
                         student_temp=student_temp, center_mode=center_mode,
                         center_momentum=center_momentum)
        self.output_dim = output_dim
        self.loss_weight = loss_weight

    def forward(self, teacher_out: Tensor, student_out: Tensor, mask: Tensor,
                teacher_temp: float | None = None) -> Tensor:
        """The loss of the masked cells; updates the centre.

        Args:
            teacher_out: ``(M, P)`` teacher logits of the masked cells, in the row-major
                order of ``mask.nonzero()``.
            student_out: ``(M, P)`` student logits of the same cells.
            mask: ``(G, H, W)`` bool, True at the ``M`` masked cells.
            teacher_temp: None = ``self.teacher_temp``.
        """
        num = int(mask.sum())
        if teacher_out.shape != student_out.shape or teacher_out.shape[0] != num:
            raise ValueError(f'IBOTPatchLoss expects teacher and student logits (M, P) for '
                             f'the M={num} masked cells, got {tuple(teacher_out.shape)} '
                             f'and {tuple(student_out.shape)}')
        temp = self.teacher_temp if teacher_temp is None else teacher_temp
        with fp32_region(student_out):
            teacher = teacher_out.detach().float()
            q = F.softmax((teacher - self.center.value) / temp, dim=-1)
            log_p = F.log_softmax(student_out.float() / self.student_temp, dim=-1)
            ce = -(q * log_p).sum(-1)  # (M,)
            # weight of each masked cell: 1 / (masked cells of its grid)
            per_grid = mask.flatten(1).sum(1, keepdim=True).expand_as(mask.flatten(1))
            weights = 1.0 / per_grid[mask.flatten(1)].float()  # (M,)
            loss = (ce * weights).sum() / mask.shape[0] * self.loss_weight
            self.update_center(teacher)
            return loss

    @torch.no_grad()
    def update_center(self, teacher_out: Tensor) -> None:
        """EMA of the mean teacher logit over the masked cells of all ranks, ``(M, P)``."""
        local = torch.cat([teacher_out.sum(0), teacher_out.new_tensor([teacher_out.shape[0]])])

        def finish(summed: Tensor) -> None:  # (P + 1,): sum of logits, number of cells
            count = summed[-1]
            if count > 0:
                batch_center = (summed[:-1] / count).view_as(self.center.center)
                self.center.center = center_momentum(self.center.center, batch_center,
                                                     self.center.momentum)

        reduce_then(local, finish)
