"""Make synthetic region-feature data with known ground truth.

  store      a feature store of slides mixing latent tissue phenotypes (the demo
             configs' training data; ground_truth.npz gives every region's phenotype)
  benchmark  a synthetic WSI benchmark: slide labels depend on the composition of
             tissue phenotypes, regions carry texture, noise and a per-site shift,
             slide sizes follow real TCGA-BRCA region counts; writes the store plus a
             HIPT-format labels.csv and splits/ that tools/eval_slides.py reads unchanged
  trident    a store's slides as TRIDENT patch-feature files (a job folder), with holes
             and one 40x slide, for tools/ingest.py --format trident

See docs/evaluation.md for the benchmark's generative model.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Callable

from slpd_plugin.datasets.stores.base import STORE_DTYPES
from slpd_plugin.demo.synthetic import make_synthetic_store
from slpd_plugin.demo.synthetic_wsi import make_wsi_benchmark
from slpd_plugin.demo.tcga_region_counts import BRCA_REGION_COUNTS
from slpd_plugin.demo.trident_writer import store_to_trident
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'make_synthetic.py'
EXAMPLES = """\
examples:
  # the CPU demo's training store (what configs/demo_dino4k.py generates on first use)
  python tools/make_synthetic.py store data/demo_store --num-slides 40 --max-regions 40 \\
      --num-phenotypes 6 --phenotypes-per-slide 1 3

  # a benchmark at real TCGA-BRCA slide sizes (200 slides, ~10,800 regions, ~2.1 GB)
  python tools/make_synthetic.py benchmark data/wsi_bench

  # a small CPU benchmark, then evaluate embeddings on it
  python tools/make_synthetic.py benchmark data/wsi_small --num-slides 80 \\
      --region-scale 0.15 --test-frac 0.2
  python tools/eval_slides.py knn --embeddings EMB --csv data/wsi_small/labels.csv \\
      --splits data/wsi_small/splits --out results/wsi_small_knn

  # the benchmark's slides as TRIDENT patch features, ingested back as region grids
  python tools/make_synthetic.py trident data/wsi_small_trident --store data/wsi_small/store
  python tools/ingest.py data/wsi_small_trident --format trident --store data/wsi_small_patches
"""
HELP = {
    'num_slides': 'number of slides', 'channels': 'feature dim C of each grid cell',
    'min_regions': 'fewest regions per slide', 'max_regions': 'most regions per slide',
    'num_phenotypes': 'number of tissue phenotypes P',
    'phenotypes_per_slide': 'inclusive range of phenotypes mixed in one slide',
    'noise': 'std of i.i.d. cell noise', 'texture': 'amplitude of phenotype textures',
    'slide_shift': 'std of the per-slide feature shift',
    'site_shift': 'std of the per-site feature shift (batch effect)',
    'num_sites': 'tissue source sites', 'dtype': 'store dtype (float16 or float32)',
    'seed': 'random seed (same arguments, same bytes)',
    'enriched_per_class': 'phenotypes enriched in each class',
    'texture_twins': 'phenotype pairs (2j, 2j+1) that share a mean and differ in texture',
    'concentration': 'Dirichlet concentration of a non-enriched phenotype',
    'enrichment': "relative boost of a class's enriched phenotypes",
    'region_scale': 'factor on the real BRCA region counts (mean 54 regions per slide)',
    'num_folds': 'number of splits_k.csv', 'val_frac': 'share of each class in val',
    'test_frac': 'share of each class in test',
}


def _add_options(parser: argparse.ArgumentParser, func: Callable) -> None:
    """One ``--option`` per keyword argument of ``func``, default from its signature."""
    for name, param in inspect.signature(func).parameters.items():
        if name in ('path', 'progress'):
            continue
        default = param.default
        flag = '--' + name.replace('_', '-')
        text = f'{HELP[name]} (default: {default})'
        if isinstance(default, tuple):
            parser.add_argument(flag, type=type(default[0]), nargs=len(default),
                                default=default, metavar='N', help=text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=text,
                                choices=STORE_DTYPES if name == 'dtype' else None)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``store``, ``benchmark`` and ``trident`` subcommands.

    The options of ``store`` and ``benchmark`` are made from the keyword arguments (and
    defaults) of the functions that generate them.
    """
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    sub = parser.add_subparsers(dest='kind', required=True,
                                metavar='{store,benchmark,trident}')
    for kind, func, text in (('store', make_synthetic_store, 'region store of mixed '
                              'phenotypes'),
                             ('benchmark', make_wsi_benchmark, 'WSI benchmark with '
                              'composition-dependent labels')):
        p = sub.add_parser(kind, help=text, description=text, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument('path', type=Path, help='folder to create (must not exist)')
        p.add_argument('--no-progress', action='store_true', help='no progress bar')
        _add_options(p, func)
    text = "a store's slides as TRIDENT patch-feature files"
    p = sub.add_parser('trident', help=text, description=text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('path', type=Path, help='TRIDENT job folder to create (must not exist)')
    p.add_argument('--store', required=True, help='the store to convert (a folder or URI)')
    p.add_argument('--encoder', default='synthetic', help='encoder name (default: synthetic)')
    p.add_argument('--hole-fraction', type=float, default=0.1,
                   help='share of cells dropped in each region (default: 0.1)')
    p.add_argument('--slides-40x', type=int, default=1,
                   help='the first N slides are 40x scans extracted at 20x (default: 1)')
    p.add_argument('--seed', type=int, default=0, help='seed of the holes (default: 0)')
    return parser


def _trident(args: dict, path: Path) -> None:
    args.pop('no_progress', None)
    folder = store_to_trident(args.pop('store'), path, **args)
    print(f'wrote {folder}')


def _estimate_bytes(args: dict) -> tuple[int, int]:
    """Expected regions and store bytes."""
    if 'region_scale' in args:
        mean = max(args['min_regions'],
                   sum(BRCA_REGION_COUNTS) / len(BRCA_REGION_COUNTS) * args['region_scale'])
    else:
        mean = (args['min_regions'] + args['max_regions']) / 2
    regions = int(args['num_slides'] * mean)
    return regions, regions * args['channels'] * 256 * (2 if args['dtype'] == 'float16' else 4)


def parse_and_run(argv: list[str] | None) -> None:
    """Parse ``argv`` and write the requested synthetic data set to a new folder.

    For a store or benchmark it first prints the expected number of regions and size.
    """
    args = vars(build_parser().parse_args(argv))
    kind, path = args.pop('kind'), args.pop('path')
    if path.exists():
        raise UsageError(f'{path} exists; choose a new folder')
    if kind == 'trident':
        return _trident(args, path)
    progress = not args.pop('no_progress')
    regions, size = _estimate_bytes(args)
    print(f'writing a synthetic {kind} to {path}: about {regions:,} regions, '
          f'{size / 2 ** 30:.2f} GiB')
    func = make_synthetic_store if kind == 'store' else make_wsi_benchmark
    func(path, progress=progress, **args)
    print(f'wrote {path}')


def main(argv: list[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument (such as an existing folder), 1 for bad input.
    """
    return run_tool(PROG, lambda: parse_and_run(argv))

if __name__ == '__main__':
    sys.exit(main())
