"""tools/run_demo.py --compare --quick end to end: benchmark, two trainings, their
random-init encoders, ABMIL on raw features, extraction, paired differences, report.

One run covers the default demo's rows too (the comparison mode adds rows to them)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from slpd_plugin.checkpoints import load_checkpoint
from slpd_plugin.demo.methods import METHODS, SLIDE_ROUTES, Method, SlideRoute
from slpd_plugin.demo.steps import embed_method
from slpd_plugin.utils.weights import encoder_state
from tests.warm import python_exe

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.mark.slow
def test_quick_comparison_demo_writes_report_and_figures(tmp_path, monkeypatch):
    out = tmp_path / 'demo'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    started = time.monotonic()
    done = subprocess.run([python_exe(), str(REPO_ROOT / 'tools' / 'run_demo.py'),
                           '--compare', '--quick', '--seeds', '0', '--methods', 'DINO-4K',
                           'SLPD', 'iBOT-ALiBi', '--out', str(out)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = (out / 'report.md').read_text()
    for text in ('| DINO-4K |', '| SLPD |', '| composition (oracle) |', '| raw mean features |',
                 '| SLPD (random init) |', '| ABMIL on raw features (supervised) |',
                 '| linear | SLPD − DINO-4K |', 'no claim (1 seed(s), 3 needed)',
                 '| iBOT-ALiBi |', '| iBOT-ALiBi (random init) |',
                 '| linear | iBOT-ALiBi − DINO-4K |',
                 '## Wall time', '## Survival', '| SLPD | ', 'Cox val c-index'):
        assert text in report
    for name in ('loss_curves.png', 'auc_bars.png', 'prototype_map.png', 'phenotype_map.png',
                 'fewshot/fewshot.png'):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
        assert f']({name})' in report
    saved = json.loads((out / 'demo_results.json').read_text())
    results = saved['test_auc_per_seed_per_fold']
    for protocol in ('knn', 'linear'):
        for method in ('DINO-4K', 'SLPD', 'DINO-4K (random init)', 'SLPD (random init)'):
            (folds,) = results[protocol][method]  # one seed
            assert len(folds) == 3 and all(a is None or 0 <= a <= 1 for a in folds)
    (abmil,) = results['abmil']['ABMIL on raw features (supervised)']
    assert len(abmil) == 3
    # every paired difference is the split-wise difference of the saved AUCs
    for pair in saved['paired_differences']:
        protocol, _, base_protocol = pair['protocol'].partition(' vs ')
        base = results[base_protocol or protocol][pair['base']]
        other = results[protocol][pair['other']]
        expected = np.array(other, float) - np.array(base, float)
        np.testing.assert_allclose(np.array(pair['diffs'], float), expected)
        assert not pair['claim']  # one seed
    assert (out / 'seed0' / 'SLPD' / 'emb' / 'slide_embeddings.npz').is_file()
    # iBOT-ALiBi trained on the benchmark's slides as lattices and encoded each whole slide
    slides = sorted(p.stem for p in (out / 'seed0' / 'iBOT-ALiBi' / 'emb').glob('*.pt'))
    assert len(slides) == 24 and (out / 'benchmark' / 'trident' / 'done').is_file()
    assert torch.load(out / 'seed0' / 'iBOT-ALiBi' / 'emb' / f'{slides[0]}.pt').shape[0] == 1
    # the random-init checkpoint is untrained: its teacher differs from the trained one
    init = load_checkpoint(out / 'seed0' / 'SLPD_random_init' / 'init' / 'random_init.pth')
    trained_path = (out / 'seed0' / 'SLPD' / 'train' / 'last_checkpoint').read_text().strip()
    trained = encoder_state(load_checkpoint(trained_path))
    untrained = encoder_state(init)
    assert init['meta']['untrained'] and untrained.keys() == trained.keys()
    assert any(not torch.equal(untrained[k], trained[k]) for k in trained)
    # SLPD's untrained teacher is DINO-4K's (same backbone config and seed): the demo
    # reuses that row's AUCs, which is right only if the weights are really equal
    dino = encoder_state(load_checkpoint(
        out / 'seed0' / 'DINO-4K_random_init' / 'init' / 'random_init.pth'))
    assert all(torch.equal(dino[k], untrained[k]) for k in untrained)
    reused = (out / 'seed0' / 'SLPD_random_init' / 'same_weights_as.txt').read_text()
    assert reused.strip().endswith('DINO-4K_random_init')
    # the wall-time rows are disjoint parts of the run: together no longer than the run
    assert 0 < sum(saved['timings'].values()) <= elapsed
    _check_a_route_through_the_extraction_tool(out, monkeypatch)


def _check_a_route_through_the_extraction_tool(out: Path, monkeypatch) -> None:
    """The plumbing a new slide route uses (tools/extract_embeddings.py in a subprocess,
    its slide-feature folder found by the route's glob), on the demo's random-init
    checkpoint: with today's --format trident the slide features are the mean of the
    region embeddings, i.e. the in-process route's slide table."""
    monkeypatch.setitem(SLIDE_ROUTES, 'trident', SlideRoute(
        'TRIDENT slide features', ('--format', 'trident', '--name', 'demo'),
        '**/slide_features_*'))
    monkeypatch.setitem(METHODS, 'via-cli', Method('unused.py', 'unused.py', slide='trident'))
    run = out / 'seed0' / 'DINO-4K_random_init'
    config = next((run / 'init').glob('*.py'))
    folder = embed_method('via-cli', config, run / 'init' / 'random_init.pth', out / 'benchmark',
                          out / 'via_cli', 'extraction via the CLI')
    assert folder.name == 'slide_features_demo'
    table = np.load(run / 'emb' / 'slide_embeddings.npz')
    for slide_id, features in zip(table['slide_id'], table['features']):
        with h5py.File(folder / f'{slide_id}.h5', 'r') as f:
            np.testing.assert_allclose(f['features'][0], features, rtol=1e-5, atol=1e-6)
