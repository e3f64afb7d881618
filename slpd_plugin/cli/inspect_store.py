"""Print what a feature store holds: slides, regions per slide, C, dtype, size, and
whether it is complete.

A store whose ingest was interrupted (a journal of committed slides but no manifest) is
reported with the slides committed so far and exit status 1; re-running the same
ingest command completes it. Exit status: 0 complete, 1 incomplete or not a store,
2 bad arguments.
"""
from __future__ import annotations

import argparse
import json
import sys

from slpd_plugin.cli.common import check_store_location
from slpd_plugin.datasets.stores.report import format_store_report, store_report
from slpd_plugin.utils.cli import ToolParser, tool_main

PROG = 'inspect_store.py'
EXAMPLES = """\
examples:
  python tools/inspect_store.py data/demo_store
  python tools/inspect_store.py data/brca_store --all          # every slide, one per line
  SLPD_REDIS_PASSWORD=... python tools/inspect_store.py 'redis://redis.lab:6379/0?prefix=brca'
  python tools/inspect_store.py data/brca_store --json | python -m json.tool
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ToolParser(prog=PROG, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('store', metavar='URI',
                        help='a store folder or redis[s]://[user@]host:port/db?prefix=NAME')
    parser.add_argument('--all', action='store_true',
                        help='list every slide (default: the first 20)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    return parser


def run(args: argparse.Namespace) -> int:
    check_store_location(args.store)
    report = store_report(args.store)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        lines = format_store_report(report, max_slides=None if args.all else 20)
        if not args.all and report['num_slides'] > 20:
            lines[-1] += ' (--all lists every slide)'
        print('\n'.join(lines))
    if report['complete']:
        return 0
    print(f'{PROG}: error: store {report["location"]} is incomplete: an ingest was '
          f'interrupted after {report["num_slides"]} committed slide(s); re-run the same '
          f'ingest command to complete it', file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    return tool_main(PROG, build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
