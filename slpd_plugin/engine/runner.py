"""A Runner whose resume works on torch >= 2.6 without disabling weights-only loading.

Compat shim (2026-11, mmengine 0.10.7): mmengine loads checkpoints with a bare
``torch.load``; since torch 2.6 that means ``weights_only=True``, which refuses the
runner's own checkpoints (their message-hub state holds ``HistoryBuffer`` and numpy
objects). Only the resume of a checkpoint inside this run's ``work_dir`` -- a file this
runner wrote -- is loaded with ``weights_only=False``. Every other checkpoint
(``load_from``, HIPT weights, ``init_cfg``) still loads weights-only.
"""
from __future__ import annotations

import os
from typing import Callable

import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from slpd_plugin.registry import RUNNERS


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


@RUNNERS.register_module()
class SLPDRunner(Runner):
    """:class:`mmengine.runner.Runner` with a safe, working ``resume``."""

    _own_checkpoint: str | None = None

    @property
    def resuming(self) -> bool:
        """True while :meth:`resume` loads this run's own checkpoint."""
        return self._own_checkpoint is not None

    def resume(self, filename: str, *args, **kwargs) -> None:
        if not os.path.isfile(filename):
            raise FileNotFoundError(f'resume: checkpoint not found: {filename}')
        if not _inside(filename, self.work_dir):
            raise ValueError(
                f'resume: {filename} is not in this run\'s work_dir {self.work_dir}. Only '
                'a run\'s own checkpoints are resumed (they are unpickled); pass '
                '--work-dir of the run that wrote it, or start from other weights '
                'with load_from (weights-only).')
        self._own_checkpoint = os.path.realpath(filename)
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._own_checkpoint = None

    def load_checkpoint(self, filename: str, map_location: str | Callable = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006
        if self._own_checkpoint != os.path.realpath(filename):
            return super().load_checkpoint(filename, map_location, strict, revise_keys)
        checkpoint = torch.load(filename, map_location=map_location, weights_only=False)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if hasattr(self.model, 'module') else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Resumed from own checkpoint {filename}')
        return checkpoint
