"""The GPU check's driver: offline install, one subprocess per step under an overall
deadline, one result row per step appended to ``$OUT/results.jsonl`` as it ends.

Only two files ever go under ``$OUT``: ``results.jsonl`` and ``gpu_check.log`` (the
driver's and every step's output); work dirs, stores and checkpoints live in a fresh
``/tmp/gpu_check_*`` folder. A step runs in its own process group with the time left
to it (its budget, cut to what the deadline leaves); on timeout the whole group is
killed and the row says ``timeout``. A row's ``status`` is ``ok`` (its threshold met),
``fail`` (run, threshold missed), ``fallback`` (ran, but on a slower path: faiss on the
CPU, the math attention kernel), ``error`` (crashed), ``timeout`` or ``skipped``.

Example:
    >>> run_check('dry', Path('/tmp/out'), ROOT / '.whl')   # 0 when no step failed
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .plan import DEADLINE_S, STEPS, Step
from .prepare import PLATFORMS, PYTHON_VERSION, ROOT

RESULTS, LOG = 'results.jsonl', 'gpu_check.log'
OUT_MAX_FILES, OUT_MAX_DEPTH, OUT_MAX_BYTES = 8, 2, 16 * 2**20
BAD_STATUSES = ('fail', 'error', 'timeout')
_NAME = re.compile(r'[A-Za-z0-9._-]+')


def out_problems(out: Path) -> list[str]:
    """What in ``out`` would not come back from the GPU machine: more than 8 files, a file
    over 16 MiB, more than 2 folders deep, a name with other than letters, digits, '.',
    '_' and '-', or anything that is not a plain file or folder."""
    problems, files = [], 0
    for path in sorted(out.rglob('*')):
        rel = path.relative_to(out)
        if not all(_NAME.fullmatch(part) for part in rel.parts):
            problems.append(f'{rel}: name not in [A-Za-z0-9._-]')
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            problems.append(f'{rel}: not a plain file or folder')
        elif path.is_file():
            files += 1
            if len(rel.parts) - 1 > OUT_MAX_DEPTH:
                problems.append(f'{rel}: more than {OUT_MAX_DEPTH} folders deep')
            if path.stat().st_size > OUT_MAX_BYTES:
                problems.append(f'{rel}: over {OUT_MAX_BYTES // 2**20} MiB')
    if files > OUT_MAX_FILES:
        problems.append(f'{files} files, at most {OUT_MAX_FILES} come back')
    return problems


class Recorder:
    """Appends rows to ``results.jsonl`` (flushed to disk at once) and lines to the log."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.results, self.log_path = out / RESULTS, out / LOG
        self.log = open(self.log_path, 'a', buffering=1)
        self.rows: list[dict] = []

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.log.write(line + '\n')

    def row(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.results, 'a') as f:
            f.write(json.dumps(row) + '\n')
            f.flush()
            os.fsync(f.fileno())
        detail = {k: v for k, v in row.items() if k not in ('step', 'status', 'seconds')}
        self.say(f"== {row['step']}: {row['status']} in {row.get('seconds', 0):.1f} s "
                 f"{json.dumps(detail)[:400]}")

    def tail(self, start: int, lines: int = 3) -> str:
        """The last lines the log got since byte ``start``."""
        with open(self.log_path, 'rb') as f:
            f.seek(start)
            text = f.read().decode(errors='replace').strip().splitlines()
        return ' | '.join(text[-lines:])[-600:]


