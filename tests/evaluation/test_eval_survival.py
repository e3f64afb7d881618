"""Survival: c-index against a brute-force pair count, HIPT-format files, Cox and MIL runs."""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from slpd_plugin.demo.references import write_reference_embeddings
from slpd_plugin.demo.synthetic_wsi import make_wsi_benchmark
from slpd_plugin.evaluation import MILConfig, load_bags, load_slide_embeddings
from slpd_plugin.evaluation.data.survival_data import (
    SurvivalTable,
    load_survival_labels,
    load_survival_splits,
    patient_embeddings,
)
from slpd_plugin.evaluation.protocols.survival import (
    balanced_case_weights,
    evaluate_survival_mil,
    hipt_bin_edges,
)
from slpd_plugin.evaluation.stats.survival_metrics import (
    c_index,
    discretize,
    nll_survival_loss,
    time_bins,
)
from tests.utils import load_tool


def brute_force_cindex(time, event, risk) -> float:
    """Harrell: pairs (i, j) where i dies first (or dies at a time j is censored at, j
    still being at risk); i with the higher risk is concordant, risk ties count 1/2."""
    concordant = comparable = 0.0
    for i, j in itertools.permutations(range(len(time)), 2):
        if event[i] and (time[i] < time[j] or (time[i] == time[j] and not event[j])):
            comparable += 1
            concordant += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return concordant / comparable


def test_cindex_matches_brute_force_pair_count():
    rng = np.random.default_rng(0)
    for _ in range(5):
        n = 40
        time = rng.integers(1, 15, n).astype(float)  # tied times
        event = rng.random(n) < 0.6
        risk = rng.integers(0, 6, n).astype(float)  # tied risks
        assert c_index(time, event, risk) == pytest.approx(brute_force_cindex(time, event, risk))
    assert math.isnan(c_index(np.ones(3), np.zeros(3, bool), np.arange(3.0)))


def test_bins_and_nll_loss_by_hand():
    time = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 100])
    event = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0], bool)
    edges = time_bins(time, event)
    assert edges == pytest.approx(np.quantile(time[:8], [0.25, 0.5, 0.75]))
    assert np.bincount(discretize(time[:8], edges), minlength=4).tolist() == [2, 2, 2, 2]
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.1], [0.5, 0.5, -0.5, 0.0]])
    h = torch.sigmoid(logits)
    # event in bin 2: survive bins 0, 1 then die in 2; censored in bin 1: survive bins 0, 1
    expected = (-(torch.log(1 - h[0, 0]) + torch.log(1 - h[0, 1]) + torch.log(h[0, 2]))
                - (torch.log(1 - h[1, 0]) + torch.log(1 - h[1, 1]))) / 2
    loss = nll_survival_loss(logits, torch.tensor([2, 1]), torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def _mcat_bins(rows: list[tuple[str, float, int]]) -> dict[str, int]:
    """HIPT's survival bins as MCAT's dataset builds them, written with pandas here: one
    row per slide; patients = first row per case; quartiles (``pd.qcut``) of the
    uncensored patients' times, outer edges moved past the CSV's extremes, then
    ``pd.cut(..., right=False)``."""
    import pandas as pd
    df = pd.DataFrame(rows, columns=['case_id', 'survival_months', 'censorship'])
    patients = df.drop_duplicates(['case_id']).copy()
    uncensored = patients[patients['censorship'] < 1]
    _, edges = pd.qcut(uncensored['survival_months'], q=4, retbins=True, labels=False)
    edges[-1] = df['survival_months'].max() + 1e-6
    edges[0] = df['survival_months'].min() - 1e-6
    labels = pd.cut(patients['survival_months'], bins=edges, retbins=False, labels=False,
                    right=False, include_lowest=True)
    return dict(zip(patients['case_id'], labels.astype(int)))


def test_hipt_protocol_bins_are_mcats_over_the_whole_csv():
    rng = np.random.default_rng(4)
    rows = []
    for i in range(60):  # integer months: many times fall on a quartile edge
        case, months, censored = f'C{i:02d}', float(rng.integers(1, 25)), int(rng.random() < .4)
        rows += [(case, months, censored)] * int(rng.integers(1, 3))  # 1-2 slides per case
    table = SurvivalTable(time={c: t for c, t, _ in rows}, event={c: 1 - e for c, _, e in rows})
    expected = _mcat_bins(rows)
    time, event = table.arrays(table.cases)
    ours = discretize(time, hipt_bin_edges(table), right=False)
    assert dict(zip(table.cases, ours.tolist())) == expected
    # the default (right-closed) bins put the times on an edge one bin lower
    on_edge = discretize(time, hipt_bin_edges(table)) != ours
    assert on_edge.any() and set(time[on_edge]) <= set(hipt_bin_edges(table))


def test_hipt_weighted_sampling_weights_are_inverse_class_sizes():
    bins = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    event = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 1], bool)
    classes = [(b, e) for b, e in zip(bins, event)]
    expected = [len(classes) / classes.count(c) for c in classes]
    assert balanced_case_weights(bins, event).tolist() == pytest.approx(expected)


