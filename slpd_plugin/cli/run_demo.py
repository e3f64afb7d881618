"""CPU demo: SLPD vs DINO-4K on a synthetic WSI benchmark, end to end, in minutes.

The steps are those of :mod:`slpd_plugin.demo.pipeline`: make (or reuse) the benchmark,
reference rows, per seed train both methods, embed and run knn/linear, then survival,
few-shot, figures and report.md under --out. Results are reported as measured; a
difference is only discussed with >= 3 seeds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slpd_plugin.demo.pipeline import ROOT, run_demo
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'run_demo.py'
EXAMPLES = """\
examples:
  python tools/run_demo.py                           # 1 seed, ~2.5 min on 2 idle cores
  python tools/run_demo.py --seeds 0 1 2             # 3 seeds before claiming a difference
  python tools/run_demo.py --quick --out /tmp/demo   # tiny variant (the test suite's)
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of --out, --seeds and --quick."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('--out', type=Path, default=ROOT / 'work_dirs' / 'demo',
                        help='demo folder (default: work_dirs/demo); its run folders are '
                             'replaced, the benchmark is reused if made identically')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0], metavar='S',
                        help='training seeds (default: 0); use 3 to compare methods')
    parser.add_argument('--quick', action='store_true',
                        help='tiny benchmark and model (about a minute; for tests)')
    return parser


def parse_and_run(argv: list[str] | None) -> int:
    """Parse and check ``argv``, run the whole demo, print its ``report.md``. Returns 0."""
    args = build_parser().parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        raise UsageError(f'--seeds must be distinct and >= 0, got {args.seeds}')
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f'--out exists and is not a folder: {args.out}')
    report = run_demo(args.out.resolve(), args.seeds, args.quick)
    print(report.read_text())
    print(f'wrote {report}')
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the demo on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for bad input (:func:`run_tool`).
    """
    return run_tool(PROG, lambda: parse_and_run(argv))


if __name__ == '__main__':
    sys.exit(main())
