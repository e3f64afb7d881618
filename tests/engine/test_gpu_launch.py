"""GPU launch choices, checked as far as a CPU allows: TF32 flags, the process's GPU,
the distributed backend of the configs."""
import pytest
import torch
from mmengine.config import Config

from slpd_plugin.engine.launch import check_local_rank, prepare_config, set_tf32
from tests.utils import ROOT, TINY_CONFIG

MATMUL, CONV = torch.backends.cuda.matmul, torch.backends.cudnn.conv


@pytest.fixture
def tf32_flags():
    saved = MATMUL.fp32_precision, CONV.fp32_precision
    yield
    MATMUL.fp32_precision, CONV.fp32_precision = saved


def test_set_tf32_switches_matmul_and_cudnn_through_fp32_precision(tf32_flags):
    for enabled in (True, False, True):
        set_tf32(enabled)
        expected = 'tf32' if enabled else 'ieee'
        assert MATMUL.fp32_precision == CONV.fp32_precision == expected


def test_tf32_is_on_by_default_and_must_be_a_bool(tmp_path):
    assert Config.fromfile(str(ROOT / 'configs' / 'slpd_lung.py')).tf32 is True
    cfg = prepare_config(str(TINY_CONFIG), work_dir=str(tmp_path),
                         cfg_options={'tf32': False})  # a known key for the config check
    assert cfg.tf32 is False
    with pytest.raises(ValueError, match="tf32 must be True or False, got 'yes'"):
        prepare_config(str(TINY_CONFIG), work_dir=str(tmp_path), cfg_options={'tf32': 'yes'})


@pytest.mark.cuda
@pytest.mark.parametrize('tf32', [False, True])
def test_prepare_config_applies_tf32_on_cuda(tf32, tf32_flags, tmp_path):
    prepare_config(str(TINY_CONFIG), work_dir=str(tmp_path), cfg_options={'tf32': tf32})
    assert MATMUL.fp32_precision == ('tf32' if tf32 else 'ieee')


def test_local_rank_beyond_the_visible_gpus_is_a_clear_error(monkeypatch):
    check_local_rank(0, 1)
    check_local_rank(3, 4)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0')
    with pytest.raises(RuntimeError, match=r'LOCAL_RANK=1 but this node has 1 visible CUDA '
                                           r'device\(s\) \(CUDA_VISIBLE_DEVICES=0\).*'
                                           r'dist_train.sh CONFIG 1'):
        check_local_rank(1, 1)
    with pytest.raises(RuntimeError, match='LOCAL_RANK=0 but this node has 0'):
        check_local_rank(0, 0)


@pytest.mark.parametrize('config', sorted((ROOT / 'configs').glob('*.py')),
                         ids=lambda p: p.name)
def test_configs_leave_the_backend_to_the_launch(config):
    """NCCL on GPUs (the base runtime's choice); tools/train.py switches to gloo when
    CUDA is unavailable, so no config forces gloo."""
    assert Config.fromfile(str(config)).env_cfg.dist_cfg.backend == 'nccl'


def test_tests_without_the_cuda_marker_run_on_the_cpu():
    import os

    from mmengine.device import get_device
    assert os.environ['CUDA_VISIBLE_DEVICES'] == '' and get_device() == 'cpu'
