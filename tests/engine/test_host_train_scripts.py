"""The configs run unchanged under the host frameworks' generic train scripts.

mmpretrain's ``tools/train.py`` (its wheel ships it as ``mmpretrain/.mim/tools/train.py``)
builds the runner from mmengine's root ``RUNNERS`` registry when the config has a
``runner_type``, else with ``Runner.from_cfg``, as mmengine's own examples do. Both
happen before any default scope exists, so ``runner_type`` must carry its scope
(``slpd_plugin.SLPDRunner``). Each run here is a fresh interpreter, as on the command
line: in this one, earlier tests have already set a default scope.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import torch

from slpd_plugin.engine.hooks.weights_only_checkpoint_hook import FORMAT, FORMAT_KEY
from tests.utils import ROOT, logged_scalars
from tests.warm import python_exe

SLPD_CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'
SHIPPED_CONFIGS = sorted((ROOT / 'configs').glob('*.py'))

RESOLVE_RUNNERS = '''
import sys
from mmengine.config import Config
from mmengine.registry import RUNNERS, DefaultScope
from slpd_plugin.engine.config_check import config_problems
from slpd_plugin.engine.runner import SLPDRunner
from slpd_plugin.registry import RUNNERS as SLPD_RUNNERS
for path in sys.argv[1:]:
    cfg = Config.fromfile(path)
    assert DefaultScope.get_current_instance() is None
    for registry in (RUNNERS, SLPD_RUNNERS):  # host scripts, and our tools/train.py
        assert registry.get(cfg.runner_type) is SLPDRunner, (path, registry.scope)
    assert not config_problems(cfg), (path, config_problems(cfg))
print('resolved', len(sys.argv) - 1)
'''

PLAIN_RUNNER = '''
import sys
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile(sys.argv[1])
cfg.work_dir = sys.argv[2]
cfg.merge_from_dict(dict(option.split('=', 1) for option in sys.argv[3:]))
Runner.from_cfg(cfg).train()
'''


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    proc = subprocess.run([python_exe(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f'{args[:2]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}'
    return proc


def mmpretrain_train_script() -> Path:
    spec = importlib.util.find_spec('mmpretrain')
    if spec is None:
        pytest.skip('mmpretrain is not installed (pip install -e ".[mmpretrain]")')
    script = Path(spec.submodule_search_locations[0]) / '.mim' / 'tools' / 'train.py'
    if not script.is_file():
        pytest.skip(f'this mmpretrain install does not ship tools/train.py ({script})')
    return script


def prototype_rows(work: Path) -> list[dict]:
    rows = [r for r in logged_scalars(work) if 'loss' in r]
    assert rows, f'no training iteration logged in {work}'
    return [r for r in rows if 'loss_intra' in r and 'loss_inter' in r]


def test_every_config_names_a_runner_that_resolves_without_a_default_scope(tmp_path):
    proc = run_python(['-c', RESOLVE_RUNNERS, *map(str, SHIPPED_CONFIGS)], cwd=tmp_path)
    assert f'resolved {len(SHIPPED_CONFIGS)}' in proc.stdout


@pytest.mark.slow
def test_mmpretrain_train_script_trains_slpd_with_prototypes(tmp_path):
    script = mmpretrain_train_script()
    work = tmp_path / 'work'
    run_python([str(script), str(SLPD_CONFIG), '--work-dir', str(work), '--cfg-options',
                f'train_dataloader.dataset.store={tmp_path / "store"}'], cwd=tmp_path)
    assert prototype_rows(work)  # the prototype losses ran after the refresh
    ckpt = torch.load(work / 'epoch_2.pth', map_location='cpu', weights_only=True)
    assert ckpt[FORMAT_KEY] == FORMAT  # written by SLPDRunner, not mmengine's Runner


@pytest.mark.slow
def test_mmengine_runner_from_cfg_trains_slpd_with_prototypes(tmp_path):
    work = tmp_path / 'work'
    run_python(['-c', PLAIN_RUNNER, str(SLPD_CONFIG), str(work),
                f'train_dataloader.dataset.store={tmp_path / "store"}'], cwd=tmp_path)
    assert prototype_rows(work)
    assert (work / 'epoch_2.pth').is_file()
