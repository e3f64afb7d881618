"""Import per-slide region features into a feature store (memmap folder or Redis).

Reads HIPT ``(N, 256, C)`` and SLPD ``(N, C, 16, 16)`` tensors from ``.pt`` files,
CLAM-style ``.h5`` files (``features`` + optional ``coords``), folders of per-region
``.pt`` files, or another store; checks every region (shape, dtype, finite values, one
C for all slides) and writes the store. With ``--format trident|clam|stamp`` it reads
patch features ``(N_patches, D)`` + coordinates instead and assembles region grids with
tissue masks. Resumable: re-running the same command skips the slides already committed
and completes the store. See docs/data.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slpd_plugin.datasets.ingest import (
    PatchOptions,
    find_patch_sources,
    find_sources,
    ingest,
    ingest_patches,
    verify_store,
)
from slpd_plugin.datasets.ingest.grid_assembly import DEFAULT_MIN_TISSUE
from slpd_plugin.datasets.ingest.patch_format import detect_patch_format
from slpd_plugin.datasets.ingest.patch_readers import PATCH_FORMATS
from slpd_plugin.datasets.stores import StoreError, is_redis_uri, parse_redis_uri
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'ingest.py'
EXAMPLES = """\
examples:
  # a folder of HIPT .pt files [N,256,384] into the embedded store (float16)
  python tools/ingest.py features/tcga_brca/ --store data/brca_store

  # CLAM-style .h5 files listed in a CSV (column "path", optional "slide_id"), float32
  python tools/ingest.py slides.csv --store data/brca_store_fp32 --dtype float32

  # into a shared Redis server; the password comes from an environment variable
  export SLPD_REDIS_PASSWORD=...   # or ?password_env=MY_VAR
  python tools/ingest.py features/tcga_brca/ \\
      --store 'redis://slpd_writer@redis.lab:6379/0?prefix=tcga_brca'

  # copy an existing store to Redis, then re-read everything and check the checksums
  python tools/ingest.py data/brca_store --store 'redis://redis.lab:6379/0?prefix=brca' --verify

  # only verify a store
  python tools/ingest.py --verify --store data/brca_store

  # TRIDENT patch features (a job folder or its features_<encoder>/) -> 16x16-patch regions
  python tools/ingest.py trident_job/20x_256px_0px_overlap/features_uni_v1 \
      --format trident --store data/brca_uni_store

  # CLAM h5_files/ (stride from patches/ beside it, or --patch-size-level0; each tissue
  # piece is cut on its own lattice), STAMP h5
  python tools/ingest.py clam_out/ --format clam --patches clam_patches/patches \
      --store data/brca_clam_store
  python tools/ingest.py stamp_feats/ --format stamp --min-tissue 0.5 --store data/stamp_store
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of SRC, --store, --dtype/--channels, --format with the patch options, --verify."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('src', nargs='?', metavar='SRC',
                        help='folder of .pt/.h5 files or per-region folders, a .txt/.csv '
                             'list of such paths, or a store to copy')
    parser.add_argument('--store', required=True, metavar='URI',
                        help='destination: a folder (embedded memmap store) or '
                             'redis[s]://[user@]host:port/db?prefix=NAME')
    parser.add_argument('--dtype', choices=('float16', 'float32'), default='float16',
                        help='storage dtype (default: float16; float32 keeps values exact)')
    parser.add_argument('--channels', type=int, default=None, metavar='C',
                        help='expected feature dim C (default: taken from the first slide)')
    patch = parser.add_argument_group('patch features (--format)')
    patch.add_argument('--format', choices=PATCH_FORMATS, default=None,
                       help='SRC holds patch features + coordinates of this tool; they '
                            'are assembled into region grids with tissue masks (default: '
                            'detected from SRC\'s folders and first .h5 file)')
    patch.add_argument('--region-size', type=int, default=16, metavar='G',
                       help='patches per region side (default: 16, HIPT\'s 4096-px '
                            'regions of 256-px patches)')
    patch.add_argument('--min-tissue', type=float, default=DEFAULT_MIN_TISSUE,
                       metavar='F', help='keep regions with at least this fraction of '
                                         f'G x G patches present (default: '
                                         f'{DEFAULT_MIN_TISSUE})')
    patch.add_argument('--patch-size-level0', type=int, default=None, metavar='PX',
                       help='level-0 patch stride, for files that do not say it (CLAM '
                            'h5_files/ without patches/); checked against the file')
    patch.add_argument('--patches', default=None, metavar='DIR',
                       help="CLAM's patches/ folder (default: beside h5_files/ if there)")
    patch.add_argument('--shifted-lattices', choices=('split', 'refuse'), default=None,
                       help='a slide whose patches sit on several shifted lattices (each '
                            'tissue piece tiled from its own corner): cut each piece on '
                            'its own lattice, or stop (default: split for clam, refuse '
                            'for trident and stamp)')
    patch.add_argument('--allow-mixed-strides', action='store_true',
                       help='clam: accept slides at different level-0 strides inferred '
                            'from their coordinates (no patches/ file), e.g. 40x and 20x '
                            'scans patched at the same magnification (default: refused, '
                            'they may be at different magnifications)')
    parser.add_argument('--verify', action='store_true',
                        help='afterwards (or, without SRC, only) re-read every slide and '
                             'check its checksum')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if args.src is None and not args.verify:
        raise UsageError('give SRC to ingest, or --verify to check an existing store')
    if args.src is not None and not is_redis_uri(args.src) and not Path(args.src).exists():
        raise UsageError(f'SRC: no such file or folder: {args.src}')
    if args.channels is not None and args.channels <= 0:
        raise UsageError(f'--channels must be > 0, got {args.channels}')
    if is_redis_uri(args.store):
        try:
            parse_redis_uri(args.store)
        except StoreError as err:
            raise UsageError(f'--store: {err}') from None
    elif Path(args.store).exists() and not Path(args.store).is_dir():
        raise UsageError(f'--store: exists and is not a folder: {args.store}')
    if args.src is not None and args.src == args.store:
        raise UsageError('SRC and --store are the same store')
    if args.region_size < 1:
        raise UsageError(f'--region-size must be >= 1, got {args.region_size}')
    if not 0 <= args.min_tissue <= 1:
        raise UsageError(f'--min-tissue must be in [0, 1], got {args.min_tissue}')
    if args.patch_size_level0 is not None and args.patch_size_level0 <= 0:
        raise UsageError(f'--patch-size-level0 must be > 0, got {args.patch_size_level0}')
    if args.patches is not None and not Path(args.patches).is_dir():
        raise UsageError(f'--patches: no such folder: {args.patches}')


