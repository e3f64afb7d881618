"""Convert TRIDENT / CLAM / STAMP patch features into a slide-lattice store.

Each slide's features are kept as stored (no zero cells) with each patch's lattice
position and a dense index map, so training cuts regions of any size or windows anywhere
without converting again. The layout of SRC is detected (--format overrides). Resumable:
re-running the same command skips the slides already committed. --shard i/N converts
every N-th slide into its own shard folder (N processes or Slurm array tasks); the last
shard to finish joins them (or run --join N afterwards). See docs/data.md.
"""
from __future__ import annotations

import argparse

from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources
from slpd_plugin.datasets.ingest.patch_format import resolve_patch_format
from slpd_plugin.datasets.ingest.patch_readers import PATCH_FORMATS
from slpd_plugin.datasets.lattice import LatticeStore, convert, join_shards
from slpd_plugin.datasets.lattice.convert import CHUNK_BYTES
from slpd_plugin.datasets.stores import StoreError
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'convert_lattice.py'
EXAMPLES = """\
examples:
  # a TRIDENT job folder (layout detected) into a lattice store, float16
  python tools/convert_lattice.py trident_job/ --store data/brca_lattice

  # 8 Slurm array tasks, one shard each; the last one to finish joins the shards
  python tools/convert_lattice.py trident_job/ --store /shared/brca_lattice \\
      --shard $SLURM_ARRAY_TASK_ID/8

  # join the shards explicitly, then re-read every slide and check its checksums
  python tools/convert_lattice.py --store /shared/brca_lattice --join 8 --verify
"""


def shard_arg(text: str) -> tuple[int, int]:
    """Parse ``--shard i/N`` into ``(i, N)`` with ``0 <= i < N``.

    Raises:
        argparse.ArgumentTypeError: If ``text`` is not two integers ``i/N`` in range
            (argparse reports it as a bad ``--shard``).
    """
    try:
        index, count = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected i/N (e.g. 0/4), got {text!r}') from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f'expected 0 <= i < N, got {text!r}')
    return index, count


def build_parser() -> argparse.ArgumentParser:
    """The parser of SRC, --store, --format, --shard/--join, layout options and --verify."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('src', nargs='?', metavar='SRC',
                        help='TRIDENT job folder (or features_<encoder>/), CLAM folder, '
                             'STAMP folder, one .h5 file or a .txt/.csv list of them')
    parser.add_argument('--store', required=True, metavar='DIR', help='the lattice store')
    parser.add_argument('--format', choices=PATCH_FORMATS, default=None,
                        help='layout of SRC (default: detected)')
    parser.add_argument('--dtype', choices=('float16', 'float32'), default='float16',
                        help='storage dtype (default: float16; float32 keeps values exact)')
    parser.add_argument('--shard', type=shard_arg, default=None, metavar='i/N',
                        help='convert shard i of N (slides i, i+N, ... sorted by id)')
    parser.add_argument('--join', type=int, default=None, metavar='N',
                        help='write the manifest joining N finished shards')
    parser.add_argument('--patch-size-level0', type=int, default=None, metavar='PX',
                        help='level-0 patch stride, for files that do not say it')
    parser.add_argument('--patches', default=None, metavar='DIR',
                        help="CLAM's patches/ folder (default: beside h5_files/ if there)")
    parser.add_argument('--shifted-lattices', choices=('split', 'refuse'), default=None,
                        help='patches on several shifted lattices (tissue pieces tiled from '
                             'their own corners): keep one lattice per piece, or stop '
                             '(default: split for clam, refuse otherwise)')
    parser.add_argument('--chunk-mb', type=float, default=CHUNK_BYTES / 2 ** 20,
                        help='source MB read per chunk (default: %(default)g)')
    parser.add_argument('--verify', action='store_true',
                        help='afterwards, re-read every slide and check its checksums')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def run(argv: list[str] | None) -> int:
    """Parse ``argv``, then convert SRC, join shards and/or verify the store, in that order.

    Returns:
        0; bad arguments raise :class:`UsageError`, a store whose slides fail their
        checksums raises ``StoreError``.
    """
    args = build_parser().parse_args(argv)
    if args.src is None and args.join is None and not args.verify:
        raise UsageError('give SRC to convert, --join N or --verify')
    if args.chunk_mb <= 0:
        raise UsageError(f'--chunk-mb must be > 0, got {args.chunk_mb}')
    if args.src is not None:
        fmt = resolve_patch_format(args.src, args.format)
        options = PatchOptions(fmt, patch_size_level0=args.patch_size_level0,
                               patches_dir=args.patches,
                               shifted_lattices=args.shifted_lattices)
        report = convert(find_patch_sources(args.src, fmt), args.store, options,
                         dtype=args.dtype, shard=args.shard,
                         chunk_bytes=int(args.chunk_mb * 2 ** 20),
                         progress=not args.no_progress)
        print(f'{PROG}: {fmt}: {report.summary()}')
    if args.join is not None:
        join_shards(args.store, args.join)
        print(f'{PROG}: joined {args.join} shards into {args.store}')
    if args.verify:
        store = LatticeStore(args.store)
        bad = store.verify()
        if bad:
            raise StoreError(f'{args.store}: {len(bad)} slide(s) do not match their '
                             f'checksums, e.g. {bad[0]!r}')
        print(f'{PROG}: verified {store.num_slides} slides, {store.num_patches:,} patches')
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for bad input (:func:`run_tool`).
    """
    return run_tool(PROG, lambda: run(argv))
