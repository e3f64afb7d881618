"""Resident memory of a training run, epoch by epoch (not a test).

Runs ``tools/train.py CONFIG`` (default: the CPU demo) and samples, every ``--interval``
seconds, ``VmRSS`` of the main process and of all its descendants (DataLoader workers)
from ``/proc``. The epoch of each sample is taken from the run's log lines
(``Epoch(train) [k]``). Prints the peak per epoch and checks that memory stays bounded:
the last epoch's peak must be at most ``first * 1.1 + 50 MB`` (main process), else the
exit code is 1. Linux only.

Its ``/proc`` readers and :func:`measure` (wall time and peak RSS of one call, from
``VmHWM`` reset through ``/proc/self/clear_refs``) serve the other benchmarks too.

    python benchmarks/memory.py                                  # demo, 6 epochs
    python benchmarks/memory.py --config tests/configs/tiny_dino4k.py --epochs 10
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
EPOCH_RE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]')
TOLERANCE = (1.1, 50.0)  # last-epoch peak <= first-epoch peak * 1.1 + 50 MB


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default='configs/demo_dino4k.py', help='training config')
    p.add_argument('--epochs', type=int, default=6, help='epochs to train (default 6)')
    p.add_argument('--work-dir', type=Path, default=Path('work_dirs/bench/memory'),
                   help='work dir of the run; its store is generated there')
    p.add_argument('--interval', type=float, default=0.5, help='seconds between samples')
    p.add_argument('--cfg-options', nargs='*', default=[], metavar='KEY=VALUE',
                   help='more overrides for tools/train.py')
    p.add_argument('--out', type=Path, default=Path('work_dirs/bench/memory.json'),
                   help='JSON output (default work_dirs/bench/memory.json)')
    return p


def proc_mb(pid: int | str, field: str = 'VmRSS', file: str = 'status') -> float:
    """The ``FIELD: N kB`` line of ``/proc/PID/FILE`` in MB (``VmRSS``, ``VmHWM`` of
    ``status``), 0 if the process is gone."""
    try:
        text = Path(f'/proc/{pid}/{file}').read_text()
    except OSError:
        return 0.0
    match = re.search(rf'^{field}:\s+(\d+) kB', text, re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def rss_mb(pid: int) -> float:
    """``VmRSS`` of one process in MB, 0 if it is gone."""
    return proc_mb(pid)


def pss_mb(pid: int) -> float:
    """Proportional set size of one process in MB (each shared page divided among the
    processes mapping it, so sums over processes count it once), 0 if it is gone."""
    return proc_mb(pid, 'Pss', 'smaps_rollup')


def reset_peak() -> float:
    """Free what this process can, then reset its ``VmHWM`` to ``VmRSS``; returns VmRSS.

    Garbage and free heap (``malloc_trim``) go back to the OS first, so that a following
    peak is not hidden by reused pages that were resident already.
    """
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)
    Path('/proc/self/clear_refs').write_text('5')  # resets VmHWM (Linux >= 4.0)
    return proc_mb('self')


def measure(fn: Callable[[], Any], repeats: int = 1,
            base_mb: float | None = None) -> tuple[Any, float, float]:
    """Result, best wall time (s) and peak RSS increase (MB) of ``fn`` over ``repeats`` runs.

    The peak is this process's ``VmHWM`` during the call (reset just before it) minus
    ``base_mb``, default its ``VmRSS`` before the call: numpy, torch and faiss
    allocations alike, this call only (unlike ``ru_maxrss``, which never goes down).
    """
    best, peak, result = float('inf'), 0.0, None
    for _ in range(repeats):
        result = None  # the previous run's result is freed before the reset
        before = reset_peak()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
        peak = max(peak, proc_mb('self', 'VmHWM') - (before if base_mb is None else base_mb))
    return result, best, peak


def in_fresh_process(cmd: list[str], what: str) -> dict:
    """Run ``cmd`` (a benchmark re-invoking itself for one row) in a new process, so that
    its peak memory is that row's alone; returns the JSON object on its last stdout line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f'{what} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from ``/proc/PID/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f'/proc/{parent}/task').glob('*'):
            try:
                kids = [int(k) for k in (task / 'children').read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def follow_epochs(stream, state: dict, log) -> None:
    """Copy the run's output to ``log`` and keep ``state['epoch']`` current."""
    for line in stream:
        log.write(line)
        match = EPOCH_RE.search(line)
        if match:
            state['epoch'] = int(match.group(1))


def main() -> int:
    args = build_parser().parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), args.config, '--work-dir',
           str(args.work_dir), '--cfg-options', f'train_cfg.max_epochs={args.epochs}',
           f'train_dataloader.dataset.store={args.work_dir / "store"}', *args.cfg_options]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    state = dict(epoch=0)
    with open(args.work_dir / 'train.out', 'w') as log:
        reader = threading.Thread(target=follow_epochs, args=(proc.stdout, state, log))
        reader.start()
        peaks: dict[int, dict[str, float]] = {}
        while proc.poll() is None:
            main_mb = rss_mb(proc.pid)
            total_mb = main_mb + sum(rss_mb(p) for p in descendants(proc.pid))
            peak = peaks.setdefault(state['epoch'], dict(main=0.0, total=0.0))
            peak['main'], peak['total'] = max(peak['main'], main_mb), max(peak['total'], total_mb)
            time.sleep(args.interval)
        reader.join()
    if proc.returncode != 0:
        sys.exit(f'memory.py: training failed ({proc.returncode}); see '
                 f'{args.work_dir / "train.out"}')
    epochs = {e: p for e, p in sorted(peaks.items()) if e >= 1}
    first, last = epochs[min(epochs)]['main'], epochs[max(epochs)]['main']
    bound = first * TOLERANCE[0] + TOLERANCE[1]
    print(f'{"epoch":>5s} {"main MB":>8s} {"with workers MB":>16s}')
    for e, p in epochs.items():
        print(f'{e:5d} {p["main"]:8.0f} {p["total"]:16.0f}')
    ok = last <= bound
    print(f'last-epoch peak {last:.0f} MB {"<=" if ok else ">"} bound {bound:.0f} MB '
          f'(first {first:.0f} MB x {TOLERANCE[0]} + {TOLERANCE[1]:.0f}): '
          f'{"bounded" if ok else "GROWS"}')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(
        config=args.config, epochs=args.epochs, interval_s=args.interval,
        peaks_mb={str(e): p for e, p in epochs.items()}, bound_mb=bound, bounded=ok,
        cfg_options=args.cfg_options, cpus=os.cpu_count(),
        time=time.strftime('%Y-%m-%dT%H:%M:%S')), indent=1))
    print(f'wrote {args.out}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
