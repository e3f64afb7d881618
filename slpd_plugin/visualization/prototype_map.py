"""Prototype map: a slide's regions coloured by prototype, beside its neighbour slides.

Regions are drawn at their coordinates (level-0 top-left corners) when the store has
them, else on a near-square grid in storage order. In each neighbour panel, prototype
``l`` of the neighbour takes the colour of the slide's prototype ``k`` whose matched
prototype it is (``matched[s, k, j] = l``), so matched prototypes share colours;
neighbour prototypes that no prototype of the slide matched get colours of their own.

Letters: ``n`` regions of one slide, ``K`` prototypes per slide, ``r`` neighbours.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from slpd_plugin.datasets.stores import SlideRecord
from slpd_plugin.prototypes import PrototypeBank

from .palette import NO_CATEGORY, categorical_colors


def grid_positions(count: int) -> np.ndarray:
    """Cells of a near-square grid, row-major: shape (count, 2) as (column, row)."""
    cols = max(1, int(np.ceil(np.sqrt(count))))
    index = np.arange(count)
    return np.stack([index % cols, index // cols], axis=1).astype(float)


def region_positions(count: int, coords: np.ndarray | None = None
                     ) -> tuple[np.ndarray, float, bool]:
    """Where to draw a slide's regions.

    Args:
        count: The slide's number of regions ``n``.
        coords: The slide's region top-left corners (x, y) in level-0 pixels, shape
            (n, 2), -1 where unknown; or None. Defaults to None.

    Returns:
        tuple: Positions (n, 2) as (x, y), the side of one region's square, and whether
        the positions are real coordinates (False: a grid in storage order).
    """
    if coords is None or len(coords) != count or (coords < 0).any():
        return grid_positions(count), 1.0, False
    coords = np.asarray(coords, dtype=float)
    steps = [np.diff(np.unique(axis)) for axis in coords.T]
    steps = np.concatenate([s[s > 0] for s in steps])
    return coords, float(steps.min()) if len(steps) else 4096.0, True


def neighbor_colors(matched: np.ndarray, num_prototypes: int) -> np.ndarray:
    """Colour index of each prototype of a neighbour slide.

    Args:
        matched: For each prototype ``k`` of the slide, its matched prototype in the
            neighbour, shape (K,), -1 where undefined.
        num_prototypes: Prototypes of the neighbour ``K``.

    Returns:
        np.ndarray: Shape (K,), int. Prototype ``l`` gets ``k``, the first prototype of
        the slide matched to it; unmatched prototypes get ``K, K+1, ...`` in order.
    """
    colors = np.full(num_prototypes, -1, dtype=np.int64)
    for k, j in enumerate(np.asarray(matched)):
        if 0 <= j < num_prototypes and colors[j] < 0:
            colors[j] = k
    unmatched = np.flatnonzero(colors < 0)
    colors[unmatched] = len(matched) + np.arange(len(unmatched))
    return colors


def _draw_slide(ax, positions: np.ndarray, cell: float, from_coords: bool,
                assignments: np.ndarray, palette_index: np.ndarray, palette: np.ndarray,
                title: str, masks: np.ndarray | None = None) -> None:
    faces = [palette[palette_index[a]] if a >= 0 else NO_CATEGORY for a in assignments]
    squares = [Rectangle((x, y), cell, cell) for x, y in positions]
    if masks is None:
        ax.add_collection(PatchCollection(squares, facecolors=faces, edgecolors='white',
                                          linewidths=0.5))
    else:  # each region's patches in its colour, its holes left blank, a thin outline
        for (x, y), face, mask in zip(positions, faces, masks):
            image = np.zeros((*mask.shape, 4))
            image[mask] = to_rgba(face)
            ax.imshow(image, extent=(x, x + cell, y + cell, y), interpolation='nearest')
        ax.add_collection(PatchCollection(squares, facecolors='none', edgecolors='0.75',
                                          linewidths=0.5))
    lo, hi = positions.min(0) - 0.1 * cell, positions.max(0) + 1.1 * cell
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(hi[1], lo[1])  # image convention: y grows downwards
    ax.set_aspect('equal')
    ax.set_xticks([])
    ax.set_yticks([])
    where = 'at region coordinates' if from_coords else 'grid in storage order (no coords)'
    holes = '; blank cells: no tissue' if masks is not None else ''
    ax.set_title(f'{title}\n{len(assignments)} regions, {where}{holes}', fontsize=9)


def plot_prototype_map(bank: PrototypeBank, slide: int, records: list[SlideRecord],
                       coords: np.ndarray | None, out: str | os.PathLike,
                       min_regions: int | None = None, dpi: int = 120,
                       read_masks: Callable[[np.ndarray], np.ndarray] | None = None) -> Path:
    """Draw a slide's prototype map beside its neighbours' and save it as a PNG.

    Args:
        bank: The prototype bank.
        slide: Position of the slide in the store.
        records: The store's slide records (ids, offsets, counts).
        coords: The store's region coordinates (N, 2) (-1 where unknown), or None.
        out: The PNG file to write.
        min_regions: The hook's ``min_regions``, named in the error for a slide without
            prototypes. Defaults to None.
        dpi: Resolution. Defaults to 120.
        read_masks: The store's ``read_masks`` (region indices -> tissue masks
            ``(n, G, G)``) for a store with holes: each region is drawn patch by patch,
            its holes blank. None draws whole squares. Defaults to None.

    Returns:
        Path: ``out``.

    Raises:
        ValueError: If the slide has no prototypes.
    """
    rec = records[slide]
    if not bool(bank.valid[slide]):
        need = f'min_regions={min_regions}' if min_regions else 'min_regions'
        raise ValueError(f'slide {rec.slide_id!r} has no prototypes ({rec.count} regions, '
                         f'fewer than {need}); pick a slide with prototypes '
                         f'(tools/inspect_bank.py lists them)')
    num_k = bank.centroids.shape[1]
    neighbors = [(j, int(n)) for j, n in enumerate(bank.neighbors[slide]) if n >= 0]
    panels = [(slide, np.arange(num_k), None, f'slide {rec.slide_id}')]
    for j, nb in neighbors:
        matched = bank.matched[slide, :, j].numpy()
        similarity = float(bank.neighbor_similarity[slide, j])
        panels.append((nb, neighbor_colors(matched, num_k), matched,
                       f'neighbour {j + 1}: {records[nb].slide_id}\n'
                       f'set similarity {similarity:.3f} (max {num_k})'))
    palette = categorical_colors(max(int(p[1].max()) + 1 for p in panels))
    fig = Figure(figsize=(4.2 * len(panels), 5.0), dpi=dpi, layout='constrained')
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (s, palette_index, matched, title) in zip(axes, panels):
        r = records[s]
        span = slice(r.offset, r.offset + r.count)
        positions, cell, from_coords = region_positions(
            r.count, None if coords is None else coords[span])
        assignments = bank.assignments[span].numpy()
        masks = (None if read_masks is None
                 else read_masks(np.arange(r.offset, r.offset + r.count)).astype(bool))
        _draw_slide(ax, positions, cell, from_coords, assignments, palette_index, palette,
                    title, masks)
        sizes = bank.cluster_sizes[s].tolist()
        handles = [Patch(color=palette[palette_index[k]],
                         label=_legend_label(k, sizes[k], matched, rec.slide_id))
                   for k in range(num_k)]
        ax.legend(handles=handles, loc='upper center', bbox_to_anchor=(0.5, -0.02),
                  ncol=1, fontsize=8, frameon=False,
                  title='colour = prototype', title_fontsize=8)
    fig.suptitle(f'prototypes of slide {rec.slide_id} and its neighbour slide(s): matched '
                 f'prototypes share a colour', fontsize=10)
    fig.savefig(out)
    return Path(out)


def _legend_label(k: int, size: int, matched: np.ndarray | None, slide_id: str) -> str:
    """Legend entry of prototype ``k`` (numbered from 1).

    ``matched`` is None for the slide itself, else which prototypes of ``slide_id`` it
    is the match of.
    """
    regions = f'{size} region' + ('' if size == 1 else 's')
    if matched is None:
        return f'prototype {k + 1}: {regions}'
    by = [f'{j + 1}' for j in np.flatnonzero(matched == k)]
    if not by:
        return f'prototype {k + 1}: {regions}, matches no prototype of {slide_id}'
    return (f'prototype {k + 1}: {regions}, matched to prototype {" and ".join(by)} '
            f'of {slide_id}')
