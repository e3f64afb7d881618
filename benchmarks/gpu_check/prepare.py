"""What the GPU check takes with it: the pinned wheels, the size of the travelling tree,
and the exact call to make on the GPU machine.

The GPU machine reaches no package index, so every package its image lacks travels as
a wheel in the git-ignored ``.whl/`` folder (pinned in ``tools/gpu_wheels.txt``, one
version each) and is installed there with ``pip install --no-index --no-deps --target``.
The tree that travels (tracked and untracked-not-ignored files plus the carried
``.whl/``) must stay under 64 MiB.

Example:
    >>> pins = read_pins(ROOT / 'tools' / 'gpu_wheels.txt')   # ['mmengine==0.10.7', ...]
    >>> subprocess.run(download_command(pins, ROOT / '.whl'), check=True)
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / 'tools' / 'gpu_wheels.txt'
WHEELS = '.whl'
TREE_LIMIT = 64 * 2**20
#: What the GPU machine's python is, and the platforms its pip accepts.
PYTHON_VERSION = '3.12'
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64',
             'manylinux2014_x86_64', 'manylinux1_x86_64')
#: The device call's limit; the check's own deadline (480 s) plus install and slack.
CALL_TIMEOUT_S = 560


def normalized(name: str) -> str:
    """A distribution name as wheel file names spell it (PEP 503, ``-`` as ``_``)."""
    return re.sub(r'[-_.]+', '_', name).lower()


def read_pins(path: Path = PINS) -> list[str]:
    """The ``NAME==VERSION`` lines of ``path`` (comments and blank lines skipped)."""
    pins = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+', line):
            raise ValueError(f'{path}:{number}: expected NAME==VERSION, got {line!r}')
        pins.append(line)
    names = [normalized(p.split('==')[0]) for p in pins]
    if len(set(names)) != len(names):
        raise ValueError(f'{path}: a package is pinned twice (one version each)')
    return pins


def download_command(pins: list[str], dest: Path) -> list[str]:
    """``pip download`` of exactly these wheels for the GPU machine's python and platform."""
    platforms = [arg for p in PLATFORMS for arg in ('--platform', p)]
    return [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
            '--python-version', PYTHON_VERSION, '--implementation', 'cp', *platforms,
            '-d', str(dest), *pins]


def wheel_key(path: Path) -> tuple[str, str]:
    """``(normalized name, version)`` of a wheel file name."""
    name, version = path.name.split('-')[:2]
    return normalized(name), version


def unpinned_wheels(pins: list[str], folder: Path) -> list[Path]:
    """Wheels in ``folder`` that are not one of ``pins`` (another version, or no pin)."""
    wanted = {(normalized(n), v) for n, v in (p.split('==') for p in pins)}
    return sorted(w for w in folder.glob('*.whl') if wheel_key(w) not in wanted)


def missing_pins(pins: list[str], folder: Path) -> list[str]:
    """Pins without a wheel in ``folder``."""
    have = {wheel_key(w) for w in folder.glob('*.whl')}
    return [p for p in pins if (normalized(p.split('==')[0]), p.split('==')[1]) not in have]


def travelling_bytes(root: Path = ROOT, carry: tuple[str, ...] = (WHEELS,)) -> int:
    """Bytes of the tree a device call sends: tracked and untracked-not-ignored files,
    plus the carried paths."""
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others',
                             '--exclude-standard'], cwd=root, capture_output=True,
                            check=True).stdout.decode().split('\0')
    files = {root / f for f in listed if f}
    for path in carry:
        top = root / path
        files.update(p for p in ([top] if top.is_file() else top.rglob('*')) if p.is_file())
    return sum(f.lstat().st_size for f in files if f.is_symlink() or f.is_file())


def plan(size: int) -> str:
    """What to run on the GPU machine: the command, what travels with it, its limit."""
    return '\n'.join([
        'On the GPU machine (the device tool\'s run), from the repository root:',
        '  command:   tools/gpu_check.sh --run',
        f'  carry:     ["{WHEELS}"]',
        f'  timeout_s: {CALL_TIMEOUT_S}',
        f'Travelling tree: {size / 2**20:.1f} MiB of {TREE_LIMIT / 2**20:.0f} MiB. Results '
        'come back as $OUT/results.jsonl (one row per step, written as each ends) and '
        '$OUT/gpu_check.log.'])


def prepare(list_only: bool = False) -> int:
    """Download the pinned wheels into ``.whl/`` (unless ``list_only``), drop any other
    wheel there, check the tree's size and print the plan; 0 when all is ready."""
    pins = read_pins()
    folder = ROOT / WHEELS
    print(f'{len(pins)} pinned wheels ({PINS.relative_to(ROOT)}): {" ".join(pins)}')
    if list_only:
        print('download: ' + ' '.join(download_command(pins, folder)))
    else:
        folder.mkdir(exist_ok=True)
        if missing_pins(pins, folder):
            subprocess.run(download_command(missing_pins(pins, folder), folder), check=True)
        for stale in unpinned_wheels(pins, folder):
            print(f'removing {stale.name}: not pinned (one version each)')
            stale.unlink()
    missing = missing_pins(pins, folder)
    size = travelling_bytes()
    print(plan(size))
    problems = []
    if missing and not list_only:
        problems.append(f'no wheel downloaded for {", ".join(missing)}')
    if size >= TREE_LIMIT:
        problems.append(f'the travelling tree is {size / 2**20:.1f} MiB, over the '
                        f'{TREE_LIMIT / 2**20:.0f} MiB a device call takes: ignore or '
                        f'remove large untracked files')
    for problem in problems:
        print(f'gpu_check --prepare: {problem}', file=sys.stderr)
    return 1 if problems else 0
