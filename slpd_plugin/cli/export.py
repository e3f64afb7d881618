"""Export a feature store to per-slide files: {slide_id}.pt or {slide_id}.h5.

``.pt``: a tensor (N, C, 16, 16) (loads with ``torch.load(..., weights_only=True)``).
``.h5``: dataset ``features`` (N, C, 16, 16) and ``coords`` (N, 2) when the store has
them. See docs/data.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slpd_plugin.cli.common import check_store_location
from slpd_plugin.datasets.ingest import export_store
from slpd_plugin.datasets.ingest.export import EXPORT_DTYPES, FORMATS
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'export.py'
EXAMPLES = """\
examples:
  # SLPD-layout .pt files (float32) from the embedded store
  python tools/export.py --store data/brca_store --out features/brca_slpd

  # CLAM-style .h5 files (features + coords) from Redis, kept in float16
  SLPD_REDIS_PASSWORD=... python tools/export.py \\
      --store 'redis://redis.lab:6379/0?prefix=tcga_brca' --out features/brca_h5 \\
      --format h5 --dtype float16
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of --store, --out, --format (pt/h5), --dtype and --no-progress."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('--store', required=True, metavar='URI',
                        help='a store folder or redis[s]://host:port/db?prefix=NAME')
    parser.add_argument('--out', required=True, type=Path, metavar='DIR',
                        help='output folder (created; files of the same name are replaced)')
    parser.add_argument('--format', choices=FORMATS, default='pt',
                        help='file format (default: pt)')
    parser.add_argument('--dtype', choices=EXPORT_DTYPES, default='float32',
                        help='dtype of the written grids (default: float32)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f'--out: exists and is not a folder: {args.out}')
    check_store_location(args.store, '--store')


def parse_and_run(argv: list[str] | None) -> None:
    """Parse and check ``argv``, export every slide of the store and print how many files."""
    args = build_parser().parse_args(argv)
    validate(args)
    files = export_store(args.store, args.out, fmt=args.format, dtype=args.dtype,
                         progress=not args.no_progress)
    print(f'{PROG}: wrote {len(files)} {args.format} file(s) to {args.out}')


def main(argv: list[str] | None = None) -> int:
    """Run the export on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for a store that cannot be read (:func:`run_tool`).
    """
    return run_tool(PROG, lambda: parse_and_run(argv))


if __name__ == '__main__':
    sys.exit(main())
