"""Keep checkpoints loadable with ``torch.load(weights_only=True)``.

mmengine stores its message hub (``HistoryBuffer`` objects, numpy scalars) in every
checkpoint, which weights-only loading refuses. Before saving, this hook rewrites that
part into tensors and plain Python values; after loading, it rebuilds the objects. So a
resume never unpickles arbitrary objects, not even from this run's own files.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

FORMAT_KEY = 'message_hub_format'
FORMAT = 'slpd-weights-only-v1'


def _plain(value):
    """Convert numpy scalars/arrays to Python scalars/tensors, recursively."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def encode_message_hub(state: dict) -> dict:
    """Message-hub state with every ``HistoryBuffer`` as a dict of tensors."""
    scalars = {name: dict(log=torch.from_numpy(np.asarray(buf._log_history, np.float64)),
                          count=torch.from_numpy(np.asarray(buf._count_history, np.int64)),
                          max_length=int(buf.max_length))
               for name, buf in state['log_scalars'].items()}
    return dict(_plain({k: v for k, v in state.items() if k != 'log_scalars'}),
                log_scalars=scalars)


def decode_message_hub(state: dict) -> dict:
    """Inverse of :func:`encode_message_hub`."""
    scalars = {name: HistoryBuffer(buf['log'].tolist(), buf['count'].tolist(),
                                   buf['max_length'])
               for name, buf in state['log_scalars'].items()}
    return dict(state, log_scalars=scalars)


class WeightsOnlyCheckpointHook(Hook):
    """Encode the message hub when saving, decode it when loading (see module doc).

    Registered by :class:`~slpd_plugin.engine.runner.SLPDRunner` itself with the lowest
    priority, so it runs after every hook that adds to the checkpoint.
    """

    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Turn the message hub and meta into plain tensors and numbers, and mark the format."""
        checkpoint['message_hub'] = encode_message_hub(checkpoint['message_hub'])
        checkpoint['meta'] = _plain(checkpoint['meta'])
        checkpoint[FORMAT_KEY] = FORMAT

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Rebuild the message hub of a checkpoint saved in this format."""
        if checkpoint.get(FORMAT_KEY) == FORMAT and 'message_hub' in checkpoint:
            checkpoint['message_hub'] = decode_message_hub(checkpoint['message_hub'])
