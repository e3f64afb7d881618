"""WeightsOnlyCheckpointHook (registered by SLPDRunner): checkpoints load with
``torch.load(weights_only=True)`` and a resume restores the logged history."""
import torch
from mmengine.logging import HistoryBuffer

from slpd_plugin.engine.hooks.weights_only_checkpoint_hook import (
    FORMAT,
    FORMAT_KEY,
    decode_message_hub,
    encode_message_hub,
)
from slpd_plugin.engine.runner import SLPDRunner
from tests.engine.hooks.toy import logged

CHECKPOINT_EVERY_EPOCH = dict(checkpoint=dict(type='CheckpointHook', interval=1))


def test_checkpoints_load_weights_only(toy_runner):
    runner = toy_runner(runner_cls=SLPDRunner, max_epochs=1,
                        default_hooks=CHECKPOINT_EVERY_EPOCH)
    runner.train()
    ckpt = torch.load(f'{runner.work_dir}/epoch_1.pth', weights_only=True)
    assert ckpt[FORMAT_KEY] == FORMAT
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer['log'], torch.Tensor)
    assert buffer['log'].tolist() == logged(runner, 'train/loss')


def test_resume_restores_the_message_hub(toy_runner):
    full = toy_runner(runner_cls=SLPDRunner, max_epochs=2,
                      default_hooks=CHECKPOINT_EVERY_EPOCH)
    full.train()
    resumed = toy_runner(runner_cls=SLPDRunner, max_epochs=2,
                         default_hooks=CHECKPOINT_EVERY_EPOCH,
                         load_from=f'{full.work_dir}/epoch_1.pth', resume=True)
    resumed.train()
    assert resumed.iter == full.iter
    for key in ('train/loss', 'train/loss_a', 'train/lr'):
        assert logged(resumed, key) == logged(full, key), key


def test_encoding_round_trips_history_buffers():
    buffer = HistoryBuffer([0.5, 1.5, 2.5], [1, 1, 2], max_length=7)
    state = dict(log_scalars={'train/loss': buffer}, runtime_info={'epoch': 3})
    decoded = decode_message_hub(encode_message_hub(state))
    back = decoded['log_scalars']['train/loss']
    assert back.data[0].tolist() == [0.5, 1.5, 2.5]
    assert back.data[1].tolist() == [1, 1, 2] and back.max_length == 7
    assert decoded['runtime_info'] == {'epoch': 3}
