"""tools/gpu_check.sh: its plan runs anywhere (--dry-run), and without a GPU it stops
with a clear message instead of failing half-way."""
import shutil
import subprocess

import pytest

from tests.utils import ROOT

STEPS = ['environment', 'cuda_tests', 'train_step', 'demo_bf16', 'demo_fp16',
         'refresh_torch', 'refresh_faiss', 'nccl_2gpu']


def gpu_check(*args, tmp_path):
    return subprocess.run(['bash', str(ROOT / 'tools' / 'gpu_check.sh'), '--no-install',
                           '--out', str(tmp_path / 'out'), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_whole_plan_as_one_table(tmp_path):
    proc = gpu_check('--dry-run', tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(' | ') for line in proc.stdout.splitlines() if ' | ' in line]
    assert [r[0].strip() for r in rows[1:]] == STEPS
    assert all(r[1].strip() == 'planned' for r in rows[1:])
    plan = proc.stdout
    assert '--device cuda' in plan and '--amp fp16' in plan
    assert 'default_hooks.prototype.backend=faiss' in plan and 'dist_train.sh' in plan


@pytest.mark.skipif(shutil.which('nvidia-smi') is not None, reason='this host has a GPU')
def test_without_a_gpu_it_says_so_and_runs_nothing(tmp_path):
    proc = gpu_check(tmp_path=tmp_path)
    assert proc.returncode == 3
    assert 'no NVIDIA GPU here' in proc.stderr and '--dry-run' in proc.stderr
    assert not (tmp_path / 'out' / 'results.tsv').read_text()
