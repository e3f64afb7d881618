"""Refuse a resume whose process count or batch size would shift the schedules."""
from __future__ import annotations

from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS

from .resume_detection import checkpoint_iter, is_resume_of

CKPT_KEY = 'run_layout'


def run_layout(runner) -> dict[str, int]:
    """Processes, batch size per process and iterations per epoch of ``runner``'s run."""
    loader = runner.train_loop.dataloader
    batch = loader.batch_size if loader.batch_size is not None else \
        getattr(loader.batch_sampler, 'batch_size', 0)
    return dict(world_size=get_world_size(), batch_size=int(batch or 0),
                iters_per_epoch=len(loader))


def _describe(layout: dict) -> str:
    w, b = layout['world_size'], layout['batch_size']
    return (f'{w} process(es) x batch_size {b} = {w * b} regions per step, '
            f'{layout["iters_per_epoch"]} iterations per epoch')


@HOOKS.register_module()
class RunLayoutHook(Hook):
    """Record the run's layout in checkpoints; on resume, refuse a layout that differs.

    Saved under ``checkpoint['run_layout']``: world size, ``train_dataloader.batch_size``
    (per process) and iterations per epoch. The parameter schedulers' state counts
    iterations of the old epoch length, and ``auto_scale_lr`` scaled the learning rate
    for the old total batch; the checkpoint's optimizer and scheduler states bring both
    back. So resuming with another total batch (world size x batch size) or another
    epoch length would shift every schedule silently: :meth:`before_train` raises
    instead, saying what to do. With another world size but the same total batch and
    epoch length, the schedules stay right and the run goes on with a warning (RNG states
    are per rank and cannot be restored, see ``RandomStateHook``).

    Example:
        >>> default_hooks = dict(run_layout=dict(type='RunLayoutHook'))
    """

    priority = 'VERY_HIGH'  # refuse before any other hook prepares training

    def __init__(self) -> None:
        self._loaded: tuple[int, dict | None] | None = None  # (iter, layout)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the run's layout (world size, batch size, iterations per epoch)."""
        checkpoint[CKPT_KEY] = run_layout(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the saved layout until :meth:`before_train` knows if it is a resume."""
        self._loaded = (checkpoint_iter(checkpoint), checkpoint.get(CKPT_KEY))

    def before_train(self, runner) -> None:
        """On a resume, refuse a layout that changes what one step or one epoch is."""
        if self._loaded is None:
            return
        loaded_iter, saved = self._loaded
        self._loaded = None
        if not is_resume_of(runner, loaded_iter):
            return  # load_from: weights only, any layout
        if saved is None:
            runner.logger.warning('resumed from a checkpoint without a run layout (older '
                                  'version): cannot check that the world size and batch '
                                  'size are those it was written with')
            return
        saved = {k: int(v) for k, v in saved.items()}
        now = run_layout(runner)
        same_step = (saved['world_size'] * saved['batch_size'] == now['world_size'] *
                     now['batch_size'] and saved['iters_per_epoch'] == now['iters_per_epoch'])
        if not same_step:
            raise RuntimeError(
                f'cannot resume: the checkpoint was written by {_describe(saved)}; this run '
                f'has {_describe(now)}. The learning-rate, weight-decay and momentum '
                f'schedules were saved in the old iterations per epoch and auto_scale_lr '
                f'scaled the learning rate for the old total batch, so they would shift '
                f'silently. Either resume with {saved["world_size"]} process(es) and '
                f'train_dataloader.batch_size={saved["batch_size"]} (or another pair with '
                f'the same product and the same iterations per epoch), or start a new run '
                f'from these weights: --cfg-options load_from=<checkpoint> without '
                f'--resume, in a new work dir.')
        if saved['world_size'] != now['world_size']:
            runner.logger.warning(
                f'resumed on {now["world_size"]} process(es), the checkpoint was written by '
                f'{saved["world_size"]}: same total batch and epoch length, so the schedules '
                f'continue unchanged; the data order per process and the random draws differ '
                f'from the uninterrupted run')
