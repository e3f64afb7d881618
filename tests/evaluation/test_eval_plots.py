"""What the plots say, read back from their matplotlib objects: Kaplan-Meier censoring
ticks, log-rank p-value (against scikit-survival) and number at risk; few-shot k labels;
ROC titles; PCA axes with explained variance; prototype maps with holes and legends."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from slpd_plugin.datasets.stores import SlideRecord
from slpd_plugin.evaluation.protocols.survival import SurvivalFold, SurvivalResult
from slpd_plugin.evaluation.reporting.plots import kaplan_meier_figure, plot_fewshot_curves
from slpd_plugin.prototypes import build_bank
from slpd_plugin.visualization.projection import axis_titles
from slpd_plugin.visualization.prototype_map import plot_prototype_map
from tests.utils import load_tool


@pytest.fixture
def saved_figures(monkeypatch):
    """Every Figure saved while the test runs (the files are written as usual)."""
    figures = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Figure, 'savefig', savefig)
    return figures


def _survival_result(seed=0):
    rng = np.random.default_rng(seed)
    folds = []
    for k in range(3):
        n = 20
        risk = rng.standard_normal(n)
        time = np.round(rng.exponential(30 * np.exp(-risk)), 1) + 0.5
        event = rng.random(n) < 0.6
        folds.append(SurvivalFold(k, 40, n, 0.6, None, [f'c{k}{i}' for i in range(n)],
                                  time, event, risk))
    return SurvivalResult('cox', folds)


def test_kaplan_meier_ticks_logrank_and_at_risk():
    from sksurv.compare import compare_survival
    result = _survival_result()
    fig = kaplan_meier_figure(result, title='slpd (cox)')
    ax, table = fig.axes
    assert ax.get_title() == 'slpd (cox)'
    # the groups, formed here independently: each fold split at its median risk
    groups = {}
    for name, high in (('low risk', False), ('high risk', True)):
        picks = [(f.time[(f.risk > np.median(f.risk)) == high],
                  f.event[(f.risk > np.median(f.risk)) == high]) for f in result.folds]
        groups[name] = tuple(np.concatenate(p) for p in zip(*picks))
    time = np.concatenate([g[0] for g in groups.values()])
    event = np.concatenate([g[1] for g in groups.values()])
    y = np.array(list(zip(event, time)), dtype=[('e', bool), ('t', float)])
    p = compare_survival(y, np.repeat([0, 1], [len(g[0]) for g in groups.values()]))[1]
    assert ax.get_legend().get_title().get_text() == f'log-rank p = {p:.3g}'
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f'{name} (n={len(g[0])})' for name, g in groups.items()]
    ticks = [line for line in ax.get_lines() if line.get_marker() == '+']
    for line, (t, e) in zip(ticks, groups.values()):
        assert sorted(line.get_xdata()) == sorted(t[~e])  # a tick per censored patient
    cells = {(round(txt.get_position()[0], 6), txt.get_position()[1]): int(txt.get_text())
             for txt in table.texts}
    assert cells
    names = list(groups)
    for (x, row), count in cells.items():
        assert count == int((groups[names[row]][0] >= x).sum())
    assert table.get_title(loc='left') == 'number at risk'


def test_fewshot_axis_reads_k(tmp_path, saved_figures):
    curve = {k: (0.5 + 0.05 * i, 0.02) for i, k in enumerate((1, 2, 4, 8))}
    plot_fewshot_curves({'slpd': {'linear': curve}}, tmp_path / 'f.png')
    ax = saved_figures[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ['1', '2', '4', '8']


def test_roc_titles_say_the_share_of_training_slides(tmp_path, saved_figures):
    ids = [f's{i}' for i in range(30)]
    (tmp_path / 'emb').mkdir()
    rng = np.random.default_rng(0)
    for i, s in enumerate(ids):
        torch.save(torch.from_numpy(rng.standard_normal((2, 4)).astype(np.float32) + i % 2),
                   tmp_path / 'emb' / f'{s}.pt')
    with (tmp_path / 'labels.csv').open('w', newline='') as fh:
        csv.writer(fh).writerows([['slide_id', 'oncotree_code'],
                                  *[[s, 'AB'[i % 2]] for i, s in enumerate(ids)]])
    (tmp_path / 'splits').mkdir()
    rows = [[i, ids[i], ids[20 + i] if i < 4 else '', ids[24 + i] if i < 6 else '']
            for i in range(20)]
    with (tmp_path / 'splits' / 'splits_0.csv').open('w', newline='') as fh:
        csv.writer(fh).writerows([['', 'train', 'val', 'test'], *rows])
    assert load_tool('eval_slides').main([
        'knn', '--embeddings', str(tmp_path / 'emb'), '--csv', str(tmp_path / 'labels.csv'),
        '--splits', str(tmp_path / 'splits'), '--out', str(tmp_path / 'out'),
        '--bootstrap', '0', '--fraction', '0.5']) == 0
    titles = [fig.axes[0].get_title() for fig in saved_figures]
    assert titles[0].startswith('knn, 50 % of training slides, split 0: AUC ')
    assert titles[-1].startswith('knn, 50 % of training slides: AUC ')


def test_pca_axes_give_the_explained_variance():
    x = np.random.default_rng(0).standard_normal((50, 6)) * [5, 3, 1, 1, 1, 1]
    centred = x - x.mean(0)
    s = np.linalg.svd(centred, compute_uv=False)
    share = s ** 2 / (s ** 2).sum()
    assert axis_titles(x, 'pca') == (f'PC1 ({100 * share[0]:.1f} % of variance)',
                                     f'PC2 ({100 * share[1]:.1f} % of variance)')


def test_prototype_map_draws_holes_and_a_legend_in_words(tmp_path, saved_figures):
    torch.manual_seed(0)
    counts = [6, 5, 6]
    slide_index = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    emb = torch.randn(sum(counts), 8)
    bank = build_bank(emb, slide_index, num_clusters=2, min_regions=4, num_slides=3)
    records, offset = [], 0
    for i, n in enumerate(counts):
        records.append(SlideRecord(f'slide-{i}', offset, n, ''))
        offset += n
    masks = np.random.default_rng(1).random((sum(counts), 16, 16)) > 0.2
    coords = np.stack([np.arange(sum(counts)) % 3, np.arange(sum(counts)) // 3], 1) * 4096
    plot_prototype_map(bank, 0, records, coords, tmp_path / 'm.png',
                       read_masks=lambda idx: masks[idx])
    ax = saved_figures[-1].axes[0]
    alphas = np.stack([im.get_array()[..., 3] for im in ax.images])
    np.testing.assert_array_equal(alphas > 0, masks[:counts[0]])  # holes are blank
    sizes = bank.cluster_sizes[0].tolist()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f'prototype {k + 1}: {n} region' + ('' if n == 1 else 's')
                     for k, n in enumerate(sizes)]
    neighbour = saved_figures[-1].axes[1].get_legend().get_texts()[0].get_text()
    assert 'of slide-0' in neighbour and ('matched to prototype' in neighbour
                                          or 'matches no prototype' in neighbour)
