"""IBOTPatchLoss: the value against a per-grid reference and lightly's loss, the centre
over the masked cells (also over two gloo processes, in the step's one all-reduce)."""
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from lightly.loss import IBOTPatchLoss as LightlyIBOTPatchLoss

from slpd_plugin.models.losses import DINOLoss, merged_center_updates
from slpd_plugin.registry import MODELS
from tests.models.collectives import counted_all_reduces
from tests.utils import free_port

P = 16


def loss_fn(**kw):
    return MODELS.build(dict(type='IBOTPatchLoss', output_dim=P, **kw))


def inputs(grids=4, h=3, w=4, seed=0, empty_grid=True):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(grids, h, w, generator=g) > 0.5
    if empty_grid:
        mask[1] = False  # a grid without masked cells
    m = int(mask.sum())
    return torch.randn(m, P, generator=g), torch.randn(m, P, generator=g), mask


def reference(teacher, student, mask, center, t_temp, s_temp=0.1):
    """Grid by grid: the mean over its masked cells of the cross-entropy, then the mean
    over all grids (an unmasked grid counts as 0)."""
    per_grid, start = [], 0
    for grid in mask:
        n = int(grid.sum())
        t, s = teacher[start:start + n], student[start:start + n]
        start += n
        ce = [-(F.softmax((t[i] - center) / t_temp, -1) * F.log_softmax(s[i] / s_temp, -1)).sum()
              for i in range(n)]
        per_grid.append(torch.stack(ce).mean() if ce else torch.tensor(0.0))
    return torch.stack(per_grid).mean()


def test_value_and_centre_match_the_reference():
    loss = loss_fn(loss_weight=2.0)
    center = torch.randn(1, P)
    loss.center.center = center.clone()
    teacher, student, mask = inputs()
    got = loss(teacher, student, mask, teacher_temp=0.07)
    torch.testing.assert_close(got, 2.0 * reference(teacher, student, mask, center[0], 0.07))
    # EMA (momentum 0.9) of the mean teacher logit over the masked cells
    torch.testing.assert_close(loss.center.center, 0.9 * center + 0.1 * teacher.mean(0))
    # without a temperature from the caller: the loss's own
    assert loss_fn(teacher_temp=0.05)(teacher, student, mask).item() == pytest.approx(
        reference(teacher, student, mask, torch.zeros(P), 0.05).item(), rel=1e-6)


def test_same_value_as_lightlys_loss():
    teacher, student, mask = inputs(seed=3)
    ours, theirs = loss_fn(), LightlyIBOTPatchLoss(output_dim=P)
    for _ in range(2):  # the second call uses the updated centres
        torch.testing.assert_close(ours(teacher, student, mask, 0.04),
                                   theirs(teacher, student, mask, 0.04))
        torch.testing.assert_close(ours.center.center, theirs.center.center)
    assert set(ours.state_dict()) == set(theirs.state_dict()) == {'center.center'}


def test_no_masked_cell_gives_zero_keeps_the_graph_and_the_centre():
    loss = loss_fn()
    loss.center.center = torch.ones(1, P)
    student = torch.zeros(0, P, requires_grad=True)
    value = loss(torch.zeros(0, P), student, torch.zeros(2, 3, 3, dtype=torch.bool))
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(loss.center.center, torch.ones(1, P))


def test_fp32_under_autocast_and_mismatched_inputs_are_refused():
    teacher, student, mask = inputs()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = loss_fn()(teacher.bfloat16(), student.bfloat16(), mask)
    assert value.dtype == torch.float32
    with pytest.raises(ValueError, match='masked cells'):
        loss_fn()(teacher[:-1], student[:-1], mask)


def _worker(rank, port, out):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    teacher, student, mask = inputs(seed=10 + rank)  # different numbers of cells
    dino, ibot = DINOLoss(output_dim=P), loss_fn()
    views = [torch.randn(4, P, generator=torch.Generator().manual_seed(rank))] * 2
    with counted_all_reduces() as sizes, merged_center_updates():
        dino(views, views)
        ibot(teacher, student, mask)
    torch.save(dict(sizes=sizes, center=ibot.center.center, teacher=teacher),
               f'{out}{rank}.pt')
    dist.destroy_process_group()


@pytest.mark.slow  # two processes
def test_ddp_centre_is_the_mean_over_all_cells_in_one_all_reduce(tmp_path):
    mp.spawn(_worker, args=(free_port(), str(tmp_path / 'rank')), nprocs=2)
    results = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in range(2)]
    cells = torch.cat([r['teacher'] for r in results])  # every masked cell of both ranks
    assert results[0]['teacher'].shape[0] != results[1]['teacher'].shape[0]
    for res in results:
        assert res['sizes'] == [P + P + 1]  # DINO mean, iBOT sum and count: one buffer
        torch.testing.assert_close(res['center'], 0.1 * cells.mean(0, keepdim=True))
