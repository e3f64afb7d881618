"""WeightDecayLogHook: the scheduled weight decay is logged as ``wd`` at every step."""
from mmengine.hooks import Hook

from tests.engine.hooks.toy import ITERS_PER_EPOCH, logged


class DecayOfTheWeights(Hook):
    """Records, before every step, the decay of the optimizer group of ``linear.weight``."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.values = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        weight = runner.model.linear.weight
        group = next(g for g in runner.optim_wrapper.param_groups
                     if any(p is weight for p in g['params']))
        self.values.append(group['weight_decay'])


def test_logs_the_scheduled_decay_of_decayed_groups_not_of_exempt_ones(toy_runner):
    reference = DecayOfTheWeights()
    total = 2 * ITERS_PER_EPOCH
    runner = toy_runner(
        max_epochs=2,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=0.1),
                           # norm weights and biases, the first groups, get no decay
                           paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0)),
        param_scheduler=dict(type='LinearParamScheduler', param_name='weight_decay',
                             start_factor=1.0, end_factor=0.25, by_epoch=False, begin=0,
                             end=total),
        custom_hooks=[dict(type='WeightDecayLogHook'), reference])
    runner.train()
    assert runner.optim_wrapper.param_groups[0]['weight_decay'] == 0.0
    assert len(set(reference.values)) == total  # the schedule moves every step
    assert logged(runner, 'train/wd') == reference.values
