"""The students' log-softmax is made once per step and shared by the DINO loss and every
prototype term; the DINO loss still equals lightly's."""
import torch
from lightly.loss import DINOLoss as LightlyDINOLoss
from torch.utils._python_dispatch import TorchDispatchMode

from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.registry import MODELS
from tests.models.tiny_slpd import tiny_slpd

P, Z, N = 32, 8, 6


class CountOps(TorchDispatchMode):
    """Counts the aten calls of each op."""

    def __init__(self):
        super().__init__()
        self.counts = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def slpd_with_bank(neighbors=2):
    model = tiny_slpd(Z, P)
    g = torch.Generator().manual_seed(1)
    model.bank = PrototypeBank(
        centroids=torch.nn.functional.normalize(torch.randn(3, 2, Z, generator=g), dim=-1),
        valid=torch.ones(3, dtype=torch.bool),
        assignments=torch.randint(0, 2, (N,), generator=g),
        neighbors=torch.tensor([[1, 2], [2, 0], [0, 1]])[:, :neighbors],
        matched=torch.randint(0, 2, (3, 2, neighbors), generator=g),
        neighbor_similarity=torch.zeros(3, neighbors), inertia=torch.zeros(3),
        cluster_sizes=torch.ones(3, 2, dtype=torch.long))
    batch = dict(inputs=torch.randn(N, 8, 16, 16, generator=g),
                 data_samples=dict(index=torch.arange(N), region_index=torch.arange(N),
                                   slide_index=torch.arange(N) % 3))
    torch.manual_seed(2)
    out = model.data_preprocessor(batch, training=True)
    return model, out


def test_one_log_softmax_per_step_for_dino_intra_and_every_inter_neighbour():
    model, out = slpd_with_bank(neighbors=2)
    with CountOps() as ops:
        losses = model.loss(out['inputs'], out['data_samples'])
    assert set(losses) == {'loss_dino', 'loss_intra', 'loss_inter'}
    assert ops.counts['_log_softmax'] == 1  # 1 + 1 + 2 terms before sharing


def test_step_losses_equal_lightly_dino_and_the_plain_prototype_formula():
    model, out = slpd_with_bank(neighbors=1)
    lightly = LightlyDINOLoss(output_dim=P)
    lightly.center.copy_(model.loss_module.center)
    head = model.prototype_head
    centres = {t: getattr(head, f'center_{t}').clone() for t in head.terms}
    with torch.no_grad():
        views = out['inputs']
        t_logits = [model.teacher.head(model.teacher.backbone(v)) for v in views[:2]]
        s_logits = [model.student.head(model.student.backbone(v)) for v in views]
        expected_dino = lightly(t_logits, s_logits, teacher_temp=0.04)
        targets = head.targets(model.bank, out['data_samples'])
        expected = {}
        for term, (protos, valids) in targets.items():
            per_target = []
            for proto, valid in zip(protos, valids):
                q = torch.softmax((model.teacher.head.last_layer(proto) - centres[term])
                                  / 0.04, -1)
                ce = torch.stack([-(q * torch.log_softmax(s / 0.1, -1)).sum(-1)
                                  for s in s_logits]).mean(0)
                per_target.append((ce * valid).sum() / valid.sum().clamp_min(1))
            expected[f'loss_{term}'] = torch.stack(per_target).mean()
        losses = model.loss(views, out['data_samples'])
    torch.testing.assert_close(losses['loss_dino'], expected_dino, rtol=1e-5, atol=0)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, rtol=1e-5, atol=0)
    torch.testing.assert_close(model.loss_module.center, lightly.center, rtol=1e-6, atol=0)


def test_dino_loss_follows_lightly_during_the_teacher_temperature_warm_up():
    ours = MODELS.build(dict(type='DINOLoss', output_dim=P, warmup_teacher_temp=0.02,
                             warmup_teacher_temp_epochs=5))
    lightly = LightlyDINOLoss(output_dim=P, warmup_teacher_temp=0.02,
                              warmup_teacher_temp_epochs=5)
    g = torch.Generator().manual_seed(3)
    teacher = [torch.randn(4, P, generator=g) for _ in range(2)]
    student = [torch.randn(4, P, generator=g) for _ in range(3)]
    for epoch in (0, 3, 7):
        torch.testing.assert_close(ours(teacher, student, epoch=epoch),
                                   lightly(teacher, student, epoch=epoch), rtol=1e-6, atol=0)
