"""A Runner with weights-only, atomically written checkpoints and short-run warnings.

It warns before training when the run is too short for its schedules.

Compat shim (2026-11, mmengine 0.10.7): mmengine saves ``HistoryBuffer`` objects and
numpy scalars in every checkpoint and loads with a bare ``torch.load``. Since torch 2.6
that means ``weights_only=True``, which refuses mmengine's own checkpoints on resume;
the usual workaround (``weights_only=False``) unpickles arbitrary objects. Instead,
:class:`WeightsOnlyCheckpointHook` stores those parts as tensors and plain values, and
this runner loads every checkpoint -- resume, ``load_from``, HIPT weights -- with
``weights_only=True`` explicitly, whatever the torch version's default, and only from
local files (mmengine's URL loader would unpickle). A checkpoint whose tensors do not
fit the model's shapes stops the run with a clear error.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable

from mmengine.dist import master_only
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from slpd_plugin.registry import RUNNERS
from slpd_plugin.utils.model import unwrap
from slpd_plugin.utils.weights import load_weights_only

from .checkpoint_check import check_checkpoint_shapes
from .hooks.schedule_check_hook import ScheduleCheckHook
from .hooks.weights_only_checkpoint_hook import WeightsOnlyCheckpointHook


@RUNNERS.register_module()
class SLPDRunner(Runner):
    """:class:`mmengine.runner.Runner` with weights-only loading and atomic saving."""

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """Register the configured hooks plus :class:`WeightsOnlyCheckpointHook`."""
        super().register_hooks(default_hooks, custom_hooks)
        self.register_hook(WeightsOnlyCheckpointHook())
        self.register_hook(ScheduleCheckHook())  # warns when the run is too short

    def resume(self, filename: str, *args, **kwargs) -> None:
        """Resume from ``filename``; a missing file is a clear error."""
        if not osp.isfile(filename):
            raise FileNotFoundError(f'resume: checkpoint not found: {filename}')
        super().resume(filename, *args, **kwargs)

    def load_checkpoint(self, filename: str, map_location: str | Callable = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006
        """Load ``filename`` weights-only into the model after a shape check; returns it."""
        # Not mmengine's loader: it would fetch URLs and unpickle them.
        checkpoint = load_weights_only(filename, 'checkpoint', map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = unwrap(self.model)
        check_checkpoint_shapes(model, checkpoint, filename, revise_keys)
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        """Write to a hidden temporary file, then rename: never a half-written file."""
        tmp = f'.{filename}.tmp'
        super().save_checkpoint(out_dir, tmp, *args, **kwargs)
        os.replace(osp.join(out_dir, tmp), osp.join(out_dir, filename))
