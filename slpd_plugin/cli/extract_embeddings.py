"""Embed every region of a feature store, or every slide whole, with a trained (frozen) encoder.

Writes, under --out: one {slide_id}.pt per slide, a float32 tensor (N, D) of region
embeddings in store order (HIPT's naming; tools/eval_slides.py reads the folder as is),
coords/{slide_id}.pt (N, 2) when the store has region coordinates, slide_embeddings.npz
(slide_id, features = per-slide mean (S, D), num_regions) and extraction.json.
--format trident writes TRIDENT's layout instead: features_<name>/{slide_id}.h5
(features (N, D), coords (N, 2)) and slide_features_<name>/{slide_id}.h5 (features
(1, D)), under <mag>x_<px>px_0px_overlap/ for a store made from patch features.

--level says where the slide embedding comes from: region (default, HIPT's way) embeds
every 16x16 region and the slide embedding is their mean; slide runs the backbone once
over the whole slide (all its patches, every tissue piece, at their lattice cells; the
TITAN/MOOZY way) and writes only that embedding, {slide_id}.pt (1, D) or, with --format
trident, slide_features_<name>/{slide_id}.h5 (1, D). --level slide reads a slide-lattice
store or a TRIDENT/CLAM/STAMP folder and needs an ALiBiViT or ViT4K backbone.
See docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from mmengine.config import DictAction

from slpd_plugin.checkpoints import load_encoder
from slpd_plugin.checkpoints.extract import CROPS, FORMATS, extract_embeddings
from slpd_plugin.checkpoints.slide_extract import extract_slide_embeddings
from slpd_plugin.datasets.lattice import is_slide_lattice, open_lattice, open_regions
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'extract_embeddings.py'
LEVELS = ('region', 'slide')
EXAMPLES = """\
examples:
  # teacher CLS of the full 16x16 grid (HIPT's evaluation), CPU
  python tools/extract_embeddings.py work_dirs/slpd_lung/slpd_lung.py \\
      work_dirs/slpd_lung/epoch_100.pth --store data/tcga_lung_store \\
      --out work_dirs/slpd_lung/region_emb

  # student, centre 14x14 crop, on a GPU, from a Redis store
  python tools/extract_embeddings.py configs/slpd_lung.py work_dirs/slpd_lung/epoch_100.pth \\
      --store 'redis://localhost:6379/0?prefix=lung' --out emb_student \\
      --encoder student --crop center --device cuda --batch-size 256

  # TRIDENT layout for Patho-Bench / MIL-Lab / STAMP
  python tools/extract_embeddings.py CONFIG CKPT --store data/tcga_lung_store \
      --out work_dirs/slpd_lung/trident --format trident --name slpd_vit4k

  # one embedding per slide from the whole slide (ALiBiViT/ViT4K), TRIDENT's layout
  python tools/extract_embeddings.py CONFIG CKPT --store data/brca_lattice \\
      --out work_dirs/slide_emb --level slide --format trident --name slpd_titan

  # then: python tools/eval_slides.py knn --embeddings work_dirs/slpd_lung/region_emb ...
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of CONFIG, CKPT, --store, --out and the extraction options.

    The options pick the encoder (teacher/student), the crop, the batch size, workers and
    device, and the output layout (HIPT ``.pt`` files or TRIDENT ``.h5``).
    """
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('config', type=Path,
                        help='training config (the copy saved in the work dir has any '
                             '--cfg-options of training applied)')
    parser.add_argument('checkpoint', type=Path,
                        help="a checkpoint of this plugin's runner, or a DINO-style one of "
                             "HIPT (vit4k_xs_dino.pth) or SLPD (main_SLPD.py)")
    parser.add_argument('--store', required=True, metavar='URI',
                        help='feature store: a folder or a redis:// URI; or a slide-lattice '
                             'store or TRIDENT/CLAM/STAMP folder, whose 16x16 regions (tiled '
                             'from the slide origin, as ingest does) are read in place')
    parser.add_argument('--out', required=True, type=Path, metavar='DIR',
                        help='output folder (created)')
    parser.add_argument('--encoder', choices=('teacher', 'student'), default='teacher',
                        help='which encoder embeds (default: teacher)')
    parser.add_argument('--level', choices=LEVELS, default='region',
                        help='region: embed every region, slide embedding = their mean '
                             "(HIPT's); slide: one pass over each whole slide's patches, "
                             'one embedding per slide (TITAN-style; a slide-lattice store '
                             'or TRIDENT/CLAM/STAMP folder, ALiBiViT or ViT4K backbone) '
                             '(default: region)')
    parser.add_argument('--crop', choices=CROPS, default='full',
                        help='--level region: full 16x16 grid (HIPT) or centre 14x14 crop '
                             '(default: full)')
    parser.add_argument('--chunk-size', type=int, default=1024, metavar='Q',
                        help='--level slide: attention queries per chunk; memory grows as '
                             'Q x patches of the slide (default: 1024)')
    parser.add_argument('--format', choices=FORMATS, default='hipt',
                        help='hipt: {slide_id}.pt per slide; trident: features_<name>/ and '
                             'slide_features_<name>/ h5 folders (default: hipt)')
    parser.add_argument('--name', default=None,
                        help='encoder name of the TRIDENT folders (default: slpd_<encoder>)')
    parser.add_argument('--batch-size', type=int, default=64, metavar='B',
                        help='--level region: regions per forward pass (default: 64)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default: cpu)')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='processes reading the store (default: 0)')
    parser.add_argument('--overwrite', action='store_true',
                        help='allow an --out folder that already holds .pt files')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='config overrides, as given to tools/train.py')
    return parser


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if not args.config.is_file():
        raise UsageError(f'config not found: {args.config}')
    if not args.checkpoint.is_file():
        raise UsageError(f'checkpoint not found: {args.checkpoint}')
    if args.level == 'slide' and args.crop != 'full':
        raise UsageError('--crop applies to --level region; --level slide embeds every patch')
    if args.level == 'slide' and not is_slide_lattice(args.store):
        raise UsageError(f'--level slide reads slide lattices (a lattice store or a '
                         f'TRIDENT/CLAM/STAMP folder); --store {args.store} is neither '
                         f'(a region store: use --level region)')
    if args.chunk_size < 1:
        raise UsageError(f'--chunk-size must be >= 1, got {args.chunk_size}')
    if args.batch_size < 1 or args.num_workers < 0:
        raise UsageError(f'--batch-size must be >= 1 and --num-workers >= 0, got '
                         f'{args.batch_size}, {args.num_workers}')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise UsageError(f'--device {args.device}: CUDA is not available')
    if args.device != 'cpu' and not args.device.startswith('cuda'):
        raise UsageError(f'--device must be cpu, cuda or cuda:N, got {args.device!r}')
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f'--out exists and is not a folder: {args.out}')
    held = args.out.is_dir() and (any(args.out.glob('*.pt'))
                                  or any(args.out.glob('**/*features_*/*.h5')))
    if held and not args.overwrite:
        raise UsageError(f'--out {args.out} already holds embedding files; pass --overwrite or '
                         f'choose an empty folder')


def parse_and_run(argv: list[str] | None) -> None:
    """Parse and check ``argv``, load the frozen encoder, embed every region of the store.

    Prints how many slide files and regions were written, the embedding size D and the
    time taken.
    """
    args = build_parser().parse_args(argv)
    validate(args)
    provenance = dict(config=str(args.config), checkpoint=str(args.checkpoint))
    if args.level == 'slide':
        source = open_lattice(args.store)
        model = load_encoder(args.config, args.checkpoint, args.encoder, args.cfg_options)
        meta = extract_slide_embeddings(
            model, source, args.out, args.encoder, args.chunk_size, args.device,
            progress=not args.no_progress, provenance=provenance, fmt=args.format,
            name=args.name)
        print(f'wrote {meta["num_slides"]} whole-slide embeddings ({meta["num_patches"]} '
              f'patches, D={meta["embedding_dim"]}) to {args.out} in {meta["seconds"]} s')
        return
    store = open_regions(args.store)
    model = load_encoder(args.config, args.checkpoint, args.encoder, args.cfg_options)
    meta = extract_embeddings(
        model, store, args.out, args.encoder, args.crop, args.batch_size, args.device,
        args.num_workers, progress=not args.no_progress, provenance=provenance,
        fmt=args.format, name=args.name)
    print(f'wrote {meta["num_slides"]} slide files ({meta["num_regions"]} regions, '
          f'D={meta["embedding_dim"]}) to {args.out} in {meta["seconds"]} s')


def main(argv: list[str] | None = None) -> int:
    """Run the extraction on ``argv`` (default: ``sys.argv[1:]``); return its exit status.

    0 on success, 2 for a bad argument, 1 for bad input; a config that builds no model
    (mmengine's ``KeyError`` / ``TypeError``) also counts as bad input.
    """
    # a config that builds no model fails with KeyError/TypeError out of mmengine
    return run_tool(PROG, lambda: parse_and_run(argv), errors=(KeyError, TypeError))

if __name__ == '__main__':
    sys.exit(main())
