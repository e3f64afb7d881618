"""Save every rank's RNG states in checkpoints so a resumed run repeats the same steps."""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dist import all_gather, get_dist_info
from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS

CKPT_KEY = 'random_state'
NUM_PARTS = 6


def capture() -> torch.Tensor:
    """This process's torch, numpy and Python RNG states packed into one uint8 tensor."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    parts = [torch.get_rng_state(),
             torch.from_numpy(np.asarray(np_state[1], dtype='<u4').view(np.uint8).copy()),
             torch.tensor([np_state[2], np_state[3]], dtype=torch.int64).view(torch.uint8),
             torch.tensor(np.float64(np_state[4]).reshape(1)).view(torch.uint8),
             torch.tensor(py_state[1], dtype=torch.int64).view(torch.uint8),
             torch.tensor([np.nan if py_state[2] is None else py_state[2]],
                          dtype=torch.float64).view(torch.uint8)]
    sizes = torch.tensor([len(p) for p in parts], dtype=torch.int64).view(torch.uint8)
    return torch.cat([sizes, *parts])


def restore(packed: torch.Tensor) -> None:
    """Inverse of :func:`capture`."""
    header = 8 * NUM_PARTS
    sizes = packed[:header].clone().view(torch.int64).tolist()
    parts = torch.split(packed[header:], sizes)
    torch.set_rng_state(parts[0].clone())
    pos, has_gauss = parts[2].clone().view(torch.int64).tolist()
    gauss = float(parts[3].clone().view(torch.float64))
    np.random.set_state(('MT19937', parts[1].numpy().view('<u4'), pos, has_gauss, gauss))
    py_gauss = float(parts[5].clone().view(torch.float64))
    random.setstate((3, tuple(parts[4].clone().view(torch.int64).tolist()),
                     None if np.isnan(py_gauss) else py_gauss))


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Put each rank's RNG states (torch CPU, numpy, Python) into epoch-end checkpoints.

    Crops, dropout and stochastic depth draw from these generators; restoring them on
    resume makes the resumed run take the same steps as the uninterrupted one (CPU,
    fp32). States are gathered at the end of every epoch (all ranks take part) and
    written by rank 0; on resume each rank takes its own, if the world size is the same
    and the checkpoint was written at the end of an epoch.
    """

    priority = 'HIGH'  # gathered before CheckpointHook (VERY_LOW) saves

    def __init__(self) -> None:
        self._states: torch.Tensor | None = None
        self._iter = -1

    def after_train_epoch(self, runner) -> None:
        self._states = torch.stack(all_gather(capture()))  # (W, bytes)
        self._iter = runner.iter

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._states is not None and self._iter == runner.iter:
            checkpoint[CKPT_KEY] = self._states.clone()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, 'resuming', False):
            return  # load_from: weights only, fresh randomness
        states = checkpoint.get(CKPT_KEY)
        rank, world = get_dist_info()
        if states is None or len(states) != world:
            runner.logger.warning('checkpoint has no RNG states for this world size: the '
                                  'resumed run will not repeat the same random draws')
            return
        restore(states[rank].cpu())
