"""Helpers of the reliability tests: tiny stores, ingest, a training process to watch."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from slpd_plugin.demo import make_synthetic_store
from tests.utils import ROOT, TINY_CONFIG, free_port
from tests.warm import python_exe

TINY_STORE = dict(num_slides=8, min_regions=4, max_regions=10, channels=32, num_phenotypes=4,
                  phenotypes_per_slide=(1, 2), progress=False)


def tiny_store(path: Path, **overrides) -> Path:
    """A synthetic memmap store the tiny test configs train on (C = 32)."""
    return make_synthetic_store(path, **dict(TINY_STORE, **overrides))


def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')


def ingest_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``tools/ingest.py ARGS --no-progress`` for real."""
    proc = subprocess.run([python_exe(), 'tools/ingest.py', *args, '--no-progress'],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f'ingest.py {args} failed:\n{proc.stdout}\n{proc.stderr}')
    return proc


class Training:
    """A ``tools/train.py`` process (or torchrun of ``nproc`` of them) running in the
    background, its stdout and stderr going to files in ``work_dir``'s parent."""

    def __init__(self, work_dir: Path, *options: str, config: Path = TINY_CONFIG,
                 nproc: int = 1) -> None:
        self.work_dir = work_dir
        self.out_path = work_dir.parent / f'{work_dir.name}.stdout'
        self.err_path = work_dir.parent / f'{work_dir.name}.stderr'
        launch = [python_exe(), str(ROOT / 'tools' / 'train.py')]
        extra: list[str] = []
        if nproc > 1:
            launch = [python_exe(), '-m', 'torch.distributed.run',
                      f'--nproc_per_node={nproc}', f'--master_port={free_port()}',
                      str(ROOT / 'tools' / 'train.py')]
            extra = ['--launcher', 'pytorch']
        cmd = [*launch, str(config), '--work-dir', str(work_dir), *extra, '--cfg-options',
               *options]
        with open(self.out_path, 'w') as out, open(self.err_path, 'w') as err:
            self.process = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=out,
                                            stderr=err, start_new_session=True)

    @property
    def output(self) -> str:
        """stdout and stderr so far."""
        return self.out_path.read_text() + self.err_path.read_text()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        """Poll ``condition`` every 0.1 s while the process runs."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f'training ended ({self.process.returncode}) before '
                                     f'{what}:\n{self.output[-4000:]}')
            if time.monotonic() > deadline:
                raise AssertionError(f'no {what} within {timeout} s:\n{self.output[-4000:]}')
            time.sleep(0.1)

    def finish(self, timeout: float = 300) -> int:
        """Wait for the process to exit; returns its exit code."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f'training still running after {timeout} s:\n'
                                 f'{self.output[-4000:]}') from None

    def stop(self) -> None:
        """Kill the process and everything it started (its own process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
