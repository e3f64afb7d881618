"""NonFiniteLossHook: a NaN loss stops training at the next point where losses are read,
naming the first bad step and its slides; no checkpoint holds the bad step."""
from pathlib import Path

import pytest

from slpd_plugin.engine.hooks import NonFiniteLossError
from tests.engine.hooks.toy import BATCH_SIZE, ToyRegions

BAD_REGION = 3  # batch 1 (0-based): the second training iteration


def test_stops_naming_the_first_bad_step_and_saves_nothing_after_it(toy_runner):
    data = ToyRegions(nan_at=(BAD_REGION,))
    runner = toy_runner(dataset=data, max_epochs=2, log_interval=3,
                        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                                           by_epoch=False, interval=1)),
                        custom_hooks=[dict(type='NonFiniteLossHook')])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    bad_iter = BAD_REGION // BATCH_SIZE + 1  # 1-based, as in the log
    first = BAD_REGION - BAD_REGION % BATCH_SIZE
    slides = data.slide_ids[first:first + BATCH_SIZE]
    message = str(err.value)
    assert f'epoch 1, iteration {bad_iter}:' in message  # the first bad step, not a later one
    assert "'loss_a': nan" in message and "'loss_b': nan" in message
    assert str(slides) in message
    saved = sorted(p.name for p in Path(runner.work_dir).glob('iter_*.pth'))
    assert saved == [f'iter_{i}.pth' for i in range(1, bad_iter)]


def test_finite_losses_train_to_the_end(toy_runner):
    runner = toy_runner(max_epochs=2, custom_hooks=[dict(type='NonFiniteLossHook')])
    runner.train()
    assert runner.iter == 2 * len(ToyRegions()) // BATCH_SIZE
