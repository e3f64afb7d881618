"""The prototype bank: build, shards, edge cases, checkpoint round trip."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from slpd_plugin.engine.hooks import PrototypeHook
from slpd_plugin.prototypes import (
    PrototypeBank,
    build_bank,
    cluster_slides,
    find_neighbors,
    finish_bank,
    set_similarity,
)
from slpd_plugin.prototypes.build import _padded_length

COUNTS = [40, 12, 35, 50, 3, 33, 45, 20, 38, 41]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32) if t.is_floating_point() else t


def _assert_same(a: PrototypeBank, b: PrototypeBank) -> None:
    for name in a.field_names():
        assert torch.equal(_bits(getattr(a, name)), _bits(getattr(b, name))), name


@pytest.mark.parametrize('backend', ['torch', 'faiss'])
def test_bank_matches_brute_force(regions, backend):
    embeddings, slide_index = regions(COUNTS, dim=8, seed=1)
    bank = build_bank(embeddings, slide_index, num_clusters=3, min_regions=30,
                      num_neighbors=2, backend=backend)
    assert bank.valid.tolist() == [c >= 30 for c in COUNTS]
    torch.testing.assert_close(bank.centroids[bank.valid].norm(dim=-1),
                               torch.ones(int(bank.valid.sum()), 3))
    assert (bank.centroids[~bank.valid] == 0).all()
    raw, _, _ = cluster_slides(embeddings, slide_index, len(COUNTS), 3, 30,
                               torch.arange(len(COUNTS)), backend)
    torch.testing.assert_close(bank.centroids, F.normalize(raw, dim=-1))
    z = F.normalize(embeddings.double(), dim=-1)
    for i, s in enumerate(slide_index.tolist()):
        if not bank.valid[s]:
            assert bank.assignments[i] == -1
            continue
        dist = ((z[i] - raw[s].double()) ** 2).sum(-1)
        assert dist[bank.assignments[i]] <= dist.min() + 1e-6
    for s in range(len(COUNTS)):
        sizes = [int(((slide_index == s) & (bank.assignments == k)).sum()) for k in range(3)]
        assert bank.cluster_sizes[s].tolist() == sizes
        for j in range(2):
            n = int(bank.neighbors[s, j])
            if n < 0:
                assert (bank.matched[s, :, j] == -1).all()
                continue
            inner = bank.centroids[s] @ bank.centroids[n].T
            assert torch.equal(bank.matched[s, :, j], inner.argmax(1))
    expected = find_neighbors(bank.centroids, bank.valid, 2)
    assert torch.equal(bank.neighbors, expected[0])
    sims = set_similarity(bank.centroids, bank.centroids)
    defined = bank.neighbors >= 0
    rows = torch.arange(len(COUNTS))[:, None].expand(-1, 2)
    torch.testing.assert_close(bank.neighbor_similarity[defined],
                               sims[rows[defined], bank.neighbors[defined]])


def test_shards_then_finish_equals_build_bank(regions):
    embeddings, slide_index = regions(COUNTS, dim=8, seed=2)
    full = build_bank(embeddings, slide_index, 3, 30, num_neighbors=2, seed=5)
    shards = [torch.tensor([7, 0, 3, 9, 4]), torch.tensor([8, 1, 6, 2, 5])]
    centroids = torch.zeros(len(COUNTS), 3, 8)
    valid = torch.zeros(len(COUNTS), dtype=torch.bool)
    inertia = torch.zeros(len(COUNTS))
    for shard in shards:
        centroids[shard], valid[shard], inertia[shard] = cluster_slides(
            embeddings, slide_index, len(COUNTS), 3, 30, shard, seed=5)
    _assert_same(full, finish_bank(embeddings, slide_index, centroids, valid, inertia, 2))


def _hand_made_bank_inputs() -> tuple[torch.Tensor, ...]:
    """Two 2-d slides whose raw centroids differ in norm: slide 0 has a short centroid
    (a spread-out cluster) near the regions' direction and a long one farther away."""
    centroids = torch.tensor([[[0.1, 0.0], [0.6, 0.8]],
                              [[0.0, 0.9], [0.7, -0.7]]])
    embeddings = torch.tensor([[2.0, 0.0], [3.0, 0.3], [0.5, 0.5],  # slide 0
                               [0.1, 1.0], [1.0, -0.8], [1.0, 0.2]])  # slide 1
    slide_index = torch.tensor([0, 0, 0, 1, 1, 1])
    return embeddings, slide_index, centroids, torch.ones(2, dtype=torch.bool), torch.zeros(2)


