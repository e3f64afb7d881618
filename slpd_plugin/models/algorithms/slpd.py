"""SLPD: DINO self-distillation on region grids plus slide-level prototype distillation.

Letters: ``B`` regions in the batch, ``V`` student views, ``Vg`` global views,
``E`` backbone dim, ``Z`` bottleneck dim, ``P`` head output dim, ``M`` masked cells.

Data path of one step (docs/algorithm.md, first table)::

    grids (B, C, 16, 16) --preprocessor--> Vg global + V-Vg local views
    (masks (B, 16, 16), when the store has holes, are cropped alike and passed with
    each view to backbones that accept masks)
    teacher(global views)  -> z_t (Vg*B, Z) -> logits_t (Vg, B, P)
    student(all views)     ->                  logits_s (V, B, P)
    loss_dino = DINOLoss(logits_t, logits_s)
    + loss_intra / loss_inter from the prototype head, given the bank that
      PrototypeHook installed at the start of the epoch
    + loss_ibot (with a patch loss): block-masked global views for the student, cell
      tokens of the masked cells through the patch head, (M, P) against the teacher's
      logits of the same cells of the unmasked views
"""
from __future__ import annotations

from typing import Callable

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel, BaseModule
from mmengine.model.weight_init import PretrainedInit
from torch import Tensor, nn

from slpd_plugin.registry import MODELS
from slpd_plugin.utils.weights import CheckpointError, load_backbone_weights

from ..backbones.special_tokens import fit_special_tokens
from ..heads import DINOEncoder
from ..losses import merged_center_updates, student_log_probs
from .encoding import encode, patch_backbone_cfg, run_backbone
from .teacher import disable_stochastic_layers, teacher_backbone_cfg


def _split_pretrained(backbone: dict) -> tuple[dict, dict | None]:
    """Take a ``Pretrained`` entry out of the backbone's ``init_cfg``.

    mmengine's ``init_weights`` does not descend into the student's and teacher's
    ``nn.ModuleDict``, so the backbone would never see it; :meth:`SLPD.init_weights`
    loads it into both backbones instead.
    """
    cfg = dict(backbone)
    entries = cfg.get('init_cfg')
    entries = [] if entries is None else list(entries) if isinstance(
        entries, (list, tuple)) else [entries]
    pretrained = [e for e in entries if e.get('type') in ('Pretrained', PretrainedInit)]
    if len(pretrained) > 1:
        raise ValueError(f'model.backbone.init_cfg has {len(pretrained)} Pretrained '
                         f'entries; give one')
    if 'init_cfg' in cfg:
        cfg['init_cfg'] = [e for e in entries if e not in pretrained] or None
    if not pretrained:
        return cfg, None
    unknown = set(pretrained[0]) - {'type', 'checkpoint', 'prefix'}
    if 'checkpoint' not in pretrained[0] or unknown:
        raise ValueError(f'model.backbone.init_cfg: Pretrained needs `checkpoint` (and '
                         f'optionally `prefix`), got {dict(pretrained[0])}')
    return cfg, dict(pretrained[0])


def _split_by_size(views: list[Tensor]) -> list[list[int]]:
    """Positions of consecutive views of the same spatial size (one forward pass each)."""
    groups: list[list[int]] = []
    for k, v in enumerate(views):
        if groups and views[groups[-1][0]].shape[-2:] == v.shape[-2:]:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


