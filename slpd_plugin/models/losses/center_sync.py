"""One all-reduce per training step for every EMA centre of the losses.

The DINO centre and each prototype target's centre are averaged over all ranks. Done
one by one that is ``2 + r`` small collectives per step (``r`` inter-slide neighbours),
each a separate launch and a separate wait on the slowest rank. A loss that needs a
global statistic calls :func:`reduce_then` with its local statistic and what to do
with the summed one; inside :func:`merged_center_updates` the statistics are only
collected, then concatenated into one fp32 buffer, all-reduced once (sum) and handed
back in order when the block ends. Outside it, each call all-reduces on its own.

Example:
    >>> with merged_center_updates():
    ...     loss_dino = dino_loss(teacher_logits, student_logits)  # defers its centre
    ...     prototype_losses = head.loss(...)                       # defers its centres
    >>> # here: one all_reduce, then every centre updated
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from mmengine.dist import all_reduce, is_distributed
from torch import Tensor

Finish = Callable[[Tensor], None]
_pending: list[list[tuple[Tensor, Finish]]] = []  # one list per open merged block


def _reduce_all(parts: list[tuple[Tensor, Finish]]) -> None:
    if not parts:
        return
    stats = [s.detach().float().reshape(-1) for s, _ in parts]
    buffer = torch.cat(stats)  # (sum of sizes,)
    if is_distributed():
        all_reduce(buffer, op='sum')
    for (_, finish), summed in zip(parts, buffer.split([len(s) for s in stats])):
        finish(summed)


@torch.no_grad()
def reduce_then(local: Tensor, finish: Finish) -> None:
    """Sum ``local`` over all ranks (flattened, fp32) and call ``finish`` with the sum.

    Inside :func:`merged_center_updates` the call is deferred to the end of the block
    and shares its all-reduce with the other deferred calls; every rank must then make
    the same calls in the same order (as every rank must for any collective).

    Args:
        local: This rank's statistic, any shape; handed back flattened, (N,) fp32.
        finish: Called with the sum over ranks (the local value without a process group).
    """
    if _pending:
        _pending[-1].append((local, finish))
    else:
        _reduce_all([(local, finish)])


@contextmanager
def merged_center_updates() -> Iterator[None]:
    """Collect the :func:`reduce_then` calls of a block and run them as one all-reduce.

    They run when the block ends without an exception (no centre changes when it raises).
    """
    _pending.append([])
    try:
        yield
    except BaseException:
        _pending.pop()
        raise
    _reduce_all(_pending.pop())