def run_group(cmd: list[str], limit: float, env: dict, log) -> int | None:
    """Run ``cmd`` in its own process group, output into ``log``; its return code, or
    None after killing the whole group (DataLoader workers, pytest's children) at
    ``limit`` seconds."""
    log.flush()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        return proc.wait(timeout=max(limit, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def install_command(wheels: list[Path], site: Path, dry: bool) -> list[str]:
    """The offline install; on a dry run with another python, pip is told the GPU
    machine's python and platforms so that the same cp312 wheels install."""
    cmd = [sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps',
           '--no-compile', '--no-cache-dir', '--upgrade', '--target', str(site)]
    if dry and sys.version_info[:2] != tuple(map(int, PYTHON_VERSION.split('.'))):
        cmd += ['--only-binary=:all:', '--python-version', PYTHON_VERSION,
                '--implementation', 'cp', *[a for p in PLATFORMS for a in ('--platform', p)]]
    return cmd + [str(w) for w in wheels]


def usable_here(wheels: list[Path]) -> bool:
    """Whether this python can import the wheels: it is the GPU machine's (3.12), or
    every wheel is pure Python."""
    same = sys.version_info[:2] == tuple(map(int, PYTHON_VERSION.split('.')))
    return same or all(w.name.endswith('-py3-none-any.whl') for w in wheels)


def install(rec: Recorder, wheel_dir: Path, site: Path, mode: str, env: dict) -> bool:
    """Install every wheel of ``wheel_dir`` into ``site``; one row. True when the steps
    should import from ``site``: installed, and built for this python."""
    wheels = sorted(wheel_dir.glob('*.whl'))
    start = time.monotonic()
    if not wheels:
        rec.row(dict(step='install', status='skipped' if mode == 'dry' else 'fail',
                     seconds=0.0, detail=f'no wheels in {wheel_dir}: run '
                     'tools/gpu_check.sh --prepare first; the steps use the packages '
                     'this python already has'))
        return False
    at = rec.log_path.stat().st_size
    rc = run_group(install_command(wheels, site, mode == 'dry'), 120, env, rec.log)
    ok, on_path = rc == 0, rc == 0 and usable_here(wheels)
    rec.row(dict(step='install', status='ok' if ok else 'error', seconds=time.monotonic() - start,
                 threshold='pip install --no-index --no-deps --target exits 0',
                 wheels=[w.name for w in wheels], target=str(site), on_path=on_path,
                 **({} if on_path or not ok else dict(
                     detail=f'installed, but built for python {PYTHON_VERSION}: the steps '
                            f'import this python\'s own packages')),
                 **({} if ok else dict(rc=rc, detail=rec.tail(at)))))
    return on_path


def run_step(rec: Recorder, step: Step, mode: str, work: Path, env: dict,
             left: float) -> None:
    """One step in its own process, cut at its budget or the deadline; one row."""
    budget = step.budget(mode)
    limit = min(budget, left)
    if limit < step.min_s:
        rec.row(dict(step=step.name, status='skipped', seconds=0.0, budget_s=budget,
                     detail=f'deadline: {left:.0f} s left, the step needs {step.min_s:.0f}'))
        return
    row_file = work / f'{step.name}.row.json'
    cmd = [sys.executable, '-m', 'benchmarks.gpu_check.steps', step.name, '--mode', mode,
           '--work', str(work), '--row', str(row_file)]
    at = rec.log_path.stat().st_size
    rec.log.write(f'-- {step.name} (limit {limit:.0f} s): {step.what}\n')
    start = time.monotonic()
    rc = run_group(cmd, limit, env, rec.log)
    row = dict(step=step.name, seconds=time.monotonic() - start, budget_s=budget)
    if rc is None:
        row.update(status='timeout', detail=f'killed at {limit:.0f} s: {rec.tail(at)}')
    elif rc != 0 or not row_file.exists():
        row.update(status='error', rc=rc, detail=rec.tail(at))
    else:
        row.update(json.loads(row_file.read_text()))
    rec.row(row)


def run_check(mode: str, out: Path, wheel_dir: Path, deadline_s: float | None = None,
              only: list[str] | None = None) -> int:
    """The whole check (``mode`` 'gpu' or 'dry'), or the steps named in ``only`` (in
    the plan's order); 0 when no row failed, errored or timed out and ``out`` holds only
    what comes back."""
    unknown = set(only or ()) - {s.name for s in STEPS}
    if unknown:
        raise SystemExit(f'gpu_check: unknown step(s) {sorted(unknown)}; steps: '
                         f'{", ".join(s.name for s in STEPS)}')
    deadline_s = DEADLINE_S[mode] if deadline_s is None else deadline_s
    start = time.monotonic()
    rec = Recorder(out)
    work = Path(tempfile.mkdtemp(prefix='gpu_check_', dir='/tmp'))
    rec.say(f'gpu_check {mode}: deadline {deadline_s:.0f} s, results {rec.results}, '
            f'work dir {work}, python {sys.version.split()[0]}')
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONDONTWRITEBYTECODE='1')
    site = work / 'site'
    paths = [str(ROOT)] + [p for p in env.get('PYTHONPATH', '').split(':') if p]
    if install(rec, wheel_dir, site, mode, env):
        paths.append(str(site))  # after the image's own packages: a wheel adds, never shadows
    env['PYTHONPATH'] = ':'.join(paths)
    blocked = False  # on the GPU, nothing runs without its packages and a visible GPU
    for step in (s for s in STEPS if only is None or s.name in only):
        if blocked:
            rec.row(dict(step=step.name, status='skipped', seconds=0.0,
                         detail='the imports step failed: see its row'))
            continue
        run_step(rec, step, mode, work, env, deadline_s - (time.monotonic() - start))
        blocked = mode == 'gpu' and step.name == 'imports' and rec.rows[-1]['status'] != 'ok'
    problems = out_problems(out)
    for problem in problems:
        rec.say(f'gpu_check: $OUT contract broken: {problem}')
    bad = [r['step'] for r in rec.rows if r['status'] in BAD_STATUSES]
    rec.say(f'gpu_check {mode}: {len(rec.rows)} rows in {time.monotonic() - start:.0f} s; '
            + (f'not ok: {", ".join(bad)}' if bad else 'no step failed'))
    rec.log.close()
    shutil.rmtree(work, ignore_errors=True)
    return 1 if bad or problems else 0