@pytest.mark.parametrize('assignment', ['l2', 'cosine'])
def test_assignment_rules_against_brute_force(assignment):
    embeddings, slide_index, centroids, valid, inertia = _hand_made_bank_inputs()
    bank = finish_bank(embeddings, slide_index, centroids, valid, inertia,
                       assignment=assignment)
    expected = []
    for e, s in zip(embeddings.double().tolist(), slide_index.tolist()):
        norm = sum(v * v for v in e) ** 0.5
        scores = []
        for c in centroids[s].double().tolist():
            if assignment == 'l2':  # minus the squared distance to the raw centroid
                scores.append(-sum((a / norm - b) ** 2 for a, b in zip(e, c)))
            else:  # cosine similarity with the centroid's direction
                scores.append(sum(a * b for a, b in zip(e, c))
                              / (norm * sum(b * b for b in c) ** 0.5))
        expected.append(max(range(len(scores)), key=scores.__getitem__))
    assert bank.assignments.tolist() == expected
    torch.testing.assert_close(bank.centroids, F.normalize(centroids, dim=-1))


def test_assignment_rules_disagree_on_the_hand_made_case():
    inputs = _hand_made_bank_inputs()
    l2 = finish_bank(*inputs, assignment='l2').assignments
    cosine = finish_bank(*inputs, assignment='cosine').assignments
    assert (l2 != cosine).any()
    assert build_bank(inputs[0], inputs[1], 2, 1).assignments.tolist() == \
        build_bank(inputs[0], inputs[1], 2, 1, assignment='l2').assignments.tolist()


def test_unknown_assignment_rule_raises():
    inputs = _hand_made_bank_inputs()
    with pytest.raises(ValueError, match="assignment must be one of .*'dot'"):
        finish_bank(*inputs, assignment='dot')
    with pytest.raises(ValueError, match="assignment must be one of .*'dot'"):
        build_bank(inputs[0], inputs[1], 2, 1, assignment='dot')
    with pytest.raises(ValueError, match="PrototypeHook: assignment must be one of"):
        PrototypeHook(assignment='dot')


