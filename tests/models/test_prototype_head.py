"""PrototypeDistillHead on hand-built banks: known prototypes -> known targets -> known CE."""
import math

import pytest
import torch
import torch.nn.functional as F

from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.registry import MODELS

P, D = 5, 3


def unit(*v):
    t = torch.tensor(v, dtype=torch.float32)
    return t / t.norm()


@pytest.fixture
def bank():
    centroids = torch.stack([torch.stack([unit(1, 0, 0), unit(0, 1, 0)]),
                             torch.stack([unit(0, 1, 1), unit(1, 1, 0)]),
                             torch.zeros(2, D)])                    # slide 2: no prototypes
    return PrototypeBank(
        centroids=centroids, valid=torch.tensor([True, True, False]),
        # regions 0,1: slide 0; 2: slide 1; 3: slide 2
        assignments=torch.tensor([1, 0, 0, -1]),
        neighbors=torch.tensor([[1], [0], [-1]]),
        matched=torch.tensor([[[1], [0]], [[0], [1]], [[-1], [-1]]]),
        neighbor_similarity=torch.zeros(3, 1), inertia=torch.zeros(3),
        cluster_sizes=torch.ones(3, 2, dtype=torch.long))


@pytest.fixture
def teacher():
    head = MODELS.build(dict(type='DINOHead', in_channels=4, hidden_dims=8,
                             bottleneck_dims=D, out_channels=P))
    with torch.no_grad():
        head.projection.last_layer.weight_v.copy_(torch.arange(P * D, dtype=torch.float32)
                                                   .reshape(P, D).sin())
    return torch.nn.ModuleDict(dict(head=head))


def plain_target(teacher, c):
    """Spec: last layer = weight-normalised linear map with norm 1 per output row."""
    w = teacher.head.projection.last_layer.weight_v
    return (w / w.norm(dim=1, keepdim=True)) @ c


def plain_ce(target, student_views, temp=0.04, student_temp=0.1):
    q = F.softmax(target / temp, -1)
    return sum(-(q * F.log_softmax(s / student_temp, -1)).sum() for s in student_views) \
        / len(student_views)


def head(**kw):
    return MODELS.build(dict(type='PrototypeDistillHead', out_channels=P, **kw))


def test_known_targets_give_known_cross_entropy(bank, teacher):
    torch.manual_seed(0)
    views = [torch.randn(4, P) for _ in range(3)]
    samples = dict(index=torch.tensor([0, 1, 2, 3]), slide_index=torch.tensor([0, 0, 1, 2]))
    losses = head().loss(views, teacher, bank, samples, teacher_temp=0.04)
    intra_targets = [bank.centroids[0, 1], bank.centroids[0, 0], bank.centroids[1, 0]]
    expected = sum(plain_ce(plain_target(teacher, c), [v[i] for v in views])
                   for i, c in enumerate(intra_targets)) / 3  # region 3 has no prototype
    torch.testing.assert_close(losses['loss_intra'], expected)
    # inter: the neighbour's matched prototype, e.g. region 0 (slide 0, k=1) -> slide 1, m=0
    inter_targets = [bank.centroids[1, 0], bank.centroids[1, 1], bank.centroids[0, 0]]
    expected = sum(plain_ce(plain_target(teacher, c), [v[i] for v in views])
                   for i, c in enumerate(inter_targets)) / 3
    torch.testing.assert_close(losses['loss_inter'], expected)


def test_weights_loss_type_and_skipping_view_zero(bank, teacher):
    views = [torch.randn(4, P) for _ in range(3)]
    samples = dict(index=torch.tensor([0, 1, 2, 3]), slide_index=torch.tensor([0, 0, 1, 2]))
    base = head(loss_type='intra').loss(views, teacher, bank, samples)
    assert set(base) == {'loss_intra'}
    doubled = head(loss_type='intra', intra_weight=2.0).loss(views, teacher, bank, samples)
    torch.testing.assert_close(doubled['loss_intra'], 2 * base['loss_intra'])
    skipped = head(loss_type='intra', skip_first_student_view=True).loss(
        views, teacher, bank, samples)
    only_later = head(loss_type='intra').loss(views[1:], teacher, bank, samples)
    torch.testing.assert_close(skipped['loss_intra'], only_later['loss_intra'])
    assert set(head(loss_type='inter').loss(views, teacher, bank, samples)) == {'loss_inter'}


