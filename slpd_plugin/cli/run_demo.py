"""CPU demo: pretraining recipes (SLPD vs DINO-4K by default) on a synthetic WSI benchmark.

The steps are those of :mod:`slpd_plugin.demo.pipeline`: make (or reuse) the benchmark,
reference rows, per seed train every method, embed and run knn/linear, then survival,
few-shot, paired differences, figures and report.md under --out. --compare runs every
method of the table with the same data, budget and seeds (0 1 2 unless --seeds), beside
each one's untrained encoder (random init) and a supervised ABMIL on the raw features.
Results are reported as measured; a difference is only claimed with >= 3 seeds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slpd_plugin.demo.methods import DEFAULT_METHODS, METHODS
from slpd_plugin.demo.pipeline import ROOT, run_demo
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'run_demo.py'
EXAMPLES = """\
examples:
  python tools/run_demo.py                           # 1 seed, ~2.5 min on 2 idle cores
  python tools/run_demo.py --seeds 0 1 2             # 3 seeds before claiming a difference
  python tools/run_demo.py --quick --out /tmp/demo   # tiny variant
  python tools/run_demo.py --compare                 # every method, 3 seeds, random-init
                                                     # and ABMIL rows, paired differences
  python tools/run_demo.py --compare --quick --seeds 0 --out /tmp/cmp  # the test suite's
  python tools/run_demo.py --compare --methods SLPD --seeds 0 1 2 3 4
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of --out, --seeds and --quick."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('--out', type=Path, default=ROOT / 'work_dirs' / 'demo',
                        help='demo folder (default: work_dirs/demo); its run folders are '
                             'replaced, the benchmark is reused if made identically')
    parser.add_argument('--seeds', type=int, nargs='+', default=None, metavar='S',
                        help='training seeds (default: 0, with --compare 0 1 2); at least '
                             '3 before any claim about a difference')
    parser.add_argument('--quick', action='store_true',
                        help='tiny benchmark and model (about a minute; for tests)')
    parser.add_argument('--methods', nargs='+', default=None, metavar='NAME',
                        help=f'methods to train, from {", ".join(METHODS)}, or "all" '
                             f'(default: {" ".join(DEFAULT_METHODS)}; with --compare all)')
    parser.add_argument('--compare', action='store_true',
                        help='comparison mode: every method (or --methods), seeds 0 1 2 '
                             '(or --seeds), plus each method\'s random-init encoder and '
                             'the supervised ABMIL on raw features')
    return parser


def resolve_methods(names: list[str] | None, compare: bool) -> list[str]:
    """The methods of ``--methods`` (table order), ``all``, or the mode's default."""
    if not names:
        return list(METHODS if compare else DEFAULT_METHODS)
    if names == ['all']:
        return list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown or len(set(names)) != len(names):
        raise UsageError(f'--methods: expected distinct names from {", ".join(METHODS)} '
                         f'or "all", got {" ".join(names)}')
    return [m for m in METHODS if m in names]


def parse_and_run(argv: list[str] | None) -> int:
    """Parse and check ``argv``, run the whole demo, print its ``report.md``. Returns 0."""
    args = build_parser().parse_args(argv)
    seeds = args.seeds or ([0, 1, 2] if args.compare else [0])
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f'--seeds must be distinct and >= 0, got {seeds}')
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f'--out exists and is not a folder: {args.out}')
    methods = resolve_methods(args.methods, args.compare)
    report = run_demo(args.out.resolve(), seeds, args.quick, methods, baselines=args.compare)
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
