"""NonFiniteLossHook: a NaN loss stops training at the next point where losses are read,
naming the first bad step and its slides; no checkpoint holds the bad step."""
from pathlib import Path

import pytest

from slpd_plugin.engine.hooks import NonFiniteLossError
from tests.engine.hooks.toy import BATCH_SIZE, ToyRegions

BAD_REGION = 3  # in batch 1 (0-based): the second training iteration
BAD_ITER = BAD_REGION // BATCH_SIZE + 1  # 1-based, as in the log
LOG_INTERVAL = 3  # losses are read after iteration 3; the NaN weights spoil it too


def train_on_a_nan(toy_runner, **kwargs) -> tuple[str, ToyRegions, str]:
    data = ToyRegions(nan_at=(BAD_REGION,))
    runner = toy_runner(dataset=data, max_epochs=2, log_interval=LOG_INTERVAL,
                        custom_hooks=[dict(type='NonFiniteLossHook')], **kwargs)
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    return str(err.value), data, runner.work_dir


def test_names_the_first_bad_step_its_terms_and_slides(toy_runner):
    message, data, _ = train_on_a_nan(toy_runner)
    assert f'epoch 1, iteration {BAD_ITER}:' in message  # not iteration 3, also NaN
    assert f'stopped after iteration {LOG_INTERVAL};' in message
    assert "'loss_a': nan" in message and "'loss_b': nan" in message
    first = BAD_REGION - BAD_REGION % BATCH_SIZE
    assert str(data.slide_ids[first:first + BATCH_SIZE]) in message


def test_no_checkpoint_is_written_after_the_bad_step(toy_runner):
    every_iteration = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1))
    message, _, work_dir = train_on_a_nan(toy_runner, default_hooks=every_iteration)
    assert f'iteration {BAD_ITER}:' in message
    saved = sorted(p.name for p in Path(work_dir).glob('iter_*.pth'))
    assert saved == [f'iter_{i}.pth' for i in range(1, BAD_ITER)]


def test_finite_losses_train_to_the_end(toy_runner):
    runner = toy_runner(max_epochs=2, custom_hooks=[dict(type='NonFiniteLossHook')])
    runner.train()
    assert runner.iter == 2 * len(ToyRegions()) // BATCH_SIZE
