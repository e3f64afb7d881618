"""The algorithm inside a model wrapper."""
from __future__ import annotations

from mmengine.model import is_model_wrapper
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside an mmengine/DDP/FSDP wrapper (``model.module``), or the model itself.

    Example:
        >>> unwrap(runner.model).bank = None
    """
    return model.module if is_model_wrapper(model) else model
