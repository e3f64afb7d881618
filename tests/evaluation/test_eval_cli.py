"""tools/eval_slides.py end to end (one subprocess run, the rest in-process)."""
from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.utils import load_tool
from tests.warm import python_exe

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / 'tools' / 'eval_slides.py'


def _dataset(make_dataset, splitter, drop: int = 0, num_classes: int = 2):
    rng = np.random.default_rng(0)
    names = ['IDC', 'ILC', 'MDLC'][:num_classes]
    regions, labels = {}, {}
    for i in range(60):
        y = i % num_classes
        sid = f'TCGA-XX-{i:04d}-01Z-00-DX1'
        regions[sid] = rng.normal(size=(int(rng.integers(2, 9)), 6)) + 1.5 * y
        labels[sid] = names[y]
    ids = sorted(regions)
    splits = splitter(ids, 3, seed=0)
    for sid in ids[:drop]:  # embeddings never written for these
        del regions[sid]
    return make_dataset(regions, labels, splits)


def _args(paths, out: Path) -> list[str]:
    return ['--embeddings', str(paths['embeddings']), '--csv', str(paths['csv']),
            '--splits', str(paths['splits']), '--out', str(out), '--label-col', 'label']


def test_cli_subprocess_writes_outputs(make_dataset, splitter, tmp_path: Path) -> None:
    paths = _dataset(make_dataset, splitter, drop=3)
    out = tmp_path / 'out'
    proc = subprocess.run([python_exe(), str(SCRIPT), 'knn', *_args(paths, out),
                           '--label-map', 'IDC:0,ILC:1'],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'mean ± std' in proc.stdout
    assert '3 slide(s) in the splits have no embeddings' in proc.stderr

    with (out / 'summary.csv').open(newline='') as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ['folds', 'test_auc', 'val_auc', 'test_acc', 'val_acc']  # no index
    assert [r[0] for r in rows[1:]] == ['0', '1', '2']

    results = json.loads((out / 'results.json').read_text())
    assert results['protocol'] == 'knn'
    assert results['missing_embeddings']['count'] == 3
    assert len(results['missing_embeddings']['first']) == 3
    assert results['num_slides_evaluated'] == 57
    aucs = [float(r[1]) for r in rows[1:]]
    assert [f['test_auc'] for f in results['folds']] == pytest.approx(aucs)
    assert results['summary']['test_auc']['mean'] == pytest.approx(np.mean(aucs))
    assert results['summary']['test_auc']['std'] == pytest.approx(np.std(aucs, ddof=1))

    pngs = sorted(p.name for p in out.glob('*.png'))
    assert pngs == ['roc_fold0.png', 'roc_fold1.png', 'roc_fold2.png', 'roc_mean.png']
    assert all((out / p).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' for p in pngs)
    assert (out / 'predictions.csv').read_text().startswith('fold,slide_id,label,prob_0')


def test_cli_linear_three_classes_in_process(make_dataset, splitter, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    cli = load_tool('eval_slides')
    paths = _dataset(make_dataset, splitter, num_classes=3)
    out = tmp_path / 'lin'
    code = cli.main(['linear', *_args(paths, out), '--fraction', '0.5', '--C', '1',
                     '--roc', 'mean'])
    assert code == 0
    results = json.loads((out / 'results.json').read_text())
    assert results['class_names'] == ['IDC', 'ILC', 'MDLC']  # sorted values
    assert results['fraction']['spec'] == '0.5'
    assert [f['n_train'] for f in results['folds']] == [18, 18, 18]  # 0.5 * 36
    assert all(f['C'] == 1.0 for f in results['folds'])
    assert sorted(p.name for p in out.glob('*.png')) == ['roc_mean.png']
    assert 'linear' in capsys.readouterr().out


@pytest.mark.parametrize('change, message, code', [
    ({'--embeddings': '/no/such/dir'}, '--embeddings: not a folder', 2),
    ({'--splits': '/no/such/dir'}, '--splits: not a folder', 2),
    ({'--fraction': '2'}, 'fraction must be', 2),
    ({'--label-map': 'X:0,Y:1'}, 'no row of labels.csv has a value of the label map', 1),
])
def test_cli_errors_one_line(make_dataset, splitter, tmp_path: Path,
                             capsys: pytest.CaptureFixture, change, message, code) -> None:
    cli = load_tool('eval_slides')
    paths = _dataset(make_dataset, splitter)
    args = _args(paths, tmp_path / 'o')
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert cli.main(['knn', *args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / 'o').exists()  # nothing written before the checks pass


def test_cli_no_overlap(make_dataset, splitter, tmp_path: Path,
                        capsys: pytest.CaptureFixture) -> None:
    cli = load_tool('eval_slides')
    paths = _dataset(make_dataset, splitter)
    for p in paths['embeddings'].glob('*.pt'):
        p.rename(p.with_name('other-' + p.name))
    assert cli.main(['knn', *_args(paths, tmp_path / 'o')]) == 1
    assert 'no overlap between the 60 embeddings' in capsys.readouterr().err


def test_cli_mil_in_process(make_dataset, splitter, tmp_path: Path,
                            capsys: pytest.CaptureFixture) -> None:
    cli = load_tool('eval_slides')
    paths = _dataset(make_dataset, splitter)
    out = tmp_path / 'mil'
    assert cli.main(['mil', *_args(paths, out), '--epochs', '2', '--roc', 'none']) == 0
    results = json.loads((out / 'results.json').read_text())
    assert results['protocol'] == 'mil'
    assert all(f['best_epoch'] in (1, 2) for f in results['folds'])
    assert not list(out.glob('*.png'))
    assert cli.main(['mil', *_args(paths, out), '--epochs', '0']) == 2
    assert '--epochs must be >= 1' in capsys.readouterr().err
