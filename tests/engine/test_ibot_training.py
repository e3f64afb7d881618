"""tools/train.py with the iBOT patch loss, registers and a separate patch head, on two
real gloo processes: every step logs a finite loss_ibot and both teacher temperatures,
every rank ends with the same state (patch-loss centre included), and the checkpoint
holds the new parts."""
import math

import pytest

from slpd_plugin.checkpoints import load_checkpoint
from tests.utils import logged_scalars, run_train

pytestmark = pytest.mark.slow  # two training processes

IBOT = ('model.patch_loss.type=IBOTPatchLoss', 'model.backbone.num_registers=2',
        'model.patch_head.type=DINOHead', 'model.patch_head.hidden_dims=32',
        'model.patch_head.bottleneck_dims=16', 'model.patch_head.out_channels=64',
        'default_hooks.teacher_temp.patch_temp=0.05')


def test_two_process_training_with_the_patch_loss(tmp_path):
    proc = run_train(tmp_path, *IBOT, nproc=2)
    assert 'state consistent across ranks' in proc.stdout + proc.stderr
    steps = [s for s in logged_scalars(tmp_path) if 'loss' in s]
    assert len(steps) == 6  # 2 epochs x 3 iterations, logged every iteration
    assert all(math.isfinite(s['loss_ibot']) and s['loss_ibot'] > 0 for s in steps)
    assert steps[-1]['teacher_patch_temp'] == pytest.approx(0.05)
    assert steps[0]['teacher_patch_temp'] == pytest.approx(0.02)  # warm-up from 0.02
    state = load_checkpoint(tmp_path / 'epoch_2.pth')['state_dict']
    assert state['patch_loss.center.center'].shape == (1, 64)
    assert state['patch_loss.center.center'].abs().sum() > 0
    for encoder in ('student', 'teacher'):
        assert state[f'{encoder}.backbone.register_tokens'].shape[1] == 2
        assert f'{encoder}.backbone.mask_token' in state
        assert f'{encoder}.patch_head.projection.last_layer.weight_v' in state
