"""All EMA centres of a step share one all-reduce, and move exactly as before .

Two real gloo processes run :meth:`SLPD.loss` with a prototype bank (intra + inter with
two neighbours: four centre statistics). ``torch.distributed.all_reduce`` is wrapped by
a counter that calls the real collective. The reference is the computation before the
merge: lightly's ``center_mean`` (its own all-reduce) for the DINO centre, and one
all-reduce of masked sum and count per prototype target.
"""
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightly.models.modules.center import center_mean

from slpd_plugin.prototypes import PrototypeBank
from tests.models.collectives import counted_all_reduces
from tests.models.tiny_slpd import tiny_slpd
from tests.utils import free_port

P, Z, N = 32, 16, 8  # head output dim, bottleneck dim, regions per rank


def build_model():
    model = tiny_slpd(Z, P)
    g = torch.Generator().manual_seed(1)
    for buf in (model.loss_module.center, model.prototype_head.center_intra,
                model.prototype_head.center_inter):
        buf.copy_(torch.randn(buf.shape, generator=g))
    centroids = torch.nn.functional.normalize(torch.randn(3, 2, Z, generator=g), dim=-1)
    model.bank = PrototypeBank(
        centroids=centroids, valid=torch.tensor([True, True, False]),
        assignments=torch.randint(0, 2, (2 * N,), generator=g),
        neighbors=torch.tensor([[1, 2], [0, 2], [0, 1]]),
        matched=torch.randint(0, 2, (3, 2, 2), generator=g),
        neighbor_similarity=torch.zeros(3, 2), inertia=torch.zeros(3),
        cluster_sizes=torch.ones(3, 2, dtype=torch.long))
    return model


def rank_batch(rank):
    g = torch.Generator().manual_seed(10 + rank)
    index = torch.arange(N) + rank * N
    return dict(inputs=torch.randn(N, 8, 16, 16, generator=g),
                data_samples=dict(index=index, region_index=index,
                                  slide_index=torch.randint(0, 3, (N,), generator=g)))


@torch.no_grad()
def reference_centres(model, views, samples):
    """The centres as computed before the merge (one collective per centre)."""
    teacher, head, m = model.teacher, model.prototype_head, 0.9
    t_logits = teacher.head(teacher.backbone(torch.cat(views[:2]))).chunk(2)
    dino = model.loss_module.center * m + center_mean(torch.stack(t_logits), (0, 1)) * (1 - m)
    out = {'dino': dino}
    for term, (protos, valids) in head.targets(model.bank, samples).items():
        center, new = getattr(head, f'center_{term}'), []
        for proto, valid in zip(protos, valids):
            target = teacher.head.last_layer(proto)
            stats = torch.cat([torch.where(valid[:, None], target, 0.0).sum(0),
                               valid.sum().float().reshape(1)])
            dist.all_reduce(stats)
            batch_center = (stats[:-1] / stats[-1].clamp_min(1)).reshape_as(center)
            new.append(torch.where(stats[-1] > 0, center * m + batch_center * (1 - m),
                                   center))
        out[term] = torch.stack(new).mean(0)
    return out


def _worker(rank, port, out):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    model = build_model()
    data = model.data_preprocessor(rank_batch(rank), training=True)
    expected = reference_centres(model, data['inputs'], data['data_samples'])
    with counted_all_reduces() as sizes:
        losses = model.loss(data['inputs'], data['data_samples'])
    head = model.prototype_head
    torch.save(dict(sizes=sizes, expected=expected, losses=losses,
                    got={'dino': model.loss_module.center, 'intra': head.center_intra,
                         'inter': head.center_inter}), f'{out}{rank}.pt')
    dist.destroy_process_group()


def build_model_centre(name):
    model = build_model()
    return model.loss_module.center if name == 'dino' else getattr(
        model.prototype_head, f'center_{name}')


@pytest.mark.slow  # two processes
def test_one_all_reduce_per_step_and_the_same_centres(tmp_path):
    mp.spawn(_worker, args=(free_port(), str(tmp_path / 'rank')), nprocs=2)
    results = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in range(2)]
    for res in results:
        # DINO mean (P) + intra (1 x (P+1)) + inter (2 x (P+1)) in one buffer
        assert res['sizes'] == [P + 3 * (P + 1)]
        assert set(res['losses']) == {'loss_dino', 'loss_intra', 'loss_inter'}
        for name, expected in res['expected'].items():
            torch.testing.assert_close(res['got'][name], expected.reshape_as(res['got'][name]),
                                       rtol=1e-7, atol=0)
    for name in ('dino', 'intra', 'inter'):
        assert torch.equal(results[0]['got'][name], results[1]['got'][name])
        assert not torch.equal(results[0]['got'][name], build_model_centre(name))
