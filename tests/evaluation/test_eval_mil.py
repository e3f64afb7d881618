"""Gated-attention MIL protocol: shapes, learnability on a toy task, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from slpd_plugin.evaluation import (
    GatedAttentionMIL,
    MILConfig,
    Split,
    TransformerMIL,
    evaluate_mil,
    load_bags,
)
from slpd_plugin.evaluation.protocols.mil import build_mil_model


def test_forward_shapes_and_attention() -> None:
    model = GatedAttentionMIL(in_dim=6, num_classes=3, hidden_dim=8, attn_dim=4).eval()
    logits, attention = model(torch.randn(5, 6))
    assert logits.shape == (3,) and attention.shape == (5,)
    assert attention.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert (attention >= 0).all()


def _toy(num_slides: int = 40, seed: int = 0):
    """Class 1 slides hide a few 'tumour' regions far from the rest; class 0 has none."""
    rng = np.random.default_rng(seed)
    bags, labels = {}, {}
    for i in range(num_slides):
        y = i % 2
        x = rng.normal(size=(int(rng.integers(4, 10)), 6))
        if y:
            x[:2] += 4.0
        bags[f's{i:03d}'] = torch.as_tensor(x, dtype=torch.float32)
        labels[f's{i:03d}'] = y
    ids = sorted(bags)
    perm = [ids[j] for j in rng.permutation(len(ids))]
    splits = [Split(0, perm[:24], perm[24:32], perm[32:]),
              Split(1, perm[16:], perm[:8], perm[8:16])]
    return bags, labels, splits


def test_mil_learns_toy_task_and_is_deterministic() -> None:
    bags, labels, splits = _toy()
    cfg = MILConfig(epochs=6, lr=1e-3, hidden_dim=16, attn_dim=8)
    state = torch.random.get_rng_state()
    first = evaluate_mil(bags, labels, splits, 2, ['a', 'b'], config=cfg)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    assert first.protocol == 'mil'
    assert [f.test_auc for f in first.folds] == [1.0, 1.0]
    assert all(1 <= f.best_epoch <= 6 for f in first.folds)
    assert [f.n_train for f in first.folds] == [24, 24]

    again = evaluate_mil(bags, labels, splits, 2, ['a', 'b'], config=cfg)
    for f, g in zip(first.folds, again.folds):
        np.testing.assert_array_equal(f.test_proba, g.test_proba)
        assert f.best_epoch == g.best_epoch


def test_load_bags(tmp_path) -> None:
    torch.save(torch.ones(3, 4), tmp_path / 'a.svs.pt')
    torch.save({'features': torch.zeros(2, 4)}, tmp_path / 'b.pt')
    bags = load_bags(tmp_path, ['a', 'b', 'c'])
    assert sorted(bags) == ['a', 'b'] and bags['a'].shape == (3, 4)
    with pytest.raises(ValueError, match='no slide embeddings'):
        evaluate_mil({}, {}, [], 2)


def test_slide_transformer_shapes_and_learns_the_toy_task() -> None:
    from slpd_plugin.evaluation import TransformerMIL
    model = TransformerMIL(in_dim=6, num_classes=2).eval()
    logits, attention = model(torch.randn(7, 6))
    assert logits.shape == (2,) and attention.shape == (7,)
    assert attention.sum().item() == pytest.approx(1.0, abs=1e-6)
    bags, labels, splits = _toy()
    result = evaluate_mil(bags, labels, splits, 2, ['a', 'b'],
                          config=MILConfig(epochs=8, lr=1e-3, model='transformer',
                                           hidden_dim=24, attn_dim=8))
    chance = 0.5
    assert all(f.test_auc > chance + 0.3 for f in result.folds)


def test_mil_config__refuses_unknown_model() -> None:
    with pytest.raises(ValueError, match=r"one of \['abmil', 'transformer'\], got 'gru'"):
        MILConfig(model='gru')


@pytest.mark.parametrize('model', ['abmil', 'transformer'])
def test_build_mil_model__uses_the_sizes_given(model: str) -> None:
    built = build_mil_model(MILConfig(model=model, hidden_dim=12, attn_dim=5), 6, 3)
    assert built.classifier.in_features == 12 and built.attn_w.in_features == 5
    logits, attention = built.eval()(torch.randn(4, 6))
    assert logits.shape == (3,) and attention.shape == (4,)
    default = build_mil_model(MILConfig(model=model), 6, 3)  # the model's own defaults
    assert default.classifier.in_features == (256 if model == 'abmil' else 192)


def test_transformer_mil__refuses_width_not_multiple_of_heads() -> None:
    with pytest.raises(ValueError, match='hidden_dim=10 is not a multiple of heads=3'):
        TransformerMIL(6, 2, hidden_dim=10)
