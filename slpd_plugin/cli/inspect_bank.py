"""Print the prototype bank saved in a training checkpoint.

Without --slide: the bank's sizes and health (the scalars logged after each refresh:
fraction of slides with prototypes, cluster sizes, neighbour similarity, k-means
inertia). With --slide: that slide's prototypes (norm, regions per prototype), the
prototype of each of its regions, and its neighbour slide(s) with their set similarity
and the matched prototypes. --json prints the same as one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from slpd_plugin.checkpoints import checkpoint_store, load_bank, load_checkpoint
from slpd_plugin.utils.cli import ToolParser, UsageError, UserError, tool_main
from slpd_plugin.visualization import (
    bank_overview,
    format_bank_overview,
    format_slide_report,
    open_bank_store,
    resolve_slide,
    slide_report,
)

PROG = 'inspect_bank.py'
EXAMPLES = """\
examples:
  python tools/inspect_bank.py work_dirs/demo_slpd/epoch_4.pth
  python tools/inspect_bank.py work_dirs/demo_slpd/epoch_4.pth --slide 3
  python tools/inspect_bank.py CKPT --slide TCGA-A7-A0CE-01Z-00-DX1 --store data/brca_store
  python tools/inspect_bank.py CKPT --slide 0 --json | python -m json.tool
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of CKPT, --slide, --store and --json."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('checkpoint', type=Path, metavar='CKPT',
                        help='checkpoint of tools/train.py with a prototype bank')
    parser.add_argument('--slide', metavar='ID_OR_INDEX', default=None,
                        help='also report this slide (its id, or its index in the store)')
    parser.add_argument('--store', metavar='URI', default=None,
                        help='the store the model was trained on, for slide ids and region '
                             'ranges (default: the one recorded in the checkpoint; without '
                             'one, slides are listed by index)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    return parser


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if not args.checkpoint.is_file():
        raise UsageError(f'checkpoint not found: {args.checkpoint} (expected a .pth file '
                         f'written by tools/train.py)')


def run(args: argparse.Namespace) -> None:
    """Print the bank overview of the checkpoint, and with --slide that slide's report.

    The store (--store, else the one recorded in the checkpoint) names the slides; without
    --slide or --store a recorded store that can no longer be opened is simply not used.
    With --json the same content is printed as one JSON object.
    """
    validate(args)
    ckpt = load_checkpoint(args.checkpoint)
    loaded = load_bank(ckpt, args.checkpoint)
    uri = args.store or checkpoint_store(ckpt)
    store = None
    if uri is not None and (args.slide is not None or args.store is not None):
        store = open_bank_store(uri, loaded.bank, recorded=args.store is None)
    elif uri is not None:  # the recorded store names the slides if it is still there
        try:
            store = open_bank_store(uri, loaded.bank, recorded=True)
        except (UserError, OSError, ValueError):
            store = None
    result = dict(bank=bank_overview(loaded, None if store is None else store.slide_ids))
    if args.slide is not None:
        if store is None:
            raise ValueError(f'{args.checkpoint} does not record its training store: pass '
                             f'--store')
        slide = resolve_slide(args.slide, store.slide_ids, store.num_slides)
        result['slide'] = slide_report(loaded, slide, store.slides)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    lines = format_bank_overview(result['bank'])
    if 'slide' in result:
        lines += [''] + format_slide_report(result['slide'])
    print('\n'.join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for a checkpoint without a bank or an unknown slide.
    """
    return tool_main(PROG, build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
