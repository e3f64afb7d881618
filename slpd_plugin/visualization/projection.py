"""2-D projections of region embeddings and of slide prototypes.

Left panel: the regions of a few slides (teacher embeddings, the prototype space) and
those slides' prototypes, projected together; each region is coloured by the prototype
the bank assigned it to, each slide has its own marker, prototypes are stars. Right
panel: the prototypes of every slide with prototypes, coloured by slide label (or by
slide when no labels are given).

Letters: ``n`` regions embedded, ``m`` slides shown on the left, ``S`` slides, ``K``
prototypes per slide, ``D`` embedding dim.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA

from slpd_plugin.prototypes import PrototypeBank

from .palette import NO_CATEGORY, categorical_colors
from .slides import SlideLabels

PROJECTION_METHODS = ('pca', 'umap')
MARKERS = ('o', 's', '^', 'D', 'v', 'P', 'X', '<', '>', 'p', 'h', '8')


def project_2d(x: np.ndarray, method: str = 'pca', seed: int = 0) -> np.ndarray:
    """Project points to 2-D.

    Args:
        x: Points, shape (n, D).
        method: ``'pca'`` (scikit-learn) or ``'umap'`` (needs ``umap-learn``).
            Defaults to 'pca'.
        seed: Random state of UMAP. Defaults to 0.

    Returns:
        np.ndarray: Shape (n, 2); a dimension that cannot be filled (fewer than 2
        points or features) is zero.

    Raises:
        ValueError: For an unknown method, or ``'umap'`` without ``umap-learn``.
    """
    if method not in PROJECTION_METHODS:
        raise ValueError(f'projection method must be one of {PROJECTION_METHODS}, '
                         f'got {method!r}')
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros((len(x), 2))
    if len(x) < 2:
        return out
    if method == 'umap':
        if importlib.util.find_spec('umap') is None:
            raise ValueError("projection method 'umap' needs the umap-learn package "
                             "(pip install umap-learn); or use 'pca'")
        import umap
        neighbors = max(2, min(15, len(x) - 1))
        return umap.UMAP(n_neighbors=neighbors, random_state=seed).fit_transform(x)
    dims = min(2, len(x), x.shape[1])
    out[:, :dims] = PCA(n_components=dims).fit_transform(x)
    return out


def axis_titles(x: np.ndarray, method: str) -> tuple[str, str]:
    """Axis titles of :func:`project_2d` of ``x``.

    ``'PC1 (41.2 % of variance)'`` and ``'PC2 (...)'`` for PCA, ``'UMAP 1'`` and
    ``'UMAP 2'`` for UMAP.
    """
    if method == 'umap':
        return 'UMAP 1', 'UMAP 2'
    x = np.asarray(x, dtype=np.float64)
    dims = min(2, len(x), x.shape[1]) if len(x) >= 2 else 0
    ratios = list(PCA(n_components=dims).fit(x).explained_variance_ratio_) if dims else []
    ratios += [0.0] * (2 - len(ratios))
    return tuple(f'PC{i + 1} ({100 * r:.1f} % of variance)' for i, r in enumerate(ratios))


def plot_projection(bank: PrototypeBank, slide_ids: list[str], slides: np.ndarray,
                    embeddings: np.ndarray, region_indices: np.ndarray,
                    region_slides: np.ndarray, out: str | os.PathLike,
                    labels: SlideLabels | None = None, method: str = 'pca',
                    dpi: int = 120) -> Path:
    """Draw the region and prototype projections and save them as a PNG.

    Args:
        bank: The prototype bank.
        slide_ids: Every slide's id, in store order (S,).
        slides: Positions of the slides whose regions are shown, shape (m,).
        embeddings: Their regions' embeddings in the prototype space, shape (n, D).
        region_indices: Global index of each embedded region, shape (n,).
        region_slides: Slide position of each embedded region, shape (n,).
        out: The PNG file to write.
        labels: Slide labels for the right panel, or None. Defaults to None.
        method: See :func:`project_2d`. Defaults to 'pca'.
        dpi: Resolution. Defaults to 120.

    Returns:
        Path: ``out``.

    Raises:
        ValueError: If the embeddings are not in the bank's prototype space.
    """
    num_k, dim = bank.centroids.shape[1:]
    if embeddings.shape[1] != dim:
        raise ValueError(f'region embeddings have dim {embeddings.shape[1]}, the bank\'s '
                         f'prototypes {dim}: embed with the output the bank was built on')
    fig = Figure(figsize=(13, 6), dpi=dpi, layout='constrained')
    left, right = fig.subplots(1, 2)
    _draw_regions(left, bank, slide_ids, slides, embeddings,
                  bank.assignments.numpy()[region_indices], region_slides, method)
    _draw_prototypes(right, bank, labels, method)
    fig.suptitle(f'{method.upper()} of teacher embeddings and slide prototypes', fontsize=11)
    fig.savefig(out)
    return Path(out)


def _draw_regions(ax, bank: PrototypeBank, slide_ids: list[str], slides: np.ndarray,
                  embeddings: np.ndarray, assignments: np.ndarray, region_slides: np.ndarray,
                  method: str) -> None:
    num_k = bank.centroids.shape[1]
    protos = bank.centroids[slides].reshape(-1, bank.centroids.shape[2]).numpy()
    both = np.concatenate([embeddings, protos])
    points = project_2d(both, method)
    xlabel, ylabel = axis_titles(both, method)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    regions_2d, protos_2d = points[:len(embeddings)], points[len(embeddings):]
    palette = categorical_colors(len(slides) * num_k)
    handles = []
    for i, s in enumerate(slides):
        marker = MARKERS[i % len(MARKERS)]
        rows = region_slides == s
        colors = [palette[i * num_k + a] if a >= 0 else NO_CATEGORY
                  for a in assignments[rows]]
        ax.scatter(*regions_2d[rows].T, c=colors, marker=marker, s=30, alpha=0.9,
                   edgecolors='black', linewidths=0.3, zorder=3)
        own = slice(i * num_k, (i + 1) * num_k)
        ax.scatter(*protos_2d[own].T, c=palette[own], marker='*', s=420, alpha=0.55,
                   edgecolors='black', linewidths=0.8, zorder=2)
        handles.append(Line2D([], [], color='grey', marker=marker, linestyle='',
                              label=f'{slide_ids[s]} ({int(rows.sum())} regions)'))
        handles += [Line2D([], [], color=palette[i * num_k + k], marker='*', markersize=11,
                           markeredgecolor='black', linestyle='',
                           label=f'  prototype {k + 1} of {slide_ids[s]}')
                    for k in range(num_k)]
    ax.legend(handles=handles, fontsize=6, loc='best', ncols=1 + len(handles) // 16)
    ax.set_title(f'regions of {len(slides)} slide(s), coloured by prototype\n'
                 f'(marker = slide, star = the prototype of that colour)', fontsize=9)


def _draw_prototypes(ax, bank: PrototypeBank, labels: SlideLabels | None,
                     method: str) -> None:
    num_k = bank.centroids.shape[1]
    valid = np.flatnonzero(bank.valid.numpy())
    protos = bank.centroids[valid].reshape(-1, bank.centroids.shape[2]).numpy()
    points = project_2d(protos, method)
    xlabel, ylabel = axis_titles(protos, method)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    owner = np.repeat(valid, num_k)
    if labels is None:
        colors = categorical_colors(len(valid))[np.repeat(np.arange(len(valid)), num_k)]
        ax.scatter(*points.T, c=colors, s=22, alpha=0.85, linewidths=0)
        ax.set_title(f'prototypes of all {len(valid)} slides with prototypes ({num_k} each)'
                     f'\ncoloured by slide (give --labels to colour by label)', fontsize=9)
        return
    slide_label = labels.labels[owner]
    palette = categorical_colors(len(labels.class_names))
    for c, name in enumerate(labels.class_names):
        rows = slide_label == c
        ax.scatter(*points[rows].T, color=palette[c], s=22, alpha=0.85, linewidths=0,
                   label=f'{name} ({rows.sum() // num_k} slides)')
    if (slide_label < 0).any():
        rows = slide_label < 0
        ax.scatter(*points[rows].T, color=NO_CATEGORY, s=14, linewidths=0,
                   label=f'no label ({rows.sum() // num_k} slides)')
    ax.legend(fontsize=8, loc='best', title=labels.column, title_fontsize=8)
    ax.set_title(f'prototypes of all {len(valid)} slides with prototypes ({num_k} each)\n'
                 f'coloured by {labels.column}', fontsize=9)
