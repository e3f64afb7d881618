"""Pictures of a trained SLPD model's prototypes, written as PNG files (no display needed).

  map         a slide's regions coloured by prototype, beside its neighbour slide(s);
              matched prototypes share a colour
  projection  2-D projection (PCA, or UMAP if installed) of region embeddings coloured by
              prototype, and of every slide's prototypes coloured by label
  graph       the slide-neighbour graph of a set of slides, coloured by label

CKPT is a checkpoint of tools/train.py written after the first prototype refresh (it
holds a prototype bank). The store defaults to the one the checkpoint was trained on.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from slpd_plugin.checkpoints import (
    build_model,
    checkpoint_store,
    load_bank,
    load_checkpoint,
    prototype_settings,
)
from slpd_plugin.datasets.stores import FeatureStore, StoreError
from slpd_plugin.prototypes import PrototypeBank
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool
from slpd_plugin.visualization import (
    PROJECTION_METHODS,
    embed_regions,
    load_slide_labels,
    open_bank_store,
    plot_neighbor_graph,
    plot_projection,
    plot_prototype_map,
    resolve_slide,
    spread_slides,
)
from slpd_plugin.visualization.neighbor_graph import neighbor_edges, same_label_fraction

PROG = 'visualize.py'
EXAMPLES = """\
examples:
  # slide 3 of the training store (by index or by id) beside its neighbour slide
  python tools/visualize.py map work_dirs/demo_slpd/epoch_4.pth --slide 3 --out map.png
  python tools/visualize.py map CKPT --slide TCGA-A7-A0CE-01Z-00-DX1 --store data/brca_store \\
      --out map.png

  # regions of 4 slides and the prototypes of all slides, coloured by a CSV column
  python tools/visualize.py projection CKPT --out proj.png --slides 4 \\
      --labels ../shared/data/hipt/tcga_brca_subset.csv --label-col oncotree_code

  # the neighbour graph of 60 slides spread over the store, coloured by label
  python tools/visualize.py graph CKPT --out graph.png --slides 60 --labels labels.csv \\
      --label-col label
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``map``, ``projection`` and ``graph`` subcommands.

    All take CKPT, --out and --store; ``projection`` and ``graph`` also take --labels and
    --label-col.
    """
    common = ToolParser(add_help=False)
    common.add_argument('checkpoint', type=Path, metavar='CKPT',
                        help='checkpoint of tools/train.py with a prototype bank')
    common.add_argument('--out', required=True, type=Path, metavar='PNG',
                        help='PNG file to write (its folder is created)')
    common.add_argument('--store', metavar='URI', default=None,
                        help='the store the model was trained on: a folder or redis:// URI '
                             '(default: the one recorded in the checkpoint)')
    labelled = ToolParser(add_help=False)
    labelled.add_argument('--labels', type=Path, metavar='CSV', default=None,
                          help='CSV with a slide_id column (".svs" optional) and a label '
                               'column; slides missing from it are grey')
    labelled.add_argument('--label-col', default='oncotree_code', metavar='COL',
                          help='label column of --labels (default: oncotree_code)')

    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    sub = parser.add_subparsers(dest='command', required=True,
                                metavar='{map,projection,graph}')
    kw: dict[str, Any] = dict(epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    pmap = sub.add_parser('map', parents=[common], help='prototype map of one slide',
                          description='A slide\'s regions coloured by prototype (at their '
                                      'coordinates, or on a grid when the store has none), '
                                      'beside its neighbour slide(s).', **kw)
    pmap.add_argument('--slide', required=True, metavar='ID_OR_INDEX',
                      help='slide id, or its index in the store')
    proj = sub.add_parser('projection', parents=[common, labelled],
                          help='2-D projection of embeddings and prototypes',
                          description='Teacher embeddings of the regions of a few slides '
                                      'coloured by prototype, and the prototypes of every '
                                      'slide coloured by label.', **kw)
    proj.add_argument('--slides', type=int, default=4, metavar='N',
                      help='slides whose regions are embedded, spread over the store '
                           '(default: 4)')
    proj.add_argument('--method', choices=PROJECTION_METHODS, default='pca',
                      help='pca (default) or umap (needs the umap-learn package)')
    proj.add_argument('--batch-size', type=int, default=64, metavar='B',
                      help='regions per forward pass (default: 64)')
    graph = sub.add_parser('graph', parents=[common, labelled],
                           help='slide-neighbour graph',
                           description='Each slide points at its neighbour slide(s); nodes '
                                       'coloured by label (or by slide).', **kw)
    graph.add_argument('--slides', type=int, default=60, metavar='N',
                       help='slides whose edges are drawn, spread over the slides with '
                            'prototypes (default: 60)')
    return parser


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if not args.checkpoint.is_file():
        raise UsageError(f'checkpoint not found: {args.checkpoint} (expected a .pth file '
                         f'written by tools/train.py)')
    if args.out.suffix.lower() != '.png':
        raise UsageError(f'--out: expected a .png file name, got {args.out}')
    if args.out.exists() and not args.out.is_file():
        raise UsageError(f'--out: exists and is not a file: {args.out}')
    if getattr(args, 'slides', 1) < 1:
        raise UsageError(f'--slides must be >= 1, got {args.slides}')
    if getattr(args, 'batch_size', 1) < 1:
        raise UsageError(f'--batch-size must be >= 1, got {args.batch_size}')
    if getattr(args, 'labels', None) is not None and not args.labels.is_file():
        raise UsageError(f'--labels: file not found: {args.labels}')
    if getattr(args, 'method', None) == 'umap' and importlib.util.find_spec('umap') is None:
        raise UsageError('--method umap needs the umap-learn package (pip install umap-learn); '
                         'use --method pca')


def _open_store(args: argparse.Namespace, ckpt: dict, bank: PrototypeBank) -> FeatureStore:
    """The store of --store, else the one recorded in the checkpoint."""
    uri = args.store or checkpoint_store(ckpt)
    if uri is None:
        raise ValueError(f'{args.checkpoint} does not record its training store: pass --store')
    return open_bank_store(uri, bank, recorded=args.store is None)


def run_map(args: argparse.Namespace) -> None:
    """Write the prototype map of --slide beside its neighbour slide(s) to --out."""
    ckpt = load_checkpoint(args.checkpoint)
    loaded = load_bank(ckpt, args.checkpoint)
    store = _open_store(args, ckpt, loaded.bank)
    slide = resolve_slide(args.slide, store.slide_ids, store.num_slides)
    min_regions = prototype_settings(ckpt, args.checkpoint).min_regions
    plot_prototype_map(loaded.bank, slide, store.slides, store.coords(), args.out,
                       min_regions=min_regions,
                       read_masks=store.read_masks if store.has_holes else None)
    neighbors = [store.slide_ids[n] for n in loaded.bank.neighbors[slide].tolist() if n >= 0]
    print(f'{PROG}: wrote {args.out}: slide {store.slide_ids[slide]} beside '
          f'{", ".join(neighbors) or "no neighbour"}')


def run_projection(args: argparse.Namespace) -> None:
    """Write the 2-D projection of region embeddings and slide prototypes to --out.

    The regions of --slides slides spread over the store are embedded with the
    checkpoint's encoder, with the embedding output and crop that its prototype
    settings record.
    """
    ckpt = load_checkpoint(args.checkpoint)
    loaded = load_bank(ckpt, args.checkpoint)
    settings = prototype_settings(ckpt, args.checkpoint)
    store = _open_store(args, ckpt, loaded.bank)
    labels = (load_slide_labels(args.labels, args.label_col, store.slide_ids)
              if args.labels else None)
    model = build_model(ckpt, args.checkpoint)
    slides = spread_slides(np.flatnonzero(loaded.bank.valid.numpy()), args.slides)
    records = [store.slides[s] for s in slides]
    indices = np.concatenate([np.arange(r.offset, r.offset + r.count) for r in records])
    region_slides = np.repeat(slides, [r.count for r in records])
    embeddings = embed_regions(model, store, indices, output=settings.embedding,
                               crop=settings.crop, batch_size=args.batch_size)
    plot_projection(loaded.bank, store.slide_ids, slides, embeddings, indices, region_slides,
                    args.out, labels=labels, method=args.method)
    print(f'{PROG}: wrote {args.out}: {len(indices)} regions of {len(slides)} slide(s), '
          f'prototypes of {int(loaded.bank.valid.sum())} slides ({args.method})')


def run_graph(args: argparse.Namespace) -> None:
    """Write the slide-neighbour graph of --slides slides to --out.

    Without --store or --labels, a recorded store that can no longer be opened is not
    needed: slides are then named by their index.
    """
    ckpt = load_checkpoint(args.checkpoint)
    loaded = load_bank(ckpt, args.checkpoint)
    try:
        store = _open_store(args, ckpt, loaded.bank)
        slide_ids: list[str] | None = store.slide_ids
    except (StoreError, ValueError):
        if args.labels is not None or args.store is not None:
            raise
        slide_ids = None  # names by index; labels need the store's slide ids
    # with --labels the store opened (the error above is re-raised), so slide_ids is set
    labels = (load_slide_labels(args.labels, args.label_col, slide_ids)
              if args.labels and slide_ids is not None else None)
    slides = spread_slides(np.flatnonzero(loaded.bank.valid.numpy()), args.slides)
    if len(slides) == 0:
        raise ValueError(f'{args.checkpoint}: no slide has prototypes, so there is no graph')
    plot_neighbor_graph(loaded.bank, slide_ids, slides, args.out, labels=labels)
    edges = neighbor_edges(loaded.bank, slides)
    agree = (f', {same_label_fraction(edges, labels):.0%} of edges join slides of the '
             f'same {labels.column}' if labels is not None else '')
    print(f'{PROG}: wrote {args.out}: {len(slides)} slides, {len(edges)} edges{agree}')


def parse_and_run(argv: list[str] | None) -> None:
    """Parse and check ``argv``, create --out's folder and run the subcommand."""
    args = build_parser().parse_args(argv)
    validate(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    dict(map=run_map, projection=run_projection, graph=run_graph)[args.command](args)


def main(argv: list[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for a checkpoint without a bank or bad input.
    """
    return run_tool(PROG, lambda: parse_and_run(argv))


if __name__ == '__main__':
    sys.exit(main())