def run(args: argparse.Namespace) -> int:
    """Ingest SRC into --store (patch features or region grids), then verify if asked.

    Patch-feature sources (``--format``, or detected) are assembled into region grids with
    tissue masks; region-grid files and stores are copied as they are. Prints the ingest
    summary and, with --verify, the number of regions checked. Returns 0.
    """
    progress = not args.no_progress
    if args.src is not None and args.format is None and not is_redis_uri(args.src):
        args.format = detect_patch_format(args.src)  # None: region grids or a store
    if args.src is not None and args.format is not None:
        options = PatchOptions(args.format, grid_size=args.region_size,
                               min_tissue=args.min_tissue,
                               patch_size_level0=args.patch_size_level0,
                               patches_dir=args.patches,
                               shifted_lattices=args.shifted_lattices,
                               allow_mixed_strides=args.allow_mixed_strides)
        patch_report = ingest_patches(find_patch_sources(args.src, args.format), args.store,
                                      options, dtype=args.dtype, channels=args.channels,
                                      progress=progress)
        print(f'{PROG}: {patch_report.summary()}')
        for line in patch_report.patch_lines():  # patches in the files vs kept, per slide
            print(f'{PROG}: {line}')
    elif args.src is not None:
        sources = find_sources(args.src)
        report = ingest(sources, args.store, dtype=args.dtype, channels=args.channels,
                        progress=progress)
        print(f'{PROG}: {report.summary()}')
    if args.verify:
        regions = verify_store(args.store, progress=progress)
        print(f'{PROG}: verified {regions} regions: every slide matches its checksum')
    return 0


def parse_and_run(argv: list[str] | None) -> int:
    """Parse ``argv``, check it (:func:`validate`), then :func:`run`."""
    args = build_parser().parse_args(argv)
    validate(args)
    return run(args)


def main(argv: list[str] | None = None) -> int:
    """Run the ingest on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for bad input, 130 on Ctrl-C (the store is then
    incomplete until the same command is run again, which resumes it).
    """
    try:
        return run_tool(PROG, lambda: parse_and_run(argv))
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted; the store is incomplete until the same command is '
              f're-run', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
