"""Two processes on two GPUs with NCCL: weights, centres and the prototype bank stay
identical on both ranks (skipped on hosts with fewer than 2 GPUs)."""
import json

import pytest

from tests.utils import ROOT, run_train


@pytest.mark.cuda(2)
@pytest.mark.slow
@pytest.mark.parametrize('amp', [None, 'bf16'])
def test_two_gpu_nccl_run_keeps_weights_and_bank_identical(amp, tmp_path):
    work = tmp_path / 'nccl'
    proc = run_train(work, f'train_dataloader.dataset.store={tmp_path / "store"}', nproc=2,
                     config=ROOT / 'tests' / 'configs' / 'tiny_slpd.py', cuda=True,
                     extra_args=('--amp', amp) if amp else ())
    log = proc.stdout + proc.stderr
    assert 'state consistent across ranks' in log
    assert "backend='nccl'" in log  # the config the runner logs
    ranks = [json.loads((work / 'consistency' / f'rank{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0]['fingerprints'] == ranks[1]['fingerprints']
    keys = ranks[0]['fingerprints']
    assert any(k.startswith('bank.') for k in keys) and 'loss_module.center' in keys
