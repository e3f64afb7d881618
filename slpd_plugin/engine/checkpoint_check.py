"""Refuse checkpoints made for another architecture before loading them."""
from __future__ import annotations

import re
from typing import Sequence

from torch import nn


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not have the shapes of the model they are loaded into."""


def check_checkpoint_shapes(model: nn.Module, checkpoint: dict, filename: str,
                            revise_keys: Sequence[tuple[str, str]] = ((r'^module\.', ''),)
                            ) -> None:
    """Refuse a checkpoint whose tensors have other shapes than the model's.

    Keys only in the checkpoint or only in the model are left to mmengine (it warns):
    loading part of a model, e.g. backbone weights only, is legitimate. A tensor present
    in both with another shape means another architecture, and loading around it would
    train a half-initialised model.

    Args:
        model: The model the checkpoint is loaded into.
        checkpoint: The loaded checkpoint (with ``state_dict``) or a bare state dict.
        filename: Named in the error.
        revise_keys: ``(pattern, replacement)`` pairs applied to checkpoint keys, as
            mmengine does when loading.

    Raises:
        CheckpointMismatchError: naming the file and the first mismatched tensors.
    """
    state = checkpoint.get('state_dict', checkpoint)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shared, mismatched = 0, []
    for key, value in state.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        if key not in expected:
            continue
        shared += 1
        shape = tuple(getattr(value, 'shape', ()))
        if expected[key] != shape:
            mismatched.append(f'{key}: {shape} in the checkpoint, {expected[key]} in the model')
    if mismatched:
        more = '; ...' if len(mismatched) > 3 else ''
        raise CheckpointMismatchError(
            f'{filename}: {len(mismatched)} of {shared} tensors have other shapes than the '
            f'model ({"; ".join(mismatched[:3])}{more}); is it from another architecture?')
