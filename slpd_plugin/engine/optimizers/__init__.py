"""Optimizer wrapper (DINO gradient surgery) and its parameter-group constructor."""
from .constructor import SLPDOptimWrapperConstructor, dino_param_groups
from .dino_optim_wrapper import DINOOptimWrapper

__all__ = ['DINOOptimWrapper', 'SLPDOptimWrapperConstructor', 'dino_param_groups']