@MODELS.register_module()
class SLPD(BaseModel):
    """Slide-Level Prototypical Distillation on pre-extracted region feature grids.

    `SLPD, MICCAI 2023 <https://arxiv.org/abs/2307.10696>`_.
    With no prototype head (or before a :class:`PrototypeHook` has built a bank) this is
    exactly DINO-4K, HIPT's region-level pretraining. The teacher is built separately from
    the same configs with every dropout and stochastic-depth rate at 0 (whatever the
    backbone, see :mod:`.teacher`), starts as a copy of the student and receives no
    gradients; :class:`TeacherEMAHook` updates it and :class:`TeacherTempHook` sets
    :attr:`teacher_temp`.

    Args:
        backbone: Config of the region encoder, ``(B, C, H, W) -> (B, E)``; must expose
            ``embed_dims``. A backbone with ``accepts_masks = True`` is called as
            ``backbone(x, mask=(B, H, W) bool)`` when the batch carries tissue masks;
            others are called without them (:mod:`..backbones.masks`). Its
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``
            (optional ``prefix``) is loaded weights-only into the student's and the
            teacher's backbone by :meth:`init_weights` (the runner calls it before
            ``load_from``/resume); PATH may be a HIPT/DINO checkpoint (its teacher
            backbone, e.g. HIPT's ``vit4k_xs_dino.pth``), a checkpoint of this plugin
            (its teacher backbone) or a bare backbone state dict.
        head: Config of a :class:`DINOHead`; ``in_channels`` defaults to the backbone's
            ``embed_dims``.
        loss: Config of the DINO loss. Defaults to ``dict(type='DINOLoss')``.
        prototype_head: Config of a :class:`PrototypeDistillHead` (SLPD's intra/inter
            terms); its ``out_channels`` comes from the DINO head. Defaults to None
            (plain DINO).
        patch_loss: Config of an :class:`IBOTPatchLoss` (iBOT's masked feature
            modelling on the global views, added as ``loss_ibot``); its ``output_dim``
            defaults to the patch head's ``out_channels``. The backbone must return
            patch tokens (``ViT4K``, ``ALiBiViT``); it is built with ``mask_token=True``.
            Defaults to None (no patch loss).
        mask_generator: Config of the token-mask generator for ``patch_loss``. Defaults
            to ``dict(type='BlockMaskGenerator')``.
        patch_head: Config of a separate :class:`DINOHead` for the cell tokens (its
            ``in_channels`` defaults to ``embed_dims``). Defaults to None: the DINO head
            scores them too (iBOT's shared head).
        data_preprocessor: Defaults to a :class:`GridMultiCropPreprocessor`.
        compile: ``torch.compile`` the student's and teacher's backbones in place
            (``True`` or a dict of ``torch.compile`` options); state-dict keys are
            unchanged. Only ``forward`` is compiled: with a patch loss the global views
            go through ``forward_tokens``, uncompiled. Defaults to False.
        init_cfg: mmengine init config.

    Attributes:
        teacher_temp: Teacher softmax temperature used by the losses (None: the loss's own).
        teacher_patch_temp: Only with ``patch_loss``: the patch loss's teacher
            temperature (None: the loss's own); :class:`TeacherTempHook` sets it.
        bank: The current :class:`~slpd_plugin.prototypes.PrototypeBank` or None.
        last_teacher_embeddings: The last step's teacher embeddings of global view 0,
            ``{'cls': (B, E), 'z': (B, Z)}`` (no gradient).
    """

    def __init__(self, backbone: dict, head: dict, loss: dict | None = None,
                 prototype_head: dict | None = None,
                 patch_loss: dict | None = None,
                 mask_generator: dict | None = None,
                 patch_head: dict | None = None,
                 data_preprocessor: dict | None = None,
                 compile: bool | dict = False,
                 init_cfg: dict | None = None) -> None:
        # Built here from our registry (BaseModel would use mmengine's root registry when
        # no default scope is set, e.g. outside a Runner).
        super().__init__(data_preprocessor=MODELS.build(
            data_preprocessor or dict(type='GridMultiCropPreprocessor')), init_cfg=init_cfg)
        backbone, self.backbone_pretrained = _split_pretrained(backbone)
        if patch_loss is None and (patch_head is not None or mask_generator is not None):
            raise ValueError('model.patch_head and model.mask_generator need '
                             'model.patch_loss')
        if patch_loss is not None:
            backbone = patch_backbone_cfg(backbone)
        self.student = self._build_encoder(backbone, head, patch_head)
        self.teacher = self._build_encoder(teacher_backbone_cfg(backbone), head, patch_head)
        disable_stochastic_layers(self.teacher)
        self.teacher.load_state_dict(self.student.state_dict())
        self.teacher.requires_grad_(False)
        self.loss_module = MODELS.build(loss or dict(type='DINOLoss'))
        self.prototype_head = None if prototype_head is None else MODELS.build(
            dict(prototype_head, out_channels=self.student.head.out_channels))
        self.teacher_temp: float | None = None
        self.patch_loss: nn.Module | None = None
        self.mask_generator: Callable[[Tensor], Tensor] | None = None
        if patch_loss is not None:
            scorer = self.student['patch_head'] if patch_head else self.student.head
            self.patch_loss = MODELS.build(dict(dict(output_dim=scorer.out_channels),
                                                **patch_loss))
            self.mask_generator = MODELS.build(mask_generator
                                               or dict(type='BlockMaskGenerator'))
            self.teacher_patch_temp: float | None = None
        self.bank = None
        self.last_teacher_embeddings: dict[str, Tensor] = {}
        if compile:
            for encoder in (self.student, self.teacher):
                encoder.backbone.compile(**(compile if isinstance(compile, dict) else {}))

    @staticmethod
    def _build_encoder(backbone: dict, head: dict, patch_head: dict | None) -> DINOEncoder:
        net = MODELS.build(backbone)
        dims = getattr(net, 'embed_dims', None)
        if dims is None:
            raise ValueError(f'backbone {type(net).__name__} must expose `embed_dims`')
        heads = dict(head=head) if patch_head is None else dict(head=head,
                                                                 patch_head=patch_head)
        parts = dict(backbone=net)
        for key, cfg in heads.items():
            cfg = dict(cfg)
            if cfg.setdefault('in_channels', dims) != dims:
                raise ValueError(f'{key} in_channels={cfg["in_channels"]} does not match '
                                 f'the backbone\'s embed_dims={dims}')
            parts[key] = MODELS.build(cfg)
        return DINOEncoder(parts)

    def init_weights(self) -> None:
        """The mmengine initialisation, plus what it cannot reach inside the student.

        That is the ``init_cfg`` of the student's backbone and head, then the backbone's
        Pretrained weights; the teacher is then a copy of the student again.
        """
        super().init_weights()
        parts = [m for m in self.student.values() if isinstance(m, BaseModule) and m.init_cfg]
        for part in parts:
            part.init_weights()
        if self.backbone_pretrained is not None:
            path = self.backbone_pretrained['checkpoint']
            state = load_backbone_weights(path, self.backbone_pretrained.get('prefix'))
            state, fitted = fit_special_tokens(state, self.student.backbone)
            if fitted:
                print_log(f'{path}: {", ".join(fitted)} kept as initialised or dropped '
                          f'(the backbone has or lacks them)', logger='current')
            try:
                self.student.backbone.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise CheckpointError(
                    f'{path}: model.backbone.init_cfg Pretrained weights do not fit '
                    f'{type(self.student.backbone).__name__}: '
                    f'{" ".join(str(e).split())[:600]}') from e
            print_log(f'loaded {len(state)} backbone tensors from {path} into the student '
                      f'and the teacher', logger='current')
        if parts or self.backbone_pretrained is not None:
            self.teacher.load_state_dict(self.student.state_dict())

    def forward(self, inputs: Tensor | list[Tensor], data_samples: dict | None = None,
                mode: str = 'tensor', masks: Tensor | list[Tensor] | None = None
                ) -> dict[str, Tensor] | Tensor:
        """Losses of a list of views (``mode='loss'``) or embeddings of a grid batch.

        ``mode='tensor'`` returns the teacher backbone's embeddings ``(B, E)`` of a grid
        batch ``(B, C, H, W)``. ``masks``: the views' tissue masks (one ``(B, s, s)``
        bool per view, or ``(B, H, W)`` for a grid batch) as the data preprocessor
        returns them, or None.
        """
        if mode == 'loss':
            if not isinstance(inputs, list) or isinstance(masks, Tensor):
                raise TypeError("SLPD mode='loss' takes a list of views (and of masks), got "
                                f'{type(inputs).__name__}')
            return self.loss(inputs, data_samples, masks)
        if mode == 'tensor':
            if isinstance(inputs, list) or isinstance(masks, list):
                raise TypeError("SLPD mode='tensor' takes one grid batch (B, C, H, W), got a "
                                'list')
            return self.embed(inputs, masks=masks)
        raise RuntimeError(f'Invalid mode {mode!r}; SLPD supports "loss" and "tensor"')

    @torch.no_grad()
    def embed(self, grids: Tensor, encoder: str = 'teacher', output: str = 'cls',
              masks: Tensor | None = None) -> Tensor:
        """Embed grids with the teacher (default) or student.

        Args:
            grids: ``(B, C, H, W)``.
            encoder: ``'teacher'`` or ``'student'``.
            output: ``'cls'`` for the backbone embedding ``(B, E)`` or ``'z'`` for the
                normalised bottleneck ``(B, Z)``.
            masks: Tissue masks ``(B, H, W)`` bool (True = patch present), passed to a
                backbone that accepts masks; None = every cell present.
        """
        if encoder not in ('teacher', 'student') or output not in ('cls', 'z'):
            raise ValueError(f'embed: encoder must be teacher/student and output cls/z, '
                             f'got {encoder!r}, {output!r}')
        net = getattr(self, encoder)
        feats = run_backbone(net.backbone, grids, masks)
        return feats if output == 'cls' else net.head.bottleneck(feats)

    def loss(self, inputs: list[Tensor], data_samples: dict | None,
             masks: list[Tensor] | None = None) -> dict[str, Tensor]:
        """Losses of one step; ``masks``: None or one ``(B, s, s)`` mask per view."""
        groups = _split_by_size(inputs)

        def stacked(group: list[int]) -> tuple[Tensor, Tensor | None]:
            views = torch.cat([inputs[k] for k in group])  # (len(group)*B, C, s, s)
            return views, None if masks is None else torch.cat([masks[k] for k in group])

        num_global = len(groups[0])
        batch = inputs[0].shape[0]
        global_views = stacked(groups[0])
        token_mask = self._token_mask(*global_views)  # (Vg*B, s, s), None: no patch loss
        with torch.no_grad():  # t_patch: (M, P) logits of the masked cells, or None
            t_cls, t_patch = encode(self.teacher, *global_views, token_mask, student=False)
            t_z = self.teacher.head.bottleneck(t_cls)  # (Vg*B, Z)
            t_logits = self.teacher.head.last_layer(t_z).chunk(num_global)  # Vg x (B, P)
        # Global view 0's teacher embeddings, for PrototypeHook's memory-bank option.
        self.last_teacher_embeddings = dict(cls=t_cls[:batch], z=t_z[:batch])
        s_logits: list[Tensor] = []
        for k, group in enumerate(groups):
            if k == 0:  # the global views, block-masked with a patch loss
                feats, s_patch = encode(self.student, *global_views, token_mask)
            else:
                feats = run_backbone(self.student.backbone, *stacked(group))
            s_logits.extend(self.student.head(feats).chunk(len(group)))  # V x (B, P)
        # The students' log-softmax, once for the DINO loss and every prototype term
        # (a loss module of another kind gets the logits and computes its own).
        student_temp = getattr(self.loss_module, 'student_temp', None)
        log_p = (student_log_probs(s_logits, student_temp)  # (V, B, P)
                 if student_temp is not None and hasattr(self.loss_module, 'from_log_probs')
                 else None)
        head = self.prototype_head
        with merged_center_updates():  # every centre's all-reduce in one collective
            losses = dict(loss_dino=self.loss_module.from_log_probs(
                list(t_logits), log_p, teacher_temp=self.teacher_temp) if log_p is not None
                else self.loss_module(list(t_logits), s_logits, teacher_temp=self.teacher_temp))
            if head is not None:
                shared = log_p if head.student_temp == student_temp else None
                losses.update(head.loss(s_logits, self.teacher, self.bank, data_samples,
                                        self.teacher_temp, student_log_p=shared,
                                        teacher_z=t_z.view(num_global, batch, -1)))
            if self.patch_loss is not None:  # t_patch, s_patch: (M, P)
                losses['loss_ibot'] = self.patch_loss(t_patch, s_patch, token_mask,
                                                      teacher_temp=self.teacher_patch_temp)
        return losses

    def _token_mask(self, views: Tensor, tissue: Tensor | None) -> Tensor | None:
        """The student's token masks ``(Vg*B, s, s)`` of the global views, or None.

        None without a patch loss; the masks lie inside the tissue ``tissue``.
        """
        if self.mask_generator is None:
            return None
        if tissue is None:
            tissue = views.new_ones(views.shape[0], *views.shape[-2:], dtype=torch.bool)
        return self.mask_generator(tissue)
