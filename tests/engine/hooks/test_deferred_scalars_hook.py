"""DeferredRuntimeInfoHook: the same logged values as mmengine's RuntimeInfoHook, put into
the message hub only where they are read (logging points, epoch ends, checkpoints)."""
import torch
from mmengine.hooks import Hook

from slpd_plugin.engine.hooks.weights_only_checkpoint_hook import decode_message_hub
from slpd_plugin.engine.runner import SLPDRunner
from tests.engine.hooks.toy import ITERS_PER_EPOCH, logged

LOG_INTERVAL = 3
KEYS = ('train/loss', 'train/loss_a', 'train/loss_b')


class LossCount(Hook):
    """Records, after every step, how many ``train/loss`` values the message hub holds."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.counts = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        buffer = runner.message_hub.log_scalars.get('train/loss')
        self.counts.append(0 if buffer is None else len(buffer.data[0]))


def test_same_history_as_runtime_info_hook_but_filled_only_where_read(toy_runner):
    eager, deferred = LossCount(), LossCount()
    runs = {}
    for name, hook, counter in (('RuntimeInfoHook', 'RuntimeInfoHook', eager),
                                ('Deferred', 'DeferredRuntimeInfoHook', deferred)):
        runs[name] = toy_runner(max_epochs=2, log_interval=LOG_INTERVAL,
                                default_hooks=dict(runtime_info=dict(type=hook)),
                                custom_hooks=[counter])
        runs[name].train()
    for key in KEYS:
        assert logged(runs['Deferred'], key) == logged(runs['RuntimeInfoHook'], key), key
    steps = range(1, 2 * ITERS_PER_EPOCH + 1)
    assert eager.counts == list(steps)
    # filled at every LOG_INTERVAL-th step of an epoch and at its last step
    read_points = [s for s in steps if ((s - 1) % ITERS_PER_EPOCH + 1) % LOG_INTERVAL == 0
                   or s % ITERS_PER_EPOCH == 0]
    assert deferred.counts == [max([0, *(p for p in read_points if p <= s)]) for s in steps]
    assert deferred.counts != eager.counts


def test_a_checkpoint_between_logging_points_holds_every_step(toy_runner):
    runner = toy_runner(
        runner_cls=SLPDRunner, max_epochs=1, log_interval=LOG_INTERVAL,
        default_hooks=dict(runtime_info=dict(type='DeferredRuntimeInfoHook'),
                           checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                           interval=2)))
    runner.train()
    ckpt = torch.load(f'{runner.work_dir}/iter_2.pth', weights_only=True)
    hub = decode_message_hub(ckpt['message_hub'])
    saved = hub['log_scalars']['train/loss'].data[0].tolist()
    assert saved == logged(runner, 'train/loss')[:2]  # iteration 2 is not a logging point
