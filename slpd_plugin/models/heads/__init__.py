"""Heads: the DINO projection head and SLPD's prototype-distillation head."""
from .dino_head import DINOEncoder, DINOHead
from .prototype_head import PrototypeDistillHead

__all__ = ['DINOEncoder', 'DINOHead', 'PrototypeDistillHead']
