"""Figures of the demo report: loss curves, AUC bars, and a prototype map of one slide.

Drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state, no display needed).

Letters: S slides, N regions, F folds, R seeds.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from slpd_plugin.checkpoints import load_bank, load_checkpoint
from slpd_plugin.prototypes.bank import CKPT_KEY
from slpd_plugin.visualization import open_bank_store
from slpd_plugin.visualization import plot_prototype_map as draw_prototypes

from .synthetic_wsi import REGION_PX, STORE_DIR, TRUTH_FILE

__all__ = ['plot_auc_bars', 'plot_loss_curves', 'plot_prototypes_beside_truth', 'read_scalars']

LOSS_KEYS = ('loss_dino', 'loss_intra', 'loss_inter')


def read_scalars(work_dir: str | os.PathLike) -> list[dict]:
    """Lines of the newest ``*/vis_data/scalars.json`` of a training work dir.

    Raises:
        FileNotFoundError: if the run logged no scalars.
    """
    files = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}')
    return [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]


def plot_loss_curves(runs: Mapping[str, str | os.PathLike], out: str | os.PathLike) -> Path:
    """Training losses per iteration, one colour per run.

    Args:
        runs: Label -> training work dir.
        out: PNG path.

    Returns:
        The PNG path.
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    styles = dict(loss_dino='-', loss_intra='--', loss_inter=':')
    for color, (label, work_dir) in zip(colormaps['tab10'].colors, runs.items()):
        rows = [r for r in read_scalars(work_dir) if 'loss_dino' in r]
        for key in LOSS_KEYS:
            points = [(r['step'], r[key]) for r in rows if key in r]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, styles[key], color=color, label=f'{label} {key}')
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title('training losses (logged every few iterations)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return Path(out)


def plot_auc_bars(results: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
                  out: str | os.PathLike) -> Path:
    """Mean test AUC per method and protocol, with the spread over folds.

    Args:
        results: Protocol -> method label -> per seed, the test AUCs of the F folds.
        out: PNG path.

    Returns:
        The PNG path. A bar is the mean over seeds of the fold-mean AUC; its error bar
        the mean over seeds of the fold std; dots are the seeds' fold means.
    """
    protocols = list(results)
    fig = Figure(figsize=(4.5 * len(protocols), 4))
    axes = fig.subplots(1, len(protocols), squeeze=False)
    for ax, protocol in zip(axes[0], protocols):
        labels = list(results[protocol])
        for x, label in enumerate(labels):
            per_seed = [np.asarray(f, float) for f in results[protocol][label]]
            means = [np.nanmean(f) for f in per_seed]
            spread = np.mean([np.nanstd(f, ddof=1) if len(f) > 1 else 0.0 for f in per_seed])
            ax.bar(x, np.mean(means), yerr=spread, capsize=4, color='#9ecae1',
                   edgecolor='#3182bd')
            ax.plot([x] * len(means), means, 'o', color='#08519c', ms=4)
        ax.axhline(0.5, color='grey', lw=0.8, ls='--')
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha='right', fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel('test AUC')
        ax.set_title(f'{protocol}: bar = mean, whisker = fold std, dots = seeds', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return Path(out)


def plot_prototypes_beside_truth(checkpoint: str | os.PathLike, benchmark: str | os.PathLike,
                                 out_dir: str | os.PathLike) -> dict | None:
    """One slide's prototypes (and its neighbour's) beside its true tissue phenotypes.

    The slide is the one with the most regions among those with prototypes in the
    checkpoint's bank. Writes ``prototype_map.png`` (drawn by
    :func:`slpd_plugin.visualization.plot_prototype_map`: the slide and its neighbour,
    matched prototypes sharing a colour) and ``phenotype_map.png`` (the same slide's
    ground-truth phenotypes at the same positions).

    Args:
        checkpoint: An SLPD checkpoint trained on the benchmark's store.
        benchmark: The benchmark folder (its store and ``ground_truth.npz``).
        out_dir: Folder of the two PNGs.

    Returns:
        ``slide_id``, ``num_regions``, ``num_prototypes`` (used by its regions) and
        ``purity`` (share of regions whose prototype's majority phenotype is their own),
        or None when the checkpoint has no bank or no slide with prototypes.
    """
    ckpt = load_checkpoint(checkpoint)
    if not ckpt.get(CKPT_KEY):
        return None
    bank = load_bank(ckpt, checkpoint).bank
    if not bool(bank.valid.any()):
        return None
    store = open_bank_store(Path(benchmark) / STORE_DIR, bank)
    counts = np.array([r.count for r in store.slides])
    s = int(np.argmax(np.where(bank.valid.numpy(), counts, -1)))
    rec, coords = store.slides[s], store.coords()
    draw_prototypes(bank, s, store.slides, coords, Path(out_dir) / 'prototype_map.png')
    span = slice(rec.offset, rec.offset + rec.count)
    truth = np.load(Path(benchmark) / TRUTH_FILE)['region_phenotype'][span]
    assigned = bank.assignments[span].numpy()
    cells = (coords[span][:, ::-1] // REGION_PX).astype(np.int64)  # (row, col)
    cells -= cells.min(axis=0)
    image = np.full(tuple(cells.max(axis=0) + 1), np.nan)
    image[cells[:, 0], cells[:, 1]] = truth
    cmap = colormaps['tab10']
    fig = Figure(figsize=(4.2, 4.6))
    ax = fig.subplots()
    ax.imshow(image, cmap=cmap, vmin=-0.5, vmax=9.5, interpolation='nearest')
    ax.set_title(f'true phenotypes of {rec.slide_id}', fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    handles = [Patch(color=cmap(int(p)), label=f'phenotype {p} ({int((truth == p).sum())})')
               for p in np.unique(truth)]
    ax.legend(handles=handles, loc='upper center', bbox_to_anchor=(0.5, -0.02), ncol=2,
              fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(Path(out_dir) / 'phenotype_map.png', dpi=110)
    purity = sum(np.bincount(truth[assigned == k]).max() for k in np.unique(assigned))
    return dict(slide_id=rec.slide_id, num_regions=rec.count,
                num_prototypes=int(len(np.unique(assigned))),
                purity=round(float(purity) / rec.count, 3))
