"""How SLPD runs its encoders: with tissue masks, and with iBOT token masks.

Letters: ``G`` grids (views x batch), ``H x W`` cells, ``E`` backbone dim, ``M`` masked
cells over all grids, ``P`` head output dim.

With a patch loss (iBOT, Zhou et al., ICLR 2022) the global views go through the
backbone's ``forward_tokens``: the teacher sees them unmasked, the student with the
block-masked cells' inputs replaced by the mask token, and both heads score the cell
tokens of the masked cells only. A ``patch_head`` entry of the encoder, if present,
scores them (iBOT's separate head); otherwise the DINO head does (iBOT's shared head).

Example:
    >>> cfg = patch_backbone_cfg(dict(type='ALiBiViT', in_channels=8))
    >>> cfg['mask_token']
    True
"""
from __future__ import annotations

from typing import Protocol, cast

from torch import Tensor, nn

from slpd_plugin.registry import MODELS

from ..backbones import accepts_masks
from ..heads import DINOEncoder


class ReturnsPatchTokens(Protocol):
    """A backbone with ``returns_patch_tokens = True``: ``ViT4K``, ``ALiBiViT``."""

    def forward_tokens(self, x: Tensor, mask: Tensor | None = None,
                       token_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """CLS ``(B, E)`` and cell tokens ``(B, H*W, E)``."""


def run_backbone(net: nn.Module, grids: Tensor, mask: Tensor | None) -> Tensor:
    """``net(grids)``, with the tissue mask when there is one and ``net`` accepts masks."""
    if mask is None or not accepts_masks(net):
        return net(grids)
    return net(grids, mask=mask)


def patch_backbone_cfg(backbone: dict) -> dict:
    """The backbone config with its mask token on, for a patch loss.

    Raises:
        ValueError: the backbone has no ``forward_tokens`` (``returns_patch_tokens``).
    """
    kind = backbone['type']
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if not getattr(cls, 'returns_patch_tokens', False):
        raise ValueError(f'model.patch_loss needs a backbone that returns patch tokens '
                         f'(forward_tokens, returns_patch_tokens = True, e.g. ViT4K or '
                         f'ALiBiViT); model.backbone.type={kind!r} does not')
    return dict(backbone, mask_token=True)


def encode(encoder: DINOEncoder, grids: Tensor, mask: Tensor | None,
           token_mask: Tensor | None = None, student: bool = True
           ) -> tuple[Tensor, Tensor | None]:
    """Backbone embeddings ``(G, E)`` and, with ``token_mask``, the masked cells' logits.

    Without ``token_mask`` the second output is None. With it (``(G, H, W)``, the cells
    to predict), the backbone runs ``forward_tokens`` and the second output is the
    patch logits ``(M, P)`` of those cells, in ``token_mask.nonzero()`` order; the
    student's backbone replaces the cells' inputs by its mask token, the teacher's
    (``student=False``) sees them as they are.
    """
    if token_mask is None:
        return run_backbone(encoder.backbone, grids, mask), None
    kwargs = {} if mask is None else dict(mask=mask)
    if student:
        kwargs['token_mask'] = token_mask
    backbone = cast(ReturnsPatchTokens, encoder.backbone)
    cls, patches = backbone.forward_tokens(grids, **kwargs)  # (G, E), (G, N, E)
    head = encoder['patch_head'] if 'patch_head' in encoder else encoder.head
    return cls, head(patches[token_mask.flatten(1)])
