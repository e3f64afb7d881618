"""BlockMaskGenerator: masks inside the tissue, the share of masked grids, ratios spread
over the range, rectangles of the configured size and shape, reproducible under a seed."""
import numpy as np
import pytest
import torch

from slpd_plugin.registry import MODELS


def generator(**kw):
    return MODELS.build(dict(type='BlockMaskGenerator', **kw))


def tissue(b=64, h=20, w=20, seed=0, keep=0.8):
    return torch.rand(b, h, w, generator=torch.Generator().manual_seed(seed)) < keep


def rectangles(mask: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """Connected components (4-neighbourhood) of a 2-D mask as (top, left, rows, cols)
    of their bounding boxes, asserting that each fills its box."""
    seen, boxes = torch.zeros_like(mask), []
    for i, j in mask.nonzero().tolist():
        if seen[i, j]:
            continue
        stack, cells = [(i, j)], []
        seen[i, j] = True
        while stack:
            a, b = stack.pop()
            cells.append((a, b))
            for c, d in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):
                if 0 <= c < mask.shape[0] and 0 <= d < mask.shape[1] and mask[c, d] \
                        and not seen[c, d]:
                    seen[c, d] = True
                    stack.append((c, d))
        rows = [a for a, _ in cells]
        cols = [b for _, b in cells]
        box = (min(rows), min(cols), max(rows) - min(rows) + 1, max(cols) - min(cols) + 1)
        boxes.append((*box, len(cells)))
    return boxes


def test_masks_stay_inside_the_tissue_and_below_the_largest_ratio():
    t = tissue()
    torch.manual_seed(0)
    masks = generator(mask_probability=1.0)(t)
    assert masks.dtype == torch.bool and masks.shape == t.shape
    assert not (masks & ~t).any()
    counts, cells = masks.flatten(1).sum(1), t.flatten(1).sum(1)
    assert (counts <= (0.5 * cells).long()).all()
    assert (counts > 0).all()
    # the targets are mostly reached on 20x20 grids (a grid stops short when 10
    # rectangles in a row do not fit what is left)
    assert counts.sum() > 0.7 * (0.3 * cells).sum()


def test_about_mask_probability_of_the_grids_are_masked():
    torch.manual_seed(0)
    for p in (0.0, 0.3, 1.0):
        masked = generator(mask_probability=p)(tissue(b=400, keep=1.0)).flatten(1).any(1)
        assert abs(masked.float().mean().item() - p) < 0.06  # binomial sd <= 0.025


def test_ratios_take_one_draw_per_even_sub_interval_in_random_order():
    gen = generator(min_ratio=0.1, max_ratio=0.5)
    ratios = gen.ratios(8, np.random.default_rng(0))
    edges = np.linspace(0.1, 0.5, 9)
    ordered = np.sort(ratios)
    assert ((edges[:-1] <= ordered) & (ordered <= edges[1:])).all()
    assert not (ratios == ordered).all()  # shuffled (8! orders: one is sorted)
    # so the masked fractions of 8 full grids fall one per sub-interval too (a grid
    # may end a little short of its target, never above it)
    torch.manual_seed(1)
    full = torch.ones(8, 30, 30, dtype=torch.bool)
    counts = generator(mask_probability=1.0, min_num_patches=1)(full).flatten(1).sum(1)
    fractions = np.sort(counts.numpy()) / 900
    assert (fractions <= edges[1:]).all() and (fractions >= 0.8 * edges[:-1]).all()


@pytest.mark.parametrize('seed', range(5))
def test_each_rectangle_has_the_minimum_size_and_an_aspect_ratio_in_range(seed):
    # target of 5 to 7 cells on a full grid: exactly one rectangle (a second one
    # would need 4 more cells), so its shape is visible
    gen = generator(mask_probability=1.0, min_ratio=5 / 400, max_ratio=7.99 / 400)
    torch.manual_seed(seed)
    masks = gen(torch.ones(32, 20, 20, dtype=torch.bool))
    nonempty = [m for m in masks if m.any()]  # 10 rejected draws in a row end a grid
    assert len(nonempty) > 24
    for mask in nonempty:
        [(_, _, rows, cols, size)] = rectangles(mask)
        assert size == rows * cols >= 4  # a full rectangle of at least min_num_patches
        assert 0.3 <= rows / cols <= 1 / 0.3 + 1e-9


def test_max_num_patches_caps_the_rectangles():
    # a target of 7 cells: one rectangle of up to 7 cells; capped at 4, a 2x2 square
    # (1x4 is too elongated), after which the 3 cells left cannot take another
    gen = generator(mask_probability=1.0, min_ratio=7 / 400, max_ratio=7.99 / 400,
                    max_num_patches=4)
    torch.manual_seed(0)
    masks = gen(torch.ones(16, 20, 20, dtype=torch.bool))
    assert masks.flatten(1).any(1).sum() > 10
    for mask in masks:
        assert [box[2:] for box in rectangles(mask)] in ([], [(2, 2, 4)])


def test_reproducible_under_a_seed_or_a_generator():
    t = tissue(b=16)
    torch.manual_seed(3)
    a = generator()(t)
    torch.manual_seed(3)
    b = generator()(t)
    assert torch.equal(a, b)
    c = generator()(t, torch.Generator().manual_seed(3))
    d = generator()(t, torch.Generator().manual_seed(3))
    e = generator()(t, torch.Generator().manual_seed(4))
    assert torch.equal(c, d) and not torch.equal(c, e)


def test_empty_tissue_gives_empty_masks_and_bad_arguments_are_refused():
    torch.manual_seed(0)
    assert not generator(mask_probability=1.0)(torch.zeros(4, 8, 8, dtype=torch.bool)).any()
    with pytest.raises(ValueError, match=r'\(B, H, W\) bool'):
        generator()(torch.ones(4, 8, 8))
    for bad in (dict(mask_probability=1.5), dict(min_ratio=0.6), dict(min_num_patches=0),
                dict(min_aspect=0.0), dict(max_attempts=0)):
        with pytest.raises(ValueError, match='BlockMaskGenerator'):
            generator(**bad)
