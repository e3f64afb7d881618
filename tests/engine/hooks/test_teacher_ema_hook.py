"""TeacherEMAHook: the teacher after every optimizer step, against a hand-computed EMA."""
import copy
import math

import pytest
import torch
from mmengine.hooks import Hook
from torch import nn

from slpd_plugin.registry import HOOKS
from tests.engine.hooks.toy import ITERS_PER_EPOCH, ToyModel, logged

START, END = 0.9, 0.99  # far from 1, so that each step moves the teacher visibly


class ToyDistiller(ToyModel):
    """:class:`ToyModel` trained as ``student``, with a frozen ``teacher`` copy of it."""

    def __init__(self) -> None:
        super().__init__()
        self.student = nn.Sequential(self.norm, self.linear)
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)


class RecordStates(Hook):
    """After the EMA hook (lower priority): copies of student and teacher parameters."""

    priority = 'LOW'

    def __init__(self) -> None:
        self.states: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        model = runner.model
        self.states.append(([p.detach().clone() for p in model.student.parameters()],
                            [p.detach().clone() for p in model.teacher.parameters()]))


def test_teacher_is_the_cosine_momentum_ema_of_the_student_after_every_step(toy_runner):
    record = RecordStates()
    runner = toy_runner(model=ToyDistiller(), max_epochs=2, custom_hooks=[
        dict(type='TeacherEMAHook', momentum=START, end_momentum=END), record])
    initial = [p.detach().clone() for p in runner.model.student.parameters()]
    runner.train()
    total = 2 * ITERS_PER_EPOCH
    assert len(record.states) == total
    momenta = [END - (END - START) * (1 + math.cos(math.pi * i / (total - 1))) / 2
               for i in range(total)]
    teacher = initial
    for (student, got), m in zip(record.states, momenta):
        assert any(not torch.equal(s, t) for s, t in zip(student, got))  # not a copy
        teacher = [m * t + (1 - m) * s for t, s in zip(teacher, student)]
        for want, have in zip(teacher, got):
            torch.testing.assert_close(have, want, rtol=1e-6, atol=1e-7)
    assert logged(runner, 'train/teacher_momentum') == pytest.approx(momenta, abs=1e-12)


def test_momenta_outside_zero_to_one_are_refused():
    for bad in (dict(momentum=-0.1), dict(momentum=0.9, end_momentum=0.8),
                dict(end_momentum=1.1)):
        with pytest.raises(ValueError, match='need 0 <= momentum <= end_momentum <= 1'):
            HOOKS.build(dict(type='TeacherEMAHook', **bad))
