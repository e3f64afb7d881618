"""tools/inspect_bank.py prints the numbers of the checkpoint's bank (fast: a bank built
on random embeddings; test_trained_run.py repeats the check on a real run)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from slpd_plugin.datasets import open_store
from slpd_plugin.prototypes import PrototypeBank

from .conftest import fake_checkpoint


def expected_bank(ckpt: Path) -> tuple[PrototypeBank, int]:
    state = dict(torch.load(ckpt, weights_only=True)['prototype_bank'])
    epoch = int(state.pop('epoch'))
    return PrototypeBank.from_state_dict(state), epoch


def check_inspect_bank(main, ckpt: Path, store: Path, slide: int, capsys) -> None:
    """Run the tool (JSON and text) and compare with what the checkpoint holds."""
    bank, epoch = expected_bank(ckpt)
    rec = open_store(store).slides[slide]
    assert main([str(ckpt), '--slide', rec.slide_id, '--json']) == 0
    report = json.loads(capsys.readouterr().out)
    overview = report['bank']
    assert overview['epoch'] == epoch
    assert (overview['num_slides'], overview['num_regions']) == (len(bank.valid),
                                                                  len(bank.assignments))
    assert overview['num_prototypes'] == bank.centroids.shape[1]
    assert overview['valid_slides'] == int(bank.valid.sum())
    for key, value in bank.summary().items():
        assert overview['summary'][key] == pytest.approx(value, nan_ok=True), key
    got = report['slide']
    assert (got['index'], got['slide_id'], got['num_regions']) == (slide, rec.slide_id,
                                                                    rec.count)
    assert got['assignments'] == bank.assignments[rec.offset:rec.offset + rec.count].tolist()
    assert [p['size'] for p in got['prototypes']] == bank.cluster_sizes[slide].tolist()
    norms = bank.centroids[slide].norm(dim=-1).tolist()
    assert [p['norm'] for p in got['prototypes']] == pytest.approx(norms)
    neighbor = got['neighbors'][0]
    assert neighbor['index'] == int(bank.neighbors[slide, 0])
    assert neighbor['similarity'] == pytest.approx(float(bank.neighbor_similarity[slide, 0]))
    assert neighbor['matched'] == bank.matched[slide, :, 0].tolist()

    assert main([str(ckpt), '--slide', str(slide)]) == 0
    text = capsys.readouterr().out
    assert f'slides: {len(bank.valid)} ({int(bank.valid.sum())} with prototypes)' in text
    assert f'bank built at the start of epoch {epoch}' in text
    ids = [open_store(store).slide_ids[i] for i in bank.valid.nonzero().flatten().tolist()]
    assert f'slides with prototypes (ids): {" ".join(ids[:30])}' in text  # ids, not indices
    mean = bank.summary()['cluster_size_mean']
    assert any(line.split()[:1] == ['cluster_size_mean'] and
               math.isclose(float(line.split()[1]), mean, rel_tol=1e-5)
               for line in text.splitlines())
    assert ' '.join(map(str, got['assignments'][:32])) in text
    pairs = ', '.join(f'{k}->{m}' for k, m in enumerate(neighbor['matched']))
    assert f'similarity {neighbor["similarity"]:.4f}' in text and pairs in text


def test_inspect_bank__numbers(tools, small_store, tmp_path, capsys):
    ckpt = fake_checkpoint(small_store, tmp_path / 'small.pth', min_regions=3)
    check_inspect_bank(tools['inspect_bank'].main, ckpt, small_store, 2, capsys)


def test_inspect_bank__overview_needs_no_store(tools, small_store, tmp_path, capsys):
    ckpt = fake_checkpoint(small_store, tmp_path / 'small.pth', min_regions=3)
    moved = torch.load(ckpt, weights_only=True)
    moved['meta']['dataset_meta']['store'] = str(tmp_path / 'gone')
    torch.save(moved, ckpt)
    assert tools['inspect_bank'].main([str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert 'neighbor_similarity_mean' in out
    assert 'slides with prototypes (indices; --store names them)' in out
    assert tools['inspect_bank'].main([str(ckpt), '--slide', '0']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'feature store not found' in err
    assert 'that is the store recorded in the checkpoint: pass --store' in err


def test_inspect_bank__errors(tools, tmp_path, capsys):
    main = tools['inspect_bank'].main
    assert main([str(tmp_path / 'missing.pth')]) == 2
    assert capsys.readouterr().err == (f'inspect_bank.py: error: checkpoint not found: '
                                       f'{tmp_path / "missing.pth"} (expected a .pth file '
                                       f'written by tools/train.py)\n')
    no_bank = tmp_path / 'dino.pth'
    torch.save(dict(state_dict={}, meta={}), no_bank)
    assert main([str(no_bank)]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert "has no prototype bank (checkpoint key 'prototype_bank')" in err
