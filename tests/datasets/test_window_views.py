"""Window multi-crop of slide lattices: every view is a true window of its slide, flipped
and rotated with its mask; the views are reproducible under a fixed seed with loader
workers; the batch reaches SLPD's loss as lists of views and masks."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from lattice_reference import dense_slide
from patch_files import write_trident

from slpd_plugin.datasets.lattice import SlideWindowViewsDataset
from slpd_plugin.datasets.stores import StoreError
from slpd_plugin.registry import DATASETS, MODELS

JOB = '20x_256px_0px_overlap'
STRIDE = 256
SIZES = ((50, 38), (29, 44))  # (cols, rows) of the two slides' lattices


def coordinate_slides(root, keep=0.7, seed=0):
    """A TRIDENT job whose features are their own cell: ``(row + 1, col + 1, slide + 1)``.

    Returns the job folder and each slide's dense presence map (from the slide origin).
    """
    rng = np.random.default_rng(seed)
    present = []
    for s, (cols, rows) in enumerate(SIZES):
        cells = np.array([(c, r) for r in range(rows) for c in range(cols)
                          if rng.random() < keep], dtype=np.int64)
        cells = cells[rng.permutation(len(cells))]  # files need not be in lattice order
        feats = np.stack([cells[:, 1] + 1, cells[:, 0] + 1, np.full(len(cells), s + 1)],
                         axis=1).astype(np.float32)
        write_trident(root / 'job' / JOB / 'features_uni_v1' / f'slide{s}.h5',
                      cells * STRIDE, feats)
        present.append(dense_slide(cells * STRIDE, feats, STRIDE)[1])
    return root / 'job', present


def window_cell(i, j, s, swap, flip_i, flip_j):
    """Window cell ``(a, b)`` shown at view cell ``(i, j)`` under one of the 8 symmetries."""
    a, b = (j, i) if swap else (i, j)
    return (s - 1 - a if flip_i else a), (s - 1 - b if flip_j else b)


def locate(view: np.ndarray, mask: np.ndarray, present: np.ndarray) -> list[tuple]:
    """The symmetries (and window corners) under which ``view`` is a window of the slide.

    ``view`` is ``(3, s, s)`` coordinate features; a symmetry fits when the lattice cells
    shown imply one window corner, and every cell the mask calls empty is empty in the
    slide (``present``, dense from the slide origin).
    """
    s = view.shape[-1]
    i, j = np.indices((s, s))
    fits = []
    for sym in itertools.product((0, 1), repeat=3):
        a, b = window_cell(i, j, s, *sym)
        rows, cols = view[0][mask] - 1 - a[mask], view[1][mask] - 1 - b[mask]
        if len(set(rows)) != 1 or len(set(cols)) != 1:
            continue
        r0, c0 = int(rows[0]), int(cols[0])
        r, c = r0 + a[~mask], c0 + b[~mask]
        inside = (r >= 0) & (r < present.shape[0]) & (c >= 0) & (c < present.shape[1])
        if not present[r[inside], c[inside]].any():
            fits.append((sym, r0, c0))
    return fits


def test_every_view_is_a_window_with_its_mask_after_flips_and_rotations(tmp_path):
    job, present = coordinate_slides(tmp_path)
    ds = DATASETS.build(dict(type='SlideWindowViewsDataset', store=str(job), channels=3,
                             min_tissue=0.3, samples_per_slide=40))
    batch = ds.__getitems__(np.arange(len(ds)))
    symmetries = []
    for sample in batch:
        slide = sample['data_samples']['slide_index']
        assert [tuple(v.shape) for v in sample['inputs']] == [(3, 20, 20)] * 2 + [(3, 12, 12)] * 4
        assert [m.dtype for m in sample['masks']] == [torch.bool] * 6
        for view, mask in zip(sample['inputs'], sample['masks']):
            view, mask = view.numpy(), mask.numpy()
            np.testing.assert_array_equal(mask, view[0] > 0)  # mask = where a patch is
            assert (view[2][mask] == slide + 1).all() and mask.mean() >= 0.3
            fits = locate(view, mask, present[slide])
            assert fits, 'a view is no (flipped/rotated) window of its slide'
            if len(fits) == 1:
                symmetries.append(fits[0][0])
    # hflip, vflip and rot90 together reach all 8 symmetries of the square
    assert len(set(symmetries)) == 8 and len(symmetries) > 0.9 * 6 * len(ds)


def test_no_flips_means_views_as_stored(tmp_path):
    job, present = coordinate_slides(tmp_path)
    ds = SlideWindowViewsDataset(str(job), hflip_prob=0, vflip_prob=0, rot90=False,
                                 num_local=2, local_size=5, samples_per_slide=8)
    for sample in ds.__getitems__(np.arange(len(ds))):
        assert [v.shape[-1] for v in sample['inputs']] == [20, 20, 5, 5]
        for view, mask in zip(sample['inputs'], sample['masks']):
            fits = locate(view.numpy(), mask.numpy(), present[sample['data_samples']
                                                              ['slide_index']])
            assert ((0, 0, 0) in [f[0] for f in fits])


def test_prototype_windows_are_the_global_size_tiling(tmp_path):
    """The refresh's windows: a fixed tiling, the same from two independently built
    datasets, each tile a true unrotated window aligned to multiples of 20 cells."""
    job, present = coordinate_slides(tmp_path)
    a = SlideWindowViewsDataset(str(job)).prototype_dataset
    b = SlideWindowViewsDataset(str(job), samples_per_slide=3).prototype_dataset
    first, second = a.__getitems__(np.arange(len(a))), b.__getitems__(np.arange(len(b)))
    assert len(a) == len(b) > 0
    for x, y in zip(first, second):
        assert torch.equal(x['inputs'], y['inputs']) and torch.equal(x['masks'], y['masks'])
        view, mask = x['inputs'].numpy(), x['masks'].numpy()
        assert view.shape == (3, 20, 20)
        fits = locate(view, mask, present[x['data_samples']['slide_index']])
        assert any(sym == (0, 0, 0) and r0 % 20 == 0 and c0 % 20 == 0
                   for sym, r0, c0 in fits)
    # by default, one training sample per tile of each slide
    np.testing.assert_array_equal(np.bincount(SlideWindowViewsDataset(str(job)).slide_index),
                                  np.bincount(a.slide_index))


def _loader_views(job, seed: int, persistent: bool, shuffle: bool,
                  epochs: int = 2) -> list[list[torch.Tensor]]:
    """Every batch's views over ``epochs`` epochs of a freshly built training loader."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('slpd_plugin')  # as a config's default_scope
    torch.manual_seed(seed)  # as the runner seeds the main process (randomness.seed)
    loader = Runner.build_dataloader(dict(
        batch_size=4, num_workers=2, persistent_workers=persistent,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type='SlideWindowViewsDataset', store=str(job), samples_per_slide=6,
                     cache_mb=1)), seed=seed)
    out = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        out.append([torch.cat([v.flatten() for v in batch['inputs'] + batch['masks']])
                    for batch in loader])
    return out


