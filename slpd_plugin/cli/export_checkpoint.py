"""Export a trained region encoder for HIPT: {'teacher': state_dict} with vit4k_xs keys.

The file has the layout of HIPT's vit4k_xs_dino.pth teacher: backbone weights under
'backbone.' (backbone.phi.0.weight, backbone.blocks.0.attn.qkv.weight, ...), which HIPT's
get_vit4k() strips before loading them into vit4k_xs(). A 'slpd_meta' entry records the
source checkpoint, epoch and architecture. See docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slpd_plugin.checkpoints.hipt_export import export_hipt_teacher
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'export_checkpoint.py'
EXAMPLES = """\
examples:
  python tools/export_checkpoint.py work_dirs/slpd_lung/epoch_100.pth vit4k_xs_slpd.pth

  # then, in HIPT: get_vit4k(pretrained_weights='vit4k_xs_slpd.pth', arch='vit4k_xs')
  # or any loader of vit4k_xs_dino.pth (takes ckpt['teacher'], strips 'backbone.')
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the source checkpoint, the output file, --encoder and --force."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('checkpoint', type=Path, help="a checkpoint of this plugin's runner")
    parser.add_argument('out', type=Path, help='output .pth file')
    parser.add_argument('--encoder', choices=('teacher', 'student'), default='teacher',
                        help="encoder written under the 'teacher' key (default: teacher)")
    parser.add_argument('--force', action='store_true', help='overwrite an existing OUT')
    return parser


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if not args.checkpoint.is_file():
        raise UsageError(f'checkpoint not found: {args.checkpoint}')
    if args.out.exists() and not args.force:
        raise UsageError(f'{args.out} exists; pass --force to overwrite')


def parse_and_run(argv: list[str] | None) -> None:
    """Parse and check ``argv``, write the HIPT-layout teacher file and print its architecture.

    A note on stderr says when the architecture is not HIPT's ``vit4k_xs``, so that HIPT's
    own ``get_vit4k()`` would not load it as is.
    """
    args = build_parser().parse_args(argv)
    validate(args)
    meta = export_hipt_teacher(args.checkpoint, args.out, args.encoder)
    arch = (f'in_channels={meta["in_channels"]}, embed_dims={meta["embed_dims"]}, '
            f'depth={meta["depth"]}')
    print(f'wrote {args.out}: {meta["encoder"]} backbone, epoch {meta["epoch"]}, {arch}')
    if not meta['hipt_vit4k_xs']:
        print(f"{PROG}: note: not HIPT's vit4k_xs (in_channels=384, embed_dims=192, "
              f'depth=6); build a ViT-4K with {arch} to load it', file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the export on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for a checkpoint that cannot be exported.
    """
    return run_tool(PROG, lambda: parse_and_run(argv))


if __name__ == '__main__':
    sys.exit(main())
