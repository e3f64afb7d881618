"""The slide-neighbour graph that the inter-slide loss distils to.

Each slide points at the slide(s) whose prototypes match its own best (the bank's
``neighbors``).

Nodes are placed by a 2-D PCA of each slide's mean embedding (the cluster-size weighted
mean of its prototypes), sized by region count and coloured by label (or by slide).
With labels, an edge is green when it joins two slides of the same label and red
otherwise: a quick look at whether inter-slide targets cross classes.

Letters: ``S`` slides, ``K`` prototypes per slide, ``D`` embedding dim, ``r`` neighbours.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from slpd_plugin.prototypes import PrototypeBank

from .palette import NO_CATEGORY, categorical_colors
from .projection import project_2d
from .slides import SlideLabels

SAME, DIFFERENT, UNKNOWN = '#2ca02c', '#d62728', '#7f7f7f'


def neighbor_edges(bank: PrototypeBank, slides: np.ndarray) -> list[tuple[int, int, float]]:
    """Directed edges ``(slide, neighbour, similarity)`` from each of ``slides``.

    Args:
        bank: The prototype bank.
        slides: Slide positions, shape (m,).

    Returns:
        list[tuple[int, int, float]]: One edge per defined neighbour, best first.
    """
    edges = []
    for s in np.asarray(slides).tolist():
        for j, nb in enumerate(bank.neighbors[s].tolist()):
            if nb >= 0:
                edges.append((s, nb, float(bank.neighbor_similarity[s, j])))
    return edges


def slide_means(bank: PrototypeBank, slides: np.ndarray) -> np.ndarray:
    """Cluster-size weighted mean of each slide's prototypes, L2-normalised, (m, D)."""
    weights = bank.cluster_sizes[slides].float()  # (m, K)
    mean = (bank.centroids[slides] * weights[..., None]).sum(1)  # (m, D)
    return F.normalize(mean, dim=-1).numpy()


def same_label_fraction(edges: list[tuple[int, int, float]],
                        labels: SlideLabels) -> float:
    """Fraction of edges between two labelled slides whose labels agree (NaN if none)."""
    pairs = [(labels.labels[a], labels.labels[b]) for a, b, _ in edges]
    known = [(a, b) for a, b in pairs if a >= 0 and b >= 0]
    return float(np.mean([a == b for a, b in known])) if known else float('nan')


def plot_neighbor_graph(bank: PrototypeBank, slide_ids: list[str] | None,
                        slides: np.ndarray, out: str | os.PathLike,
                        labels: SlideLabels | None = None, dpi: int = 120) -> Path:
    """Draw the neighbour graph of ``slides`` (and their neighbours) and save a PNG.

    Args:
        bank: The prototype bank.
        slide_ids: Every slide's id in store order, or None (slides are then named by
            index).
        slides: Positions of the slides whose edges are drawn (slides with prototypes),
            shape (m,).
        out: The PNG file to write.
        labels: Slide labels, or None to colour by slide. Defaults to None.
        dpi: Resolution. Defaults to 120.

    Returns:
        Path: ``out``.
    """
    edges = neighbor_edges(bank, slides)
    nodes = np.unique(np.concatenate([np.asarray(slides, dtype=np.int64),
                                      np.array([b for _, b, _ in edges], dtype=np.int64)]))
    where = {int(s): i for i, s in enumerate(nodes)}
    xy = project_2d(slide_means(bank, nodes), 'pca')
    fig = Figure(figsize=(9, 8), dpi=dpi, layout='constrained')
    ax = fig.subplots()
    for a, b, _ in edges:
        color = UNKNOWN
        if labels is not None and min(labels.labels[a], labels.labels[b]) >= 0:
            color = SAME if labels.labels[a] == labels.labels[b] else DIFFERENT
        ax.annotate('', xy=xy[where[b]], xytext=xy[where[a]], zorder=1,
                    arrowprops=dict(arrowstyle='-|>', color=color, lw=1.0, alpha=0.8,
                                    shrinkA=5, shrinkB=5))
    sizes = 30 + 12 * np.sqrt(bank.cluster_sizes[nodes].sum(1).numpy())
    colors, handles = _node_colors(nodes, labels)
    ax.scatter(*xy.T, s=sizes, c=colors, edgecolors='black', linewidths=0.5, zorder=2)
    names = slide_ids if slide_ids is not None else [str(i) for i in range(len(bank.valid))]
    if len(nodes) <= 40:
        for i, name in enumerate(short_names([names[s] for s in nodes])):
            ax.annotate(name, xy[i], fontsize=6, xytext=(5, 5), textcoords='offset points')
    if labels is not None:
        handles += [Line2D([], [], color=SAME, label='edge: same label'),
                    Line2D([], [], color=DIFFERENT, label='edge: different label')]
        agree = same_label_fraction(edges, labels)
        summary = f'\n{agree:.0%} of edges join slides of the same {labels.column}'
    else:
        summary = ''
    if handles:
        ax.legend(handles=handles, fontsize=8, loc='best')
    ax.margins(0.1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f'slide-neighbour graph: {len(slides)} slides, {len(edges)} edges (slide -> '
                 f'its nearest slide by prototype matching){summary}\nnode position: PCA '
                 f'of the slide\'s mean prototype; node size: regions', fontsize=9)
    fig.savefig(out)
    return Path(out)


def _node_colors(nodes: np.ndarray, labels: SlideLabels | None) -> tuple[list, list]:
    """Node colours and legend handles (by label, or one colour per slide)."""
    if labels is None:
        return list(categorical_colors(len(nodes))), []
    palette = categorical_colors(len(labels.class_names))
    node_labels = labels.labels[nodes]
    colors = [palette[c] if c >= 0 else NO_CATEGORY for c in node_labels]
    handles = [Line2D([], [], color=palette[c], marker='o', linestyle='',
                      label=f'{name} ({int((node_labels == c).sum())})')
               for c, name in enumerate(labels.class_names)]
    if (node_labels < 0).any():
        handles.append(Line2D([], [], color=NO_CATEGORY, marker='o', linestyle='',
                              label=f'no label ({int((node_labels < 0).sum())})'))
    return colors, handles


def short_names(names: list[str], width: int = 20) -> list[str]:
    """Node labels: the ids without the suffix they all share, cut to ``width``.

    TCGA slide ids differ at the start (``TCGA-A7-A0CE``) and often share the end
    (``-01Z-00-DX1``); the shared end is dropped from its first separator on.
    """
    if len(names) < 2:
        return [name[:width] for name in names]
    common = 0
    shortest = min(map(len, names))
    while common < shortest - 1 and len({name[-common - 1] for name in names}) == 1:
        common += 1
    suffix = names[0][len(names[0]) - common:]
    cut = next((i for i, ch in enumerate(suffix) if not ch.isalnum()), len(suffix))
    keep = common - cut
    return [(name[:len(name) - keep] if keep else name)[:width] for name in names]