@pytest.mark.parametrize('persistent,shuffle', [(True, True), (False, False)])
def test_reproducible_under_a_fixed_seed_with_workers(tmp_path, persistent, shuffle):
    """The same views for the same seed; new views every epoch, also when fresh workers
    start each epoch with the same worker seeds and see the same batches."""
    job, _ = coordinate_slides(tmp_path)
    run, again, other = (_loader_views(job, seed, persistent, shuffle) for seed in (7, 7, 8))
    for epoch in range(2):
        assert all(torch.equal(x, y) for x, y in zip(run[epoch], again[epoch]))
    assert not any(torch.equal(x, y) for x, y in zip(run[0], other[0]))
    assert not any(torch.equal(x, y) for x, y in zip(run[0], run[1]))  # new views per epoch


def test_batch_reaches_the_loss_as_lists_of_views(tmp_path):
    from mmengine.dataset import default_collate
    job, _ = coordinate_slides(tmp_path)
    ds = SlideWindowViewsDataset(str(job), samples_per_slide=3)
    batch = default_collate(ds.__getitems__(np.arange(len(ds))))
    pre = MODELS.build(dict(type='WindowViewsPreprocessor'))
    out = pre(batch, training=True)
    assert [tuple(v.shape) for v in out['inputs']] == [(6, 3, 20, 20)] * 2 + [(6, 3, 12, 12)] * 4
    assert [tuple(m.shape) for m in out['masks']] == [(6, 20, 20)] * 2 + [(6, 12, 12)] * 4
    assert all(v.dtype == torch.float32 for v in out['inputs'])
    for view, mask, raw in zip(out['inputs'], out['masks'], batch['inputs']):
        assert torch.equal(view, raw.float()) and torch.equal(mask, view[:, 0] > 0)
    np.testing.assert_array_equal(out['data_samples']['slide_index'], ds.slide_index)
    evaluation = pre(batch, training=False)
    assert torch.equal(evaluation['inputs'], out['inputs'][0])
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SLPD', data_preprocessor=dict(type='WindowViewsPreprocessor'),
        backbone=dict(type='ALiBiViT', arch=dict(embed_dims=16, depth=1, num_heads=2),
                      in_channels=3),
        head=dict(type='DINOHead', hidden_dims=16, bottleneck_dims=8, out_channels=32),
        loss=dict(type='DINOLoss', output_dim=32)))
    losses = model(**model.data_preprocessor(batch, training=True), mode='loss')
    assert torch.isfinite(losses['loss_dino'])
    assert model(**evaluation, mode='tensor').shape == (6, 16)
    with pytest.raises(TypeError, match='WindowViewsPreprocessor'):
        pre(dict(inputs=batch['inputs'][0], masks=batch['masks'][0]), training=True)


@pytest.mark.parametrize('options', [dict(num_global=0), dict(num_global=1, num_local=0),
                                     dict(local_size=0), dict(hflip_prob=1.5)])
def test_views_that_cannot_be_made_are_refused(tmp_path, options):
    job, _ = coordinate_slides(tmp_path)
    with pytest.raises(StoreError, match='SlideWindowViewsDataset'):
        SlideWindowViewsDataset(str(job), **options)
