"""Stop training at the first non-finite loss, saying where and on which slides."""
from __future__ import annotations

import math

from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` when any logged loss term is NaN/Inf.

    Runs before every other ``after_train_iter`` hook, so no checkpoint is written after
    the bad step: the last good checkpoint stays the newest. The message names the epoch,
    iteration, every loss term and the slides of the batch.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        terms = {k: float(v) for k, v in (outputs or {}).items() if 'loss' in k}
        if all(math.isfinite(v) for v in terms.values()):
            return
        slides = '?'
        samples = (data_batch or {}).get('data_samples')
        dataset = runner.train_dataloader.dataset
        if isinstance(samples, dict) and 'slide_index' in samples and hasattr(dataset, 'slide_ids'):
            ids = dataset.slide_ids
            slides = sorted({ids[int(i)] for i in samples['slide_index']})
        raise NonFiniteLossError(
            f'non-finite loss at epoch {runner.epoch + 1}, iteration {runner.iter + 1}: '
            f'{terms}; slides in the batch: {slides}. Training stopped; the newest '
            f'checkpoint in {runner.work_dir} is from before this step.')
