"""tools/gpu_check.sh: --prepare pins and sizes what travels to the GPU machine, and the
CPU dry run goes through the GPU run's plumbing (offline install into a target folder,
a deadline, one row per step appended as it ends, only two files under $OUT)."""
import json
import os
import subprocess
import time
import zipfile

import pytest

from benchmarks.gpu_check.driver import out_problems, run_group
from benchmarks.gpu_check.plan import STEPS
from benchmarks.gpu_check.prepare import (
    download_command,
    missing_pins,
    read_pins,
    travelling_bytes,
    unpinned_wheels,
)
from tests.utils import ROOT
from tests.warm import python_exe

SCRIPT = ROOT / 'tools' / 'gpu_check.sh'
DRY_STEPS = ['imports', 'train_alibi_bf16', 'bf16_vs_fp32', 'refresh_faiss']


def gpu_check(*args, timeout=150):
    env = dict(os.environ, PYTHON=python_exe())
    return subprocess.run(['bash', str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def rows(out):
    return [json.loads(line) for line in (out / 'results.jsonl').read_text().splitlines()]


def write_wheel(folder, name='gpucheckprobe', version='0.1'):
    """A minimal pure-Python wheel (PEP 427 layout) holding one module."""
    info = f'{name}-{version}.dist-info'
    path = folder / f'{name}-{version}-py3-none-any.whl'
    files = {f'{name}.py': 'VALUE = 7\n',
             f'{info}/METADATA': f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n',
             f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n'
                              'Tag: py3-none-any\n'}
    files[f'{info}/RECORD'] = ''.join(f'{f},,\n' for f in files) + f'{info}/RECORD,,\n'
    with zipfile.ZipFile(path, 'w') as z:
        for f, text in files.items():
            z.writestr(f, text)
    return path


def test_pins_are_one_version_each_and_the_download_targets_the_gpu_python(tmp_path):
    pins = read_pins()
    names = [p.split('==')[0] for p in pins]
    assert {'mmengine', 'lightly', 'redis', 'hiredis', 'faiss-cpu', 'yapf'} <= set(names)
    assert 'torch' not in names and 'faiss-gpu' not in names  # the image's torch stays
    cmd = download_command(pins, tmp_path)
    assert cmd[cmd.index('--python-version') + 1] == '3.12' and '--no-deps' in cmd
    bad = tmp_path / 'pins.txt'
    bad.write_text('mmengine==0.10.7\nmmengine==0.10.6\n')
    with pytest.raises(ValueError, match='pinned twice'):
        read_pins(bad)


def test_wheel_folder_bookkeeping(tmp_path):
    write_wheel(tmp_path, 'addict', '2.4.0')
    write_wheel(tmp_path, 'addict', '2.3.0')
    pins = ['addict==2.4.0', 'termcolor==3.3.0']
    assert missing_pins(pins, tmp_path) == ['termcolor==3.3.0']
    assert [w.name for w in unpinned_wheels(pins, tmp_path)] == \
        ['addict-2.3.0-py3-none-any.whl']


def test_travelling_size_counts_untracked_and_carried_files_not_ignored_ones(tmp_path):
    repo = tmp_path / 'repo'
    repo.mkdir()
    subprocess.run(['git', 'init', '-q'], cwd=repo, check=True)
    (repo / '.gitignore').write_text('.whl/\nbig/\n')
    (repo / 'a.txt').write_bytes(b'x' * 1000)
    for folder, size in (('.whl', 5000), ('big', 70000)):
        (repo / folder).mkdir()
        (repo / folder / 'f').write_bytes(b'x' * size)
    gitignore = len((repo / '.gitignore').read_bytes())
    assert travelling_bytes(repo) == 1000 + 5000 + gitignore
    assert travelling_bytes(repo, carry=()) == 1000 + gitignore


def test_prepare_list_prints_the_call_without_downloading():
    proc = gpu_check('--prepare', '--list', timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'command:   tools/gpu_check.sh --run' in proc.stdout
    assert 'carry:     [".whl"]' in proc.stdout and 'timeout_s: 560' in proc.stdout
    assert 'MiB of 64 MiB' in proc.stdout and 'pip download --no-deps' in proc.stdout


def test_out_contract_is_checked(tmp_path):
    for i in range(9):
        (tmp_path / f'f{i}').write_text('x')
    (tmp_path / 'a' / 'b' / 'c').mkdir(parents=True)
    (tmp_path / 'a' / 'b' / 'c' / 'deep').write_text('x')
    (tmp_path / 'bad name').write_text('x')
    problems = out_problems(tmp_path)
    assert any('11 files' in p for p in problems)
    assert any(p.startswith('a/b/c/deep: more than 2') for p in problems)
    assert any(p.startswith('bad name: name') for p in problems)


def test_a_step_past_its_limit_is_killed_with_its_children(tmp_path):
    marker = tmp_path / 'alive'
    start = time.monotonic()
    with open(tmp_path / 'log', 'w') as log:
        rc = run_group(['bash', '-c', f'(sleep 3; touch {marker}) & sleep 30'], 1.0,
                       dict(os.environ), log)
    assert rc is None and time.monotonic() - start < 10
    time.sleep(3.5)
    assert not marker.exists()  # the background child died with its group


def test_deadline_skips_what_it_cannot_fit_and_still_writes_a_row_per_step(tmp_path):
    out = tmp_path / 'out'
    proc = gpu_check('--dry-run', '--out', str(out), '--wheels', str(tmp_path / 'none'),
                     '--deadline', '2', timeout=60)
    got = rows(out)
    assert [r['step'] for r in got] == ['install'] + [s.name for s in STEPS]
    assert got[0]['status'] == 'skipped' and '--prepare' in got[0]['detail']
    assert all(r['status'] == 'skipped' and 'deadline' in r['detail'] for r in got[1:])
    assert proc.returncode == 0, proc.stdout  # skipped is not failed
    assert sorted(p.name for p in out.iterdir()) == ['gpu_check.log', 'results.jsonl']


@pytest.mark.slow
def test_dry_run_installs_offline_runs_steps_and_keeps_the_out_contract(tmp_path):
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    write_wheel(wheels)
    out = tmp_path / 'out'
    proc = gpu_check('--dry-run', '--out', str(out), '--wheels', str(wheels),
                     '--steps', *DRY_STEPS)
    assert proc.returncode == 0, proc.stdout[-3000:]
    got = rows(out)
    assert [r['step'] for r in got] == ['install'] + DRY_STEPS
    assert all(r['status'] == 'ok' for r in got), got
    assert got[0]['wheels'] == ['gpucheckprobe-0.1-py3-none-any.whl'] and got[0]['on_path']
    assert got[1]['origins']['gpucheckprobe'] == 'wheel'  # imported from the target folder
    train = got[2]
    assert train['backbone'] == 'alibi' and train['attention'] in ('flash', 'math',
                                                                   'mem_efficient')
    assert train['regions_per_s'] > 0 and train['gflop_per_region'] > 0
    assert got[4]['faiss']['num_gpus'] == 0  # no GPU here: nothing fell back
    assert out_problems(out) == []
    assert sorted(p.name for p in out.iterdir()) == ['gpu_check.log', 'results.jsonl']
    log = (out / 'gpu_check.log').read_text()
    assert '-- train_alibi_bf16' in log and '== refresh_faiss: ok' in log
