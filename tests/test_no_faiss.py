"""Without faiss the package imports and trains with the torch k-means backend, and a
config asking for the faiss backend fails before training with one line saying what to
install.

The faiss-free environment is real, not a stub: a folder of symlinks to every entry of
this venv's site-packages except faiss (``faiss``, ``faiss_cpu*``/``faiss_gpu*``), used
as the only third-party path of an interpreter started with ``-S`` (no site-packages,
no ``.pth`` files), with this checkout first on ``PYTHONPATH``. ``import faiss`` fails
there exactly as in a venv where it was never installed.
"""
from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'


@pytest.fixture(scope='module')
def no_faiss_env(tmp_path_factory) -> dict[str, str]:
    """Environment of a ``python -S`` whose only site-packages lacks faiss."""
    packages = tmp_path_factory.mktemp('site-packages-without-faiss')
    for sp in site.getsitepackages():
        for entry in Path(sp).iterdir():
            name = entry.name.lower()
            if name.startswith(('faiss', '__editable__', 'slpd_plugin')) or name.endswith('.pth'):
                continue
            if not (packages / entry.name).exists():
                (packages / entry.name).symlink_to(entry)
    return dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{packages}', PYTHONNOUSERSITE='1',
                OMP_NUM_THREADS='1')


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-S', *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_package_imports_without_faiss(no_faiss_env):
    code = ('import importlib.util, sys, slpd_plugin, slpd_plugin.prototypes, '
            'slpd_plugin.engine; import slpd_plugin.prototypes.faiss_backend; '
            'print(importlib.util.find_spec("faiss"), "faiss" in sys.modules, '
            'slpd_plugin.__file__)')
    proc = run(no_faiss_env, '-c', code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[:2] == ['None', 'False']
    assert proc.stdout.split()[2].startswith(str(ROOT))  # this checkout, not an install


def test_trains_with_the_torch_backend_without_faiss(no_faiss_env, tmp_path):
    proc = run(no_faiss_env, 'tools/train.py', str(CONFIG), '--work-dir', str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'k-means backend torch' in proc.stdout + proc.stderr
    assert (tmp_path / 'epoch_2.pth').is_file()  # past the first prototype refresh


def test_faiss_backend_without_faiss_fails_before_training(no_faiss_env, tmp_path):
    proc = run(no_faiss_env, 'tools/train.py', str(CONFIG), '--work-dir', str(tmp_path),
               '--cfg-options', 'default_hooks.prototype.backend=faiss')
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if 'faiss' in line]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "default_hooks.prototype.backend='faiss': faiss is not installed: " \
           "pip install -e '.[cpu]'" in lines[0]
    assert 'Traceback' not in proc.stderr
    assert not list(tmp_path.rglob('*.pth'))  # nothing trained
