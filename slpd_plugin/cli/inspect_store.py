"""Print what a feature store holds and whether it is complete.

The report lists the slides, regions per slide, C, dtype and size.

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
    """The parser of STORE (a folder or redis:// URI), --all and --json."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('store', metavar='URI',
                        help='a store folder or redis[s]://[user@]host:port/db?prefix=NAME')
    parser.add_argument('--all', action='store_true',
                        help='list every slide (default: the first 20)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the store report (text or JSON); return 0 if the store is complete, else 1.

    An incomplete store (an interrupted ingest) also gets a one-line error on stderr saying
    how many slides were committed and that re-running the ingest completes it.
    """
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
    """Run the tool on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 complete, 1 incomplete or not a store, 2 bad arguments.
    """
    return tool_main(PROG, build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
