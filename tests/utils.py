"""Helpers shared by tests that run the real training tool."""
from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import os
import socket
import subprocess
from pathlib import Path
from types import ModuleType

from tests.warm import python_exe

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
        cmd = [python_exe(), str(ROOT / 'tools' / 'train.py')]
    else:
        cmd = [python_exe(), '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
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


def shared_run(tmp_path_factory, *options: str, config: Path = TINY_CONFIG) -> Path:
    """A real :func:`run_train` run of ``config`` with ``options`` on a store generated at
    ``<root>/store``, trained once per test session and shared by every test and xdist
    worker that asks for the same config and options (a file lock makes the others wait
    for the first). Returns ``<root>``, holding ``work/`` and ``store/``; tests must only
    read it (copy a checkpoint out to resume from it).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):  # .../pytest-N/popen-gwK: share pytest-N
        base = base.parent
    key = hashlib.sha256('\0'.join([config.read_text(), *options]).encode()).hexdigest()
    root = base / f'shared-run-{config.stem}-{key[:12]}'
    with open(f'{root}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / 'done').is_file():
            run_train(root / 'work', f'train_dataloader.dataset.store={root / "store"}',
                      *options, config=config)
            (root / 'done').touch()
    return root
