"""Helpers shared by tests that run the real training tool."""
from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / 'tests' / 'configs' / 'tiny_dino4k.py'


def load_tool(name: str) -> ModuleType:
    """The module behind ``tools/<name>.py`` (:mod:`slpd_plugin.cli`), so that its
    ``main(argv)`` runs in-process."""
    return importlib.import_module(f'slpd_plugin.cli.{name}')


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_train(work_dir: Path, *options: str, config: Path = TINY_CONFIG, nproc: int = 1,
              extra_args: tuple[str, ...] = (), timeout: int = 300,
              check: bool = True, cuda: bool = False) -> subprocess.CompletedProcess:
    """Run ``tools/train.py`` (or torchrun with ``nproc`` processes) for real: on the CPU
    with gloo, or with ``cuda=True`` on the host's GPUs (one per process, NCCL)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    if not cuda:
        env['CUDA_VISIBLE_DEVICES'] = ''  # even on a GPU host: no set_device, gloo
    if nproc == 1:
        cmd = [sys.executable, str(ROOT / 'tools' / 'train.py')]
    else:
        cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
               f'--master_port={free_port()}', str(ROOT / 'tools' / 'train.py')]
        extra_args = ('--launcher', 'pytorch', *extra_args)
    cmd += [str(config), '--work-dir', str(work_dir), *extra_args]
    if options:
        cmd += ['--cfg-options', *options]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'training failed ({proc.returncode}):\n{proc.stdout[-3000:]}'
                             f'\n{proc.stderr[-5000:]}')
    return proc


def logged_scalars(work_dir: Path) -> list[dict]:
    """Every line of the run's ``vis_data/scalars.json`` (mmengine's LocalVisBackend)."""
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
