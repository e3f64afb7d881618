"""SLPD's intra- and inter-slide prototype distillation.

SLPD paper, arXiv 2307.10696; docs/algorithm.md, rows 2-4 of the differences.

Letters: ``B`` regions, ``V`` student views, ``K`` prototypes per slide, ``r`` neighbour
slides, ``Z`` bottleneck dim, ``P`` head output dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.registry import MODELS

from ..losses import TEACHER_TEMP, prototype_cross_entropy, student_log_probs, update_center
from .dino_head import DINOEncoder

LOSS_TYPES = ('intra', 'inter', 'intra_inter')
#: Where a sample's prototype comes from: the refresh's assignment of the sample itself,
#: or the prototype of its slide nearest to this step's teacher embedding.
ASSIGN_FROM = ('bank', 'teacher')


@MODELS.register_module()
class PrototypeDistillHead(BaseModule):
    """Turn the student's logits and the prototype bank into SLPD's prototype losses.

    For a region of slide ``s`` assigned to prototype ``k`` (``assign_from='bank'``: the
    assignment the refresh made for this very sample, by ``data_samples['index']``;
    ``'teacher'``: the prototype of ``s`` with the highest cosine similarity to the
    mean of the teacher's normalised ``z`` over the global views of this step, for
    samples the refresh never embedded, such as windows drawn anywhere in the slide):

    - intra: target ``last_layer_teacher(c[s, k])``;
    - inter: target ``last_layer_teacher(c[n, m])`` for each neighbour slide ``n`` of
      ``s`` and the prototype ``m`` of ``n`` nearest to ``c[s, k]``, averaged over the
      ``r`` neighbours.

    Each target is centred by its own EMA centre (``center_intra``, ``center_inter``,
    averaged over all ranks) and sharpened by the teacher temperature; the loss is the
    cross-entropy to each student view's softmax, averaged over views and over regions
    of slides with prototypes. Regions of slides without prototypes contribute nothing.
    Collectives run on every rank every step, whatever the rank's batch holds.

    Args:
        out_channels: ``P`` (set by :class:`SLPD` from its DINO head).
        loss_type: ``'intra'``, ``'inter'`` or ``'intra_inter'``. Defaults to
            'intra_inter'.
        intra_weight: Weight of the intra-slide loss. Defaults to 1.0.
        inter_weight: Weight of the inter-slide loss. Defaults to 1.0.
        student_temp: Student temperature. Defaults to 0.1.
        teacher_temp: Target temperature when the model has none set. Defaults to
            :data:`~slpd_plugin.models.losses.TEACHER_TEMP` (0.04).
        center_momentum: EMA momentum of the centres. Defaults to 0.9.
        skip_first_student_view: Reproduce the original code's loop, which leaves out
            student view 0. Defaults to False.
        assign_from: ``'bank'`` (the paper's way, for region samples the refresh
            embedded) or ``'teacher'`` (for window views drawn anywhere, see
            docs/algorithm.md "SLPD over windows"). Defaults to 'bank'.
    """

    def __init__(self, out_channels: int, loss_type: str = 'intra_inter',
                 intra_weight: float = 1.0, inter_weight: float = 1.0,
                 student_temp: float = 0.1, teacher_temp: float = TEACHER_TEMP,
                 center_momentum: float = 0.9, skip_first_student_view: bool = False,
                 assign_from: str = 'bank', init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_type not in LOSS_TYPES:
            raise ValueError(f'loss_type must be one of {LOSS_TYPES}, got {loss_type!r}')
        if assign_from not in ASSIGN_FROM:
            raise ValueError(f'PrototypeDistillHead: assign_from must be one of {ASSIGN_FROM}, '
                             f'got {assign_from!r}')
        self.assign_from = assign_from
        self.terms = {'intra': intra_weight, 'inter': inter_weight}
        self.terms = {t: w for t, w in self.terms.items() if t in loss_type.split('_')}
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.center_momentum = center_momentum
        self.skip_first_student_view = skip_first_student_view
        for term in self.terms:
            self.register_buffer(f'center_{term}', torch.zeros(1, out_channels))

    def assign(self, bank: PrototypeBank, data_samples: dict,
               teacher_z: Tensor | None = None) -> Tensor:
        """Each sample's prototype within its slide, ``(B,)`` long; -1 where it has none.

        ``teacher_z``: the teacher's ``z`` of the global views, ``(Vg, B, Z)``; needed with
        ``assign_from='teacher'``.
        """
        if self.assign_from == 'bank':
            return bank.assignments[data_samples['index']]
        if teacher_z is None:
            raise ValueError("PrototypeDistillHead(assign_from='teacher') needs the teacher's "
                             'global-view embeddings (teacher_z)')
        slide = data_samples['slide_index']
        anchor = F.normalize(teacher_z.float().mean(0), dim=-1)  # (B, Z)
        similarity = torch.einsum('bz,bkz->bk', anchor, bank.centroids[slide].float())
        return torch.where(bank.valid[slide], similarity.argmax(1), -1)

    def targets(self, bank: PrototypeBank, data_samples: dict,
                teacher_z: Tensor | None = None
                ) -> dict[str, tuple[list[Tensor], list[Tensor]]]:
        """Prototype vectors and validity per term: ``term -> ([(B, Z)], [(B,)])``."""
        slide = data_samples['slide_index']
        assign = self.assign(bank, data_samples, teacher_z)
        has_proto = bank.valid[slide] & (assign >= 0)
        k = assign.clamp_min(0)
        out = {}
        if 'intra' in self.terms:
            out['intra'] = ([bank.centroids[slide, k]], [has_proto])
        if 'inter' in self.terms:
            protos, valids = [], []
            for j in range(bank.neighbors.shape[1]):
                nb = bank.neighbors[slide, j]
                match = bank.matched[slide, k, j]
                ok = has_proto & (nb >= 0) & (match >= 0)
                protos.append(bank.centroids[nb.clamp_min(0), match.clamp_min(0)])
                valids.append(ok)
            out['inter'] = (protos, valids)
        return out

    def loss(self, student_logits: list[Tensor], teacher: DINOEncoder,
             bank: PrototypeBank | None, data_samples: dict, teacher_temp: float | None = None,
             student_log_p: Tensor | None = None,
             teacher_z: Tensor | None = None) -> dict[str, Tensor]:
        """Losses ``loss_intra`` / ``loss_inter`` (weighted) for one step.

        Args:
            student_logits: V tensors (B, P), global views first.
            teacher: The teacher encoder (``teacher.head.last_layer`` maps prototypes).
            bank: The current prototype bank, or None before the first refresh.
            data_samples: Batch metadata with ``index`` and ``slide_index`` (B,).
            teacher_temp: Target temperature; None uses this head's default.
            student_log_p: ``student_log_probs(student_logits, self.student_temp)``,
                (V, B, P), when the caller has it already (the DINO loss's, at the same
                student temperature); None: made here, once for every term.
            teacher_z: The teacher's normalised ``z`` of the global views, ``(Vg, B, Z)``,
                for ``assign_from='teacher'``; unused otherwise.
        """
        if bank is None:
            return {}
        temp = self.teacher_temp if teacher_temp is None else teacher_temp
        if student_log_p is None:
            student_log_p = student_log_probs(student_logits, self.student_temp)
        losses = {}
        for term, (protos, valids) in self.targets(bank, data_samples, teacher_z).items():
            center = getattr(self, f'center_{term}')
            with torch.no_grad():
                targets = [teacher.head.last_layer(proto) for proto in protos]
            terms = [prototype_cross_entropy(target, valid, student_log_p, center, temp,
                                             self.skip_first_student_view)
                     for target, valid in zip(targets, valids)]
            update_center(center, targets, valids, self.center_momentum)
            losses[f'loss_{term}'] = self.terms[term] * torch.stack(terms).mean()
        return losses
