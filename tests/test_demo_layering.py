"""Layering around the demo subpackage and the label tables:
visualization does not import evaluation, and the production path imports no demo code
beyond the registration of the demo dataset."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _modules_after_import(module: str) -> set[str]:
    """The slpd_plugin modules loaded by importing ``module`` in a fresh interpreter."""
    code = (f'import json, sys, {module}; '
            'print(json.dumps(sorted(m for m in sys.modules if m.startswith("slpd_plugin"))))')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get('PYTHONPATH')])]))
    done = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_visualization_does_not_import_evaluation():
    assert not {m for m in _modules_after_import('slpd_plugin.visualization')
                if m.startswith('slpd_plugin.evaluation')}


def test_production_path_imports_only_the_demo_dataset():
    loaded = _modules_after_import('slpd_plugin.evaluation, slpd_plugin.visualization')
    demo = {m for m in loaded if m.startswith('slpd_plugin.demo')}
    # the package registers SyntheticRegionDataset (and so loads its generator); nothing
    # loads the demo's benchmark, plots, references or report
    assert demo <= {'slpd_plugin.demo', 'slpd_plugin.demo.dataset', 'slpd_plugin.demo.synthetic'}
    assert 'slpd_plugin.demo.dataset' in loaded  # configs find the demo dataset by name
