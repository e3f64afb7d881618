"""Heads: the DINO projection head and SLPD's prototype-distillation head."""
from .dino_head import DINOHead
from .prototype_head import PrototypeDistillHead

__all__ = ['DINOHead', 'PrototypeDistillHead']
