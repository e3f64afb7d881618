import math

import torch

from slpd_plugin.prototypes.churn import assignment_churn


def test_renamed_clusters_do_not_count_as_churn():
    old = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    slide = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    renamed = torch.tensor([2, 2, 0, 0, 1, 1, 1, 0])  # a permutation per slide
    assert assignment_churn(old, renamed, slide, 3) == 0.0


def test_moved_regions_count_and_missing_prototypes_are_ignored():
    old = torch.tensor([0, 0, 0, 1, 1, 1, -1])
    new = torch.tensor([1, 1, 0, 0, 0, 0, 0])  # region 2 moved to the other cluster
    slide = torch.zeros(7, dtype=torch.long)
    # new 1 -> old 0 (2 regions), new 0 -> old 1 (3 of 4): 1 of 6 counted regions moved
    assert abs(assignment_churn(old, new, slide, 2) - 1 / 6) < 1e-9
    # no region with a prototype before: churn is undefined
    assert math.isnan(assignment_churn(torch.full((3,), -1), new[:3], slide[:3], 2))
