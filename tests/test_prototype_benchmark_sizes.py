"""The prototype benchmark's quick sweep stays small, and its baseline refuses sizes whose
(S, S, K!) permutation tensor would not fit, without trying to build it."""
from __future__ import annotations

import itertools
import math
import time

import pytest
import torch

from benchmarks import prototypes as bench
from benchmarks.baselines.original_prototypes import (
    TooLargeForUpstream,
    machine_memory_bytes,
    neighbours_by_permutations,
    upstream_refusal,
)


def tensor_bytes(slides: int, k: int) -> int:
    return slides * slides * math.factorial(k) * 4  # float32 (S, S, K!)


def test_quick_sweep_runs_the_baseline_only_on_small_permutation_tensors():
    scales, ks = bench.sweep_sizes(quick=True)
    assert max(scales) <= 1  # the 10x scale is for full runs only
    sizes = [(round(bench.LUNG_SLIDES * s), bench.K) for s in scales]
    sizes += [(bench.LUNG_SLIDES, k) for k in ks]
    for slides, k in sizes:
        if upstream_refusal(slides, k) is None:  # the baseline runs: K! einsums per block
            assert math.factorial(k) <= 24 and tensor_bytes(slides, k) < 2**30, (slides, k)
        else:
            assert tensor_bytes(slides, k) > machine_memory_bytes(), (slides, k)
    # the refresh-vs-K sweep still measures our side at K = 8
    assert 8 in ks and upstream_refusal(bench.LUNG_SLIDES, 8, memory_bytes=10**11)


def test_refusal_names_the_memory_upstream_would_need():
    gb = tensor_bytes(1041, 8) / 1e9
    expected = f'upstream way: would need {gb:,.0f} GB'
    assert upstream_refusal(1041, 8, memory_bytes=10**11) == expected
    assert upstream_refusal(1041, 8, memory_bytes=tensor_bytes(1041, 8)) is None
    assert upstream_refusal(1041, 4, memory_bytes=tensor_bytes(1041, 4) - 1) is not None


def test_baseline_refuses_before_building_the_tensor():
    centroids = torch.randn(1041, 8, 16)
    start = time.process_time()
    with pytest.raises(TooLargeForUpstream, match=r'would need \d+ GB'):
        neighbours_by_permutations(centroids, memory_bytes=10**11)
    assert time.process_time() - start < 1  # 8! einsums over 1,041 slides take minutes


def test_baseline_below_the_limit_finds_the_best_permutation_neighbour():
    g = torch.Generator().manual_seed(0)
    centroids = torch.nn.functional.normalize(torch.randn(6, 3, 8, generator=g), dim=-1)
    neighbours, _ = neighbours_by_permutations(centroids, memory_bytes=tensor_bytes(6, 3))
    for s in range(6):  # brute force: best sum of matched inner products over permutations
        score = [max(sum(float(centroids[s, i] @ centroids[t, p[i]]) for i in range(3))
                     for p in itertools.permutations(range(3))) if t != s else -math.inf
                 for t in range(6)]
        assert neighbours[s, 0] == max(range(6), key=score.__getitem__)
