"""Stop training after a non-finite loss, naming the first bad step and its slides."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS

from .deferred_scalars_hook import is_log_point, to_host


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite."""


class _Step(NamedTuple):
    epoch: int
    iter: int
    terms: dict  # loss name -> detached device scalar (or number)
    slide_index: torch.Tensor | None  # the loader's CPU tensor, (B,)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` when a logged loss term was NaN/Inf.

    Reading a loss on the host every step would stall a GPU every step, so each step's
    loss terms are kept as detached device scalars (with the batch's slide indexes, CPU
    tensors from the loader) and checked in one transfer where they are read anyway: at
    logging iterations (``LoggerHook.interval``), at the end of each epoch and of
    training, and before any checkpoint is written. Training therefore stops at the next
    of these points, up to ``interval - 1`` steps after the bad one, and the message names
    the FIRST bad step: epoch, iteration, every loss term and the slides of its batch.

    No checkpoint containing a bad step is written: this hook runs before every other
    ``after_train_iter`` / ``after_train_epoch`` hook (``CheckpointHook`` included), and a
    save at any other point first calls ``before_save_checkpoint``, where this hook
    raises and so stops the save. The newest checkpoint is from before the bad step.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._steps: list[_Step] = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: dict | None = None) -> None:
        """Keep the step's loss terms; check them all at a logging iteration."""
        terms = {k: v.detach() if isinstance(v, torch.Tensor) else v
                 for k, v in (outputs or {}).items() if 'loss' in k}
        samples = (data_batch or {}).get('data_samples')
        slides = samples.get('slide_index') if isinstance(samples, dict) else None
        self._steps.append(_Step(runner.epoch, runner.iter, terms, slides))
        if is_log_point(runner, batch_idx):
            self.check(runner)

    def check(self, runner) -> None:
        """Check every step since the last check; raise naming the first bad one."""
        steps, self._steps = self._steps, []
        values = iter(to_host([v for step in steps for v in step.terms.values()]))
        for step in steps:
            terms = {k: next(values) for k in step.terms}
            if not all(math.isfinite(v) for v in terms.values()):
                raise NonFiniteLossError(
                    f'non-finite loss at epoch {step.epoch + 1}, iteration {step.iter + 1}: '
                    f'{terms}; slides in the batch: {self._slide_ids(runner, step)}. '
                    f'Training stopped after iteration {steps[-1].iter + 1}; no checkpoint '
                    f'was written after the bad step, the newest in {runner.work_dir} is '
                    f'from before it.')

    @staticmethod
    def _slide_ids(runner, step: _Step) -> list[str] | str:
        ids = getattr(runner.train_dataloader.dataset, 'slide_ids', None)
        if step.slide_index is None or ids is None:
            return '?'
        return sorted({ids[i] for i in step.slide_index.tolist()})

    def after_train_epoch(self, runner) -> None:
        """Check the steps since the last check (raises on NaN/Inf)."""
        self.check(runner)

    def after_train(self, runner) -> None:
        """Check the steps since the last check (raises on NaN/Inf)."""
        self.check(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check before saving, so no checkpoint holds a bad step."""
        self.check(runner)