def test_batch_without_prototypes_gives_zero_with_gradient_path(bank, teacher):
    views = [torch.randn(2, P, requires_grad=True) for _ in range(2)]
    samples = dict(index=torch.tensor([3, 3]), slide_index=torch.tensor([2, 2]))
    m = head()
    before = m.center_intra.clone()
    losses = m.loss(views, teacher, bank, samples)
    assert losses['loss_intra'].item() == 0.0 and losses['loss_inter'].item() == 0.0
    losses['loss_intra'].backward()
    assert views[0].grad is not None
    assert torch.equal(m.center_intra, before)  # nothing valid: centre unchanged


def test_centres_are_separate_emas_of_valid_targets(bank, teacher):
    views = [torch.randn(4, P) for _ in range(2)]
    samples = dict(index=torch.tensor([0, 1, 2, 3]), slide_index=torch.tensor([0, 0, 1, 2]))
    m = head(center_momentum=0.9)
    m.loss(views, teacher, bank, samples)
    intra = torch.stack([plain_target(teacher, c) for c in
                         (bank.centroids[0, 1], bank.centroids[0, 0], bank.centroids[1, 0])])
    inter = torch.stack([plain_target(teacher, c) for c in
                         (bank.centroids[1, 0], bank.centroids[1, 1], bank.centroids[0, 0])])
    torch.testing.assert_close(m.center_intra[0], 0.1 * intra.mean(0))
    torch.testing.assert_close(m.center_inter[0], 0.1 * inter.mean(0))


def test_no_bank_no_prototype_loss(teacher):
    assert head().loss([torch.randn(2, P)], teacher, None, {}) == {}
    with pytest.raises(ValueError, match="loss_type.*'both'"):
        head(loss_type='both')
    assert math.isclose(head().teacher_temp, 0.04)


def test_teacher_assignment_picks_the_nearest_prototype_of_the_slide(bank, teacher):
    """Window views are not in the bank: their prototype is the one of their slide nearest
    (cosine) to the mean teacher z of their global views; the losses then equal those of a
    bank that had assigned them so by hand."""
    torch.manual_seed(0)
    views = [torch.randn(4, P) for _ in range(3)]
    global_0 = [unit(1, .1, 0), unit(0, 1, .1), unit(1, .8, 0), unit(1, 0, 0)]
    global_1 = [unit(.9, 0, .2), unit(.2, 1, 0), unit(.9, 1, .1), unit(0, 1, 0)]
    z = torch.stack([torch.stack(global_0), torch.stack(global_1)])  # (Vg, B, Z)
    windows = dict(index=torch.tensor([40, 41, 42, 43]),  # no such bank entries
                   slide_index=torch.tensor([0, 0, 1, 2]))
    got = head(assign_from='teacher').loss(views, teacher, bank, windows, teacher_z=z)
    by_hand = PrototypeBank(**dict(bank.state_dict(), assignments=torch.tensor([0, 1, 1, -1])))
    want = head().loss(views, teacher, by_hand,
                       dict(index=torch.arange(4), slide_index=windows['slide_index']))
    assert set(got) == {'loss_intra', 'loss_inter'}
    for key in got:
        torch.testing.assert_close(got[key], want[key])
    with pytest.raises(ValueError, match='teacher_z'):
        head(assign_from='teacher').loss(views, teacher, bank, windows)
    with pytest.raises(ValueError, match="assign_from must be one of \\('bank', 'teacher'\\)"):
        head(assign_from='window')
