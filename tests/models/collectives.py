"""Count the all-reduces of a block (the real collective still runs)."""
from contextlib import contextmanager
from typing import Iterator

import torch.distributed as dist


@contextmanager
def counted_all_reduces() -> Iterator[list[int]]:
    """Yield a list that receives the number of elements of every ``all_reduce`` call."""
    sizes, real = [], dist.all_reduce

    def counting_all_reduce(tensor, *args, **kwargs):
        sizes.append(tensor.numel())
        return real(tensor, *args, **kwargs)

    dist.all_reduce = counting_all_reduce
    try:
        yield sizes
    finally:
        dist.all_reduce = real