def test_padded_length_buckets():
    counts = torch.arange(1, 3000)
    lengths = _padded_length(counts)
    assert (lengths >= counts).all()
    assert (lengths - counts < torch.maximum(counts // 4 + 1, torch.full_like(counts, 8))).all()
    for octave in range(3, 11):
        in_octave = (counts >= 2 ** octave) & (counts < 2 ** (octave + 1))
        assert len(torch.unique(lengths[in_octave])) <= 5


def test_all_slides_too_small_gives_an_empty_bank(regions):
    embeddings, slide_index = regions([3, 5, 2], dim=4, seed=3)
    bank = build_bank(embeddings, slide_index, num_clusters=4, min_regions=10)
    assert not bank.valid.any()
    assert (bank.assignments == -1).all() and (bank.neighbors == -1).all()
    assert (bank.matched == -1).all()
    summary = bank.summary()
    assert summary['valid_fraction'] == 0 and summary['num_regions'] == 10


def test_one_slide_and_one_cluster(regions):
    embeddings, slide_index = regions([25], dim=4, seed=4)
    bank = build_bank(embeddings, slide_index, num_clusters=1, min_regions=5)
    mean = F.normalize(F.normalize(embeddings, dim=-1).mean(0), dim=0)
    torch.testing.assert_close(bank.centroids[0, 0], mean)
    assert (bank.assignments == 0).all()
    assert bank.neighbors.tolist() == [[-1]] and (bank.matched == -1).all()


def test_slide_with_fewer_regions_than_clusters(regions):
    embeddings, slide_index = regions([2, 30, 40], dim=4, seed=5)
    excluded = build_bank(embeddings, slide_index, num_clusters=4, min_regions=10)
    assert excluded.valid.tolist() == [False, True, True]
    kept = build_bank(embeddings, slide_index, num_clusters=4, min_regions=1)
    assert kept.valid.all() and torch.isfinite(kept.centroids).all()
    assert kept.cluster_sizes[0].sum() == 2


def test_duplicated_embeddings_give_no_nan():
    embeddings = torch.ones(60, 4)
    slide_index = torch.arange(60) % 2
    bank = build_bank(embeddings, slide_index, num_clusters=3, min_regions=5)
    for value in bank.state_dict().values():
        assert not value.isnan().any()
    assert bank.neighbors.tolist() == [[1], [0]]


def test_slide_subset_limits_prototypes(regions):
    embeddings, slide_index = regions(COUNTS, dim=8, seed=6)
    full = build_bank(embeddings, slide_index, 3, 30)
    subset = build_bank(embeddings, slide_index, 3, 30, slide_subset=torch.tensor([0, 3, 4]))
    assert subset.valid.tolist() == [s in (0, 3) for s in range(len(COUNTS))]
    assert torch.equal(subset.centroids[[0, 3]], full.centroids[[0, 3]])
    assert subset.neighbors[:, 0].tolist()[:4] == [3, -1, -1, 0]


def test_state_dict_round_trip(regions, tmp_path):
    embeddings, slide_index = regions(COUNTS, dim=8, seed=7)
    bank = build_bank(embeddings, slide_index, 3, 30, num_neighbors=2)
    torch.save(bank.state_dict(), tmp_path / 'bank.pt')
    state = torch.load(tmp_path / 'bank.pt', weights_only=True)
    _assert_same(bank, PrototypeBank.from_state_dict(state))
    other = build_bank(embeddings, slide_index, 2, 10)
    other.load_state_dict(state)
    _assert_same(bank, other)
    _assert_same(bank, bank.to('cpu'))
    with pytest.raises(ValueError, match='missing'):
        PrototypeBank.from_state_dict({'centroids': bank.centroids})


def test_summary_matches_its_definition(regions):
    embeddings, slide_index = regions(COUNTS, dim=8, seed=8)
    bank = build_bank(embeddings, slide_index, 3, 30)
    summary = bank.summary()
    sizes = bank.cluster_sizes[bank.valid].float()
    assert summary['num_slides'] == len(COUNTS)
    assert summary['num_regions'] == sum(COUNTS)
    assert summary['valid_fraction'] == pytest.approx(sum(c >= 30 for c in COUNTS) / 10)
    assert summary['cluster_size_mean'] == pytest.approx(sizes.mean().item())
    assert summary['cluster_size_min'] == sizes.min().item()
    assert summary['cluster_size_max'] == sizes.max().item()
    assert summary['neighbor_similarity_mean'] == pytest.approx(
        bank.neighbor_similarity[bank.valid].mean().item())
    assert summary['inertia_mean'] == pytest.approx(bank.inertia[bank.valid].mean().item())


@pytest.mark.parametrize('kwargs, match', [
    (dict(backend='sklearn'), 'sklearn'), (dict(min_regions=0), 'min_regions'),
    (dict(num_slides=2), r'\[0, 2\)'),
])
def test_invalid_arguments_raise(regions, kwargs, match):
    embeddings, slide_index = regions([5, 5, 5], dim=4, seed=9)
    args = dict(num_clusters=2, min_regions=2) | kwargs
    with pytest.raises(ValueError, match=match):
        build_bank(embeddings, slide_index, **args)
