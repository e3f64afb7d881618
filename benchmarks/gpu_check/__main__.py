"""``python3 -m benchmarks.gpu_check prepare [--list] | run | dry [--out DIR]``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .driver import run_check
from .prepare import ROOT, WHEELS, prepare


def main() -> int:
    parser = argparse.ArgumentParser(prog='tools/gpu_check.sh', description=__doc__)
    parser.add_argument('mode', choices=('prepare', 'run', 'dry'))
    parser.add_argument('--list', action='store_true',
                        help='prepare: print the wheels and the plan, download nothing')
    parser.add_argument('--out', type=Path, default=None,
                        help='run/dry: results folder (default $OUT)')
    parser.add_argument('--wheels', type=Path, default=ROOT / WHEELS,
                        help='run/dry: wheel folder to install from (default .whl/)')
    parser.add_argument('--deadline', type=float, default=None,
                        help='run/dry: overall seconds (default 480 on the GPU, 100 dry)')
    parser.add_argument('--steps', nargs='+', default=None,
                        help='run/dry: only these steps (default: all, in order)')
    args = parser.parse_args()
    if args.mode == 'prepare':
        return prepare(list_only=args.list)
    out = args.out or (Path(os.environ['OUT']) if os.environ.get('OUT') else None)
    if out is None:
        print('gpu_check: no results folder: pass --out DIR or set $OUT', file=sys.stderr)
        return 2
    return run_check('gpu' if args.mode == 'run' else 'dry', out, args.wheels, args.deadline,
                     args.steps)


if __name__ == '__main__':
    sys.exit(main())
