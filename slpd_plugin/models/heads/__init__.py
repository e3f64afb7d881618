"""Heads: projection heads and the SLPD prototype-distillation heads."""
from .dino_head import DINOHead

__all__ = ['DINOHead']
