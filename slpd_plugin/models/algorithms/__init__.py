"""Self-supervised algorithms (``BaseModel`` subclasses)."""
from .slpd import SLPD

__all__ = ['SLPD']
