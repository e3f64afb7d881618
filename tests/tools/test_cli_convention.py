"""Every tool reports errors the same way (slpd_plugin.utils.cli): one line
``<prog>: error: ...`` on stderr, exit status 1 for bad input, 2 for a bad argument."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

from slpd_plugin.datasets import StoreError
from slpd_plugin.utils.cli import ToolParser, UsageError, UserError, run_tool
from tests.utils import load_tool


def _not_a_store(tmp: Path) -> Path:
    """A folder that exists but holds no store (StoreError: incomplete, no manifest)."""
    (tmp / 'empty').mkdir()
    return tmp / 'empty'


def _no_bank(tmp: Path) -> Path:
    """A checkpoint without a prototype bank (and without a state_dict)."""
    torch.save(dict(meta={}), tmp / 'plain.pth')
    return tmp / 'plain.pth'


def _eval_inputs(tmp: Path) -> list[str]:
    """Real embeddings, labels and splits whose label values match no --label-map."""
    (tmp / 'emb').mkdir()
    (tmp / 'splits').mkdir()
    for s in ('a', 'b', 'c'):
        torch.save(torch.ones(2, 4), tmp / 'emb' / f'{s}.pt')
    (tmp / 'labels.csv').write_text('slide_id,oncotree_code\na,LUAD\nb,LUSC\nc,LUAD\n')
    (tmp / 'splits' / 'splits_0.csv').write_text(',train,val,test\n0,a,b,c\n')
    return ['knn', '--embeddings', str(tmp / 'emb'), '--csv', str(tmp / 'labels.csv'),
            '--splits', str(tmp / 'splits'), '--out', str(tmp / 'out'),
            '--label-map', 'X:0,Y:1']


def _tiny_labels(tmp: Path) -> Path:
    (tmp / 'labels.csv').write_text('case_id,slide_id,oncotree_code\n'
                                    'a,a1,X\nb,b1,X\nc,c1,Y\nd,d1,Y\n')
    return tmp / 'labels.csv'


def _bad_slide_file(tmp: Path) -> Path:
    (tmp / 'src').mkdir()
    torch.save(torch.zeros(2, 7, 8), tmp / 'src' / 'bad.pt')
    return tmp / 'src'


#: tool -> the arguments of a bad input it can only find while working (exit 1).
BAD_INPUT: dict[str, Callable[[Path], list[str]]] = {
    'eval_slides': _eval_inputs,
    'extract_embeddings': lambda t: [str(_no_bank(t)), str(t / 'plain.pth'), '--store',
                                     str(_not_a_store(t)), '--out', str(t / 'emb')],
    'export': lambda t: ['--store', str(_not_a_store(t)), '--out', str(t / 'o')],
    'export_checkpoint': lambda t: [str(_no_bank(t)), str(t / 'out.pth')],
    'ingest': lambda t: [str(_bad_slide_file(t)), '--store', str(t / 's'), '--no-progress'],
    'inspect_bank': lambda t: [str(_no_bank(t))],
    'inspect_store': lambda t: [str(_not_a_store(t))],
    'make_splits': lambda t: ['classification', str(_tiny_labels(t)), '--out', str(t / 's'),
                              '--folds', '5'],  # 2 cases per class: too few for 5 folds
    'make_synthetic': lambda t: ['trident', str(t / 'job'), '--store', str(_not_a_store(t))],
    'train': lambda t: [str(t / 'no_such_config.py')],
    'visualize': lambda t: ['graph', str(_no_bank(t)), '--out', str(t / 'g.png')],
}


@pytest.mark.parametrize('name', sorted(BAD_INPUT))
def test_bad_input__one_line_exit_1(name: str, tmp_path: Path, capsys) -> None:
    tool = load_tool(name)
    assert tool.main(BAD_INPUT[name](tmp_path)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if ': error: ' in line]
    assert len(errors) == 1 and errors[0].startswith(f'{name}.py: error: '), err
    assert not any(line.startswith('Traceback') for line in err), err


@pytest.mark.parametrize('name', sorted(BAD_INPUT))
def test_bad_argument__one_line_exit_2(name: str, capsys) -> None:
    assert load_tool(name).main(['--no-such-option']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(f'{name}.py: error: '), err


def test_run_tool__statuses_and_bugs(capsys) -> None:
    def fail(error: BaseException) -> Callable[[], None]:
        def work() -> None:
            raise error
        return work

    assert run_tool('t', lambda: 3) == 3 and run_tool('t', lambda: None) == 0
    assert run_tool('t', fail(UsageError('--x must be > 0\nmore'))) == 2
    assert capsys.readouterr().err == 't: error: --x must be > 0\n'
    for error in (StoreError('store s is incomplete'), UserError('u'), ValueError('v'),
                  FileNotFoundError('f')):
        assert run_tool('t', fail(error)) == 1
        assert capsys.readouterr().err == f't: error: {error}\n'
    assert run_tool('t', fail(KeyError('k')), errors=(KeyError,)) == 1
    assert capsys.readouterr().err == "t: error: 'k'\n"
    with pytest.raises(RuntimeError):  # a bug keeps its traceback
        run_tool('t', fail(RuntimeError('bug')))
    parser = ToolParser(prog='t')
    parser.add_argument('--n', type=int)
    assert run_tool('t', lambda: parser.parse_args(['--n', 'x']) and None) == 2
    assert capsys.readouterr().err.startswith("t: error: argument --n: invalid int value")