@pytest.mark.parametrize('alpha', [0.0, 0.4, 1.0])
def test_nll_alpha_is_mcats(alpha):
    """MCAT: ``(1 - alpha) * (censored + uncensored terms) + alpha * uncensored term``,
    per patient, then the mean; written with math.log on each patient here."""
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.1], [0.5, 0.5, -0.5, 0.0], [1.0, 0.2, 0.0, -2]])
    label, event = [2, 1, 0], [1, 0, 1]
    total = 0.0
    for row, y, e in zip(logits.tolist(), label, event):
        h = [1 / (1 + math.exp(-v)) for v in row]
        s = [1.0]
        for v in h:
            s.append(s[-1] * (1 - v))  # s[j] = S_{j-1}, s[0] = 1
        uncensored = -e * (math.log(s[y]) + math.log(h[y]))
        censored = -(1 - e) * math.log(s[y + 1])
        total += (1 - alpha) * (uncensored + censored) + alpha * uncensored
    loss = nll_survival_loss(logits, torch.tensor(label), torch.tensor(event, dtype=torch.float),
                             alpha)
    assert loss.item() == pytest.approx(total / 3, rel=1e-5)


def _write_survival_csv(path: Path, rows) -> None:
    with path.open('w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(['', 'case_id', 'slide_id', 'age', 'survival_months', 'censorship'])
        for i, row in enumerate(rows):
            writer.writerow([i, *row])


def test_cases_group_slides_and_patient_embedding_is_the_bag_mean(tmp_path):
    rows = [('C1', 'C1-DX1.svs', 50, 10.5, 0.0), ('C1', 'C1-DX2.svs', 50, 10.5, 0.0),
            ('C2', 'C2-DX1.svs', 60, 30.0, 1.0), ('C3', 'C3-DX1.svs', 70, '', '')]
    _write_survival_csv(tmp_path / 's.csv', rows)
    table = load_survival_labels(tmp_path / 's.csv')
    assert table.slides == {'C1': ['C1-DX1', 'C1-DX2'], 'C2': ['C2-DX1']}
    assert table.event == {'C1': 1, 'C2': 0} and table.time['C1'] == 10.5
    emb_dir = tmp_path / 'emb'
    emb_dir.mkdir()
    rng = np.random.default_rng(0)
    bags = {s: torch.as_tensor(rng.normal(size=(n, 4)), dtype=torch.float32)
            for s, n in (('C1-DX1', 3), ('C1-DX2', 7), ('C2-DX1', 2))}
    for s, x in bags.items():
        torch.save(x, emb_dir / f'{s}.pt')
    emb = load_slide_embeddings(emb_dir)
    got = patient_embeddings(table, emb, ['C1', 'C2'])
    want = torch.cat([bags['C1-DX1'], bags['C1-DX2']]).mean(0).double().numpy()
    assert got[0] == pytest.approx(want, abs=1e-6)

    _write_survival_csv(tmp_path / 'bad.csv', rows[:1] + [('C1', 'C1-DX2.svs', 50, 11.0, 0.0)])
    with pytest.raises(ValueError, match=r'bad\.csv.*C1.*two outcomes'):
        load_survival_labels(tmp_path / 'bad.csv')


def test_hipt_survival_splits_hold_case_ids(hipt_dir):
    table = load_survival_labels(hipt_dir / 'tcga_brca_subset.csv')
    splits = load_survival_splits(hipt_dir / 'splits/survival_5foldcv/tcga_brca')
    assert [s.fold for s in splits] == list(range(5))
    multi = [c for c, slides in table.slides.items() if len(slides) > 1]
    assert multi  # BRCA has patients with several slides
    for split in splits:
        assert not split.test and not set(split.train) & set(split.val)
        assert len(set(split.val) & set(table.time)) > 0.9 * len(split.val)


@pytest.fixture(scope='module')
def bench(tmp_path_factory) -> Path:
    root = make_wsi_benchmark(tmp_path_factory.mktemp('surv') / 'bench', num_slides=120,
                              channels=8, region_scale=0.1, num_folds=3, val_frac=0.2,
                              test_frac=0.2, progress=False)
    for kind in ('composition', 'noise'):
        write_reference_embeddings(root, kind, root / kind)
    return root


def test_synthetic_benchmark_writes_hipt_survival_files(bench):
    table = load_survival_labels(bench / 'survival.csv')
    splits = load_survival_splits(bench / 'splits_survival')
    assert len(table.time) == 120 and 0 < sum(table.event.values()) < 120
    vals = [c for s in splits for c in s.val]
    assert len(splits) == 5 and sorted(vals) == sorted(table.time)  # a partition


def _read_predictions(path: Path):
    with path.open(newline='') as fh:
        rows = list(csv.DictReader(fh))
    by_fold = {}
    for r in rows:
        by_fold.setdefault(int(r['fold']), []).append(
            (float(r['survival_months']), int(r['event']), float(r['risk'])))
    return by_fold


def test_cli_cox_summary_matches_brute_force_on_predictions(bench, tmp_path, capsys):
    out = tmp_path / 'out'
    code = load_tool('eval_slides').main([
        'survival', '--embeddings', f'oracle={bench / "composition"}',
        '--embeddings', f'noise={bench / "noise"}', '--csv', str(bench / 'survival.csv'),
        '--splits', str(bench / 'splits_survival'), '--out', str(out), '--bootstrap', '100'])
    assert code == 0
    with (out / 'oracle' / 'summary.csv').open(newline='') as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ['folds', 'val_cindex'] and len(rows) == 6  # no index column
    preds = _read_predictions(out / 'oracle' / 'predictions.csv')
    for row in rows[1:]:
        t, e, r = map(np.array, zip(*preds[int(row[0])]))
        assert float(row[1]) == pytest.approx(brute_force_cindex(t, e.astype(bool), r))
    oracle = json.loads((out / 'oracle' / 'results.json').read_text())
    noise = json.loads((out / 'noise' / 'results.json').read_text())
    assert oracle['summary']['mean'] > noise['summary']['mean'] + 0.05
    ci = oracle['bootstrap']
    assert ci['lo'] <= ci['point'] <= ci['hi']
    rows = {cells[0]: cells[1:] for line in (out / 'comparison.md').read_text().splitlines()
            if len(cells := [c.strip() for c in line.strip().strip('|').split('|')]) == 3}
    for name, result in (('oracle', oracle), ('noise', noise)):
        mean, std = map(float, rows[name][0].split(' ± '))  # "mean ± std" over folds
        assert mean == pytest.approx(result['summary']['mean'], abs=5e-4)
        assert std == pytest.approx(result['summary']['std'], abs=5e-4)
        lo, hi = map(float, rows[name][1].strip('[]').split(','))
        assert lo < hi
    assert (out / 'oracle' / 'km.png').read_bytes()[:4] == b'\x89PNG'


def test_mil_survival_runs_and_is_reproducible(bench):
    table = load_survival_labels(bench / 'survival.csv')
    splits = load_survival_splits(bench / 'splits_survival')[:2]
    bags = load_bags(bench / 'composition', [s for v in table.slides.values() for s in v])
    cfg = MILConfig(epochs=1)
    a = evaluate_survival_mil(table, bags, splits, cfg, seed=3)
    b = evaluate_survival_mil(table, bags, splits, cfg, seed=3)
    assert [f.val_cindex for f in a.folds] == [f.val_cindex for f in b.folds]
    assert a.folds[0].n_val == len(splits[0].val)


class CpuCopies(TorchFunctionMode):
    """Counts ``Tensor.cpu()`` calls (a device-to-host copy each on a GPU)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += getattr(func, '__name__', None) == 'cpu'
        return func(*args, **(kwargs or {}))


def test_mil_survival_copies_to_the_host_once_per_fold_not_per_bag(bench):
    table = load_survival_labels(bench / 'survival.csv')
    splits = load_survival_splits(bench / 'splits_survival')[:2]
    bags = load_bags(bench / 'composition', [s for v in table.slides.values() for s in v])
    with CpuCopies() as copies:
        result = evaluate_survival_mil(table, bags, splits, MILConfig(epochs=2), seed=3)
    assert all(f.n_train > 10 for f in result.folds)
    assert copies.calls == len(splits)  # the validation risks; formerly + one per bag


def test_mil_survival_hipt_protocol_trains_otherwise_and_the_cli_passes_it(bench, tmp_path,
                                                                          capsys):
    table = load_survival_labels(bench / 'survival.csv')
    splits = load_survival_splits(bench / 'splits_survival')[:2]
    bags = load_bags(bench / 'composition', [s for v in table.slides.values() for s in v])
    cfg = MILConfig(epochs=1)
    default = evaluate_survival_mil(table, bags, splits, cfg, seed=3)
    hipt = evaluate_survival_mil(table, bags, splits, cfg, seed=3, protocol='hipt', alpha=0.2)
    again = evaluate_survival_mil(table, bags, splits, cfg, seed=3, protocol='hipt', alpha=0.2)
    assert [f.risk.tolist() for f in hipt.folds] == [f.risk.tolist() for f in again.folds]
    assert any(not np.allclose(a.risk, b.risk) for a, b in zip(default.folds, hipt.folds))
    tool = load_tool('eval_slides')
    common = ['survival', '--embeddings', str(bench / 'composition'), '--csv',
              str(bench / 'survival.csv'), '--splits', str(bench / 'splits_survival'),
              '--bootstrap', '10']
    assert tool.main([*common, '--out', str(tmp_path / 'cox'), '--protocol', 'hipt']) == 2
    assert '--model mil' in capsys.readouterr().err
    assert tool.main([*common, '--out', str(tmp_path / 'mil'), '--model', 'mil', '--epochs',
                      '1', '--protocol', 'hipt', '--alpha-surv', '0.2']) == 0
    result = json.loads((tmp_path / 'mil' / 'results.json').read_text())
    assert (result['mil_protocol'], result['alpha']) == ('hipt', 0.2)


def test_mil_survival_learns_a_planted_risk_and_not_shuffled_outcomes(bench):
    """Every case dies at 60 * exp(-z), z its standardised mean of feature 0 over its
    regions: the model must rank validation cases well, and far better than when the
    same times are shuffled across cases."""
    table = load_survival_labels(bench / 'survival.csv')
    splits = load_survival_splits(bench / 'splits_survival')[:2]
    bags = load_bags(bench / 'composition', [s for v in table.slides.values() for s in v])
    cases = table.cases
    z = np.array([float(torch.cat([bags[s] for s in table.slides[c]])[:, 0].mean())
                  for c in cases])
    times = 60 * np.exp(-(z - z.mean()) / z.std())
    cfg = MILConfig(epochs=3, lr=2e-3)

    def mean_cindex(order: np.ndarray) -> float:
        planted = dataclasses.replace(table, time=dict(zip(cases, times[order].tolist())),
                                      event=dict.fromkeys(cases, 1))
        return np.mean([f.val_cindex for f in
                        evaluate_survival_mil(planted, bags, splits, cfg, seed=3).folds])

    learned = mean_cindex(np.arange(len(cases)))
    rng = np.random.default_rng(0)
    shuffled = [mean_cindex(rng.permutation(len(cases))) for _ in range(3)]
    assert learned > 0.8, learned
    assert learned > max(shuffled) + 0.2, (learned, shuffled)
