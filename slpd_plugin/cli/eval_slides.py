"""Slide-level evaluation of region embeddings over HIPT's splits.

Protocols: KNN, linear probe, MIL, survival, few-shot and retrieval.

knn/linear/mil write, under --out: summary.csv (HIPT's columns, no index), results.json (per-split
metrics, mean ± std, counts of missing slides), predictions.csv (test probabilities) and
ROC curves (roc_fold{k}.png, roc_mean.png), with 95% bootstrap CIs of the test AUC and
balanced accuracy in results.json. survival/fewshot/retrieval take one or more
--embeddings [NAME=]DIR and write summary.csv and results.json per set (plus
comparison.md for several sets). report runs every protocol on several sets and the
raw-feature baselines and writes one report.md. See docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch

from slpd_plugin.datasets.labels import TASK_PRESETS, load_labels, parse_label_map
from slpd_plugin.evaluation.data.cohort import select_cohort
from slpd_plugin.evaluation.data.fractions import parse_fraction
from slpd_plugin.evaluation.data.splits import load_splits
from slpd_plugin.evaluation.data.survival_data import load_survival_labels, load_survival_splits
from slpd_plugin.evaluation.protocols.fewshot import DEFAULT_SHOTS, LINEAR_PRESETS
from slpd_plugin.evaluation.protocols.mil import MILConfig
from slpd_plugin.evaluation.protocols.retrieval import SIMILARITIES
from slpd_plugin.evaluation.protocols.survival import MIL_PROTOCOLS, CoxConfig
from slpd_plugin.evaluation.reporting.comparison_report import (
    REPORT_PROTOCOLS,
    SurvivalInputs,
    run_report,
)
from slpd_plugin.evaluation.reporting.report import format_table
from slpd_plugin.evaluation.reporting.runs import (
    run_classification,
    run_fewshot,
    run_retrieval,
    run_survival,
)
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool

PROG = 'eval_slides.py'
EXAMPLES = """\
examples:
  # HIPT's KNN on TCGA-BRCA, all training slides
  python tools/eval_slides.py knn --task tcga_brca \\
      --embeddings work_dirs/brca_emb --csv ../shared/data/hipt/tcga_brca_subset.csv \\
      --splits ../shared/data/hipt/splits/10foldcv_subtype/tcga_brca --out results/knn_brca

  # HIPT's "25%" KNN setting (which draws 10% of the training slides), and a true 25%
  python tools/eval_slides.py knn --task tcga_lung --fraction hipt10 ...
  python tools/eval_slides.py knn --task tcga_lung --fraction 0.25 ...

  # linear probe with a fixed C instead of choosing C on the val part
  python tools/eval_slides.py linear --task tcga_kidney --C 0.1 ...

  # gated-attention MIL, 20 epochs per split (minutes on CPU; --device cuda if available)
  python tools/eval_slides.py mil --task tcga_lung ...

  # survival (Cox, penalty chosen by inner CV on train) on HIPT's 5-fold survival splits
  python tools/eval_slides.py survival --embeddings ours=emb_slpd --embeddings dino=emb_dino \
      --csv ../shared/data/hipt/tcga_brca_subset.csv \
      --splits ../shared/data/hipt/splits/survival_5foldcv/tcga_brca --out results/surv_brca

  # few-shot (k = 1..32 per class, 50 draws) and retrieval, e.g. on a TRIDENT folder
  python tools/eval_slides.py fewshot --task tcga_lung \
      --embeddings titan=job/slide_features_titan ...
  python tools/eval_slides.py retrieval --task tcga_lung --embeddings emb_slpd ...

  # one report: two embedding sets, the raw-feature baselines of the store, survival
  python tools/eval_slides.py report --task tcga_brca --embeddings slpd=emb_slpd \
      --embeddings dino4k=emb_dino --store data/tcga_brca_store \
      --csv ../shared/data/hipt/tcga_brca_subset.csv \
      --splits ../shared/data/hipt/splits/10foldcv_subtype/tcga_brca \
      --survival-csv ../shared/data/hipt/tcga_brca_subset.csv \
      --survival-splits ../shared/data/hipt/splits/survival_5foldcv/tcga_brca \
      --out results/report_brca

  # any CSV with a label column (classes numbered in sorted order, or given explicitly)
  python tools/eval_slides.py knn --label-col label --label-map "neg:0,pos:1" \\
      --embeddings emb/ --csv bench.csv --splits bench_splits/ --out results/bench
"""


SINGLE = ('knn', 'linear', 'mil')  # one --embeddings folder, HIPT's classification
MULTI = ('survival', 'fewshot', 'retrieval', 'report')  # one or more NAME=DIR sets

#: subcommand -> (one-line help, description)
COMMANDS = {
    'knn': ("HIPT's protocol: sklearn KNeighborsClassifier() defaults (k=5)",
            'KNN (scikit-learn defaults: k=5, uniform, Euclidean) on mean-pooled slide '
            'embeddings, fit on train, scored on test (and val).'),
    'linear': ('logistic-regression probe on standardised embeddings',
               'StandardScaler + LogisticRegression(max_iter=1000) on mean-pooled slide '
               'embeddings; C chosen per split by val AUC unless --C is given.'),
    'mil': ('gated-attention MIL trained per split (slow on CPU)',
            'Gated-attention MIL over the region embeddings of each slide, trained per '
            'split on train (class-balanced sampling, Adam), the epoch with the best val '
            'AUC kept, scored on test.'),
    'survival': ("c-index on HIPT's 5-fold survival splits (Cox or MIL)",
                 'Per patient (slides of a case pooled): elastic-net Cox on the mean '
                 'embedding with the penalty chosen by inner CV on train (--model cox), or '
                 'attention MIL with the discrete-time NLL loss (--model mil); '
                 "Harrell's c-index on val per fold."),
    'fewshot': ('k-shot SimpleShot and logistic regression, many draws',
                'k slides per class drawn from each train part, SimpleShot and logistic '
                'regression scored on test.'),
    'retrieval': ('slide retrieval, test against train: Acc@1/3/5, MVAcc@3/5',
                  'Each test slide retrieves the train slides of its split by L2 distance '
                  '(Patho-Bench) or cosine similarity of the slide embeddings.'),
    'report': ('all protocols, several embedding sets and raw-feature baselines, one '
               'markdown report with CIs and plots',
               'Runs knn, linear, mil, fewshot and retrieval (and Cox survival with '
               '--survival-csv/--survival-splits) on every --embeddings set, plus the '
               'raw-feature baselines of --store (mean-pooled raw features, and a '
               'supervised FEATHER-like ABMIL), and writes report.md, report.json and '
               'PNGs into --out.'),
}


#: The path flags every subcommand takes: (flag, metavar, help)
INPUTS = (
    ('--csv', 'FILE', 'dataset CSV with a slide_id column (".svs" optional) and a label '
                      'column (survival: case_id, slide_id, survival_months, censorship '
                      'with 1 = censored)'),
    ('--splits', 'DIR', 'folder of HIPT split files splits_{k}.csv (train,val,test; '
                        'survival: train,val case ids)'),
    ('--out', 'DIR', 'output folder (created; existing files are overwritten)'),
)


def _inputs(protocol: str) -> ToolParser:
    """--embeddings, --csv, --splits, --out, --seed and (but for survival) the labels."""
    parent = ToolParser(add_help=False)
    io = parent.add_argument_group('inputs and output')
    if protocol in SINGLE:
        io.add_argument('--embeddings', required=True, type=Path, metavar='DIR',
                        help='folder of {slide_id}.pt files, each a tensor (N, D) of region '
                             'embeddings or a dict with key "features"; mean-pooled per slide')
    else:
        io.add_argument('--embeddings', required=True, action='append', metavar='[NAME=]DIR',
                        help='folder of per-slide {slide_id}.pt or .h5 files (region '
                             'embeddings (N, D) or slide embeddings (D,), e.g. a TRIDENT '
                             'slide_features_<encoder>/ folder); repeat as NAME=DIR to '
                             'compare sets on the same splits')
    for flag, metavar, text in INPUTS:
        io.add_argument(flag, required=True, type=Path, metavar=metavar, help=text)
    parent.add_argument('--seed', type=int, default=0,
                        help='seed (of the training subsample: split k uses [seed, k]; of '
                             'the bootstrap, MIL and few-shot draws) (default: 0)')
    if protocol != 'survival':
        _label_args(parent)
    return parent


def _label_args(parser: argparse.ArgumentParser) -> None:
    lab = parser.add_argument_group('labels')
    lab.add_argument('--task', choices=sorted(TASK_PRESETS),
                     help="HIPT's subtyping label map: tcga_brca IDC:0,ILC:1 (other codes "
                          'dropped); tcga_lung LUAD:0,LUSC:1; tcga_kidney '
                          'CCRCC:0,PRCC:1,CHRCC:2')
    lab.add_argument('--label-col', default=None, metavar='COL',
                     help='label column when --task is not given (default: oncotree_code)')
    lab.add_argument('--label-map', default=None, metavar='MAP',
                     help='"A:0,B:1", JSON \'{"A": 0, "B": 1}\' or "A,B"; rows with other '
                          'values are dropped (default: every distinct value, sorted)')
    lab.add_argument('--slide-col', default='slide_id', metavar='COL',
                     help='slide id column (default: slide_id)')


def _mil_args(parser: argparse.ArgumentParser, what: str = '') -> None:
    """MIL training flags (``what``: 'MIL ' where the protocol trains more than MIL)."""
    parser.add_argument('--epochs', type=int, default=20, help=f'{what}epochs (default: 20)')
    parser.add_argument('--lr', type=float, default=2e-4,
                        help=f'{what}Adam lr (default: 2e-4)')
    parser.add_argument('--weight-decay', type=float, default=1e-5,
                        help=f'{what}Adam weight decay (default: 1e-5)')
    parser.add_argument('--device', default='cpu', help=f'{what}torch device (default: cpu)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar (splits x epochs; report: protocols x sets) on '
                             'stderr')


def _bootstrap_arg(parser: argparse._ActionsContainer, what: str) -> None:
    """--bootstrap on ``parser`` or an argument group (their common base class)."""
    parser.add_argument('--bootstrap', type=int, default=1000, metavar='B',
                        help=f'bootstrap resamples of the test {what} (default: 1000)')


def _fewshot_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--shots', type=int, nargs='+', default=list(DEFAULT_SHOTS),
                        metavar='K', help='few-shot k values (default: 1 2 4 8 16 32)')
    parser.add_argument('--draws', type=int, default=50,
                        help='few-shot draws per split and k (default: 50)')


def _fewshot_protocol_args(parser: argparse.ArgumentParser) -> None:
    _fewshot_args(parser)
    parser.add_argument('--linear', choices=sorted(LINEAR_PRESETS), default='pathobench',
                        help="few-shot logistic-regression settings: pathobench (Patho-Bench's "
                             'linear probe: C=0.5, balanced class weights, raw embeddings) or '
                             'cl2n (C=1, no class weights, CL2N embeddings) (default: '
                             'pathobench)')


def _retrieval_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--similarity', choices=SIMILARITIES, default='l2',
                        help="l2: L2 distance without centring (Patho-Bench's default); "
                             'cosine: cosine similarity (default: l2)')


def _classification_args(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group('protocol')
    run.add_argument('--fraction', default='1.0', metavar='F',
                     help='share of each training part used: a number in (0, 1], or '
                          "'hipt10' = HIPT's '25%%' setting, which draws 10%% of the "
                          'training slides (default: 1.0)')
    run.add_argument('--roc', choices=('all', 'mean', 'none'), default='all',
                     help='ROC PNGs: per split and mean, mean only, or none (default: all)')
    _bootstrap_arg(run, 'slides for the 95%% CIs of the test AUC and balanced accuracy; '
                        '0 = none')


def _linear_args(parser: argparse.ArgumentParser) -> None:
    _classification_args(parser)
    parser.add_argument('--C', type=float, default=None,
                        help='fixed inverse regularisation strength (default: choose from '
                             '1e-4..1e2 by val AUC per split)')


def _mil_protocol_args(parser: argparse.ArgumentParser) -> None:
    _classification_args(parser)
    _mil_args(parser)
    parser.add_argument('--model', choices=['abmil', 'transformer'], default='abmil',
                        help='gated-attention MIL, or the HIPT-style slide transformer '
                             '(default: abmil)')


def _survival_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model', choices=('cox', 'mil'), default='cox',
                        help='cox (default) or mil')
    parser.add_argument('--l1-ratio', type=float, default=0.5,
                        help='Cox elastic-net mixing in (0, 1] (default: 0.5)')
    parser.add_argument('--inner-folds', type=int, default=5,
                        help='inner CV folds choosing the Cox penalty (default: 5)')
    _mil_args(parser, 'MIL ')
    parser.add_argument('--protocol', dest='survival_protocol', choices=MIL_PROTOCOLS,
                        default='default',
                        help="MIL recipe: default (bins on each split's train cases, "
                             'right-closed, uniform sampling: no leakage) or hipt (HIPT/MCAT: '
                             'bins from the uncensored times of the whole CSV, left-closed, '
                             'class-balanced weighted sampling) (default: default)')
    parser.add_argument('--alpha-surv', type=float, default=0.0,
                        help="MIL: the NLL loss's alpha, extra weight of uncensored cases, "
                             "in [0, 1] (HIPT's --alpha_surv; default: 0)")
    _bootstrap_arg(parser, 'patients')


def _report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--protocols', nargs='+', choices=REPORT_PROTOCOLS,
                        default=list(REPORT_PROTOCOLS), metavar='P',
                        help='any of knn linear mil fewshot retrieval (default: all)')
    parser.add_argument('--store', default=None, metavar='STORE',
                        help='feature store (path or redis:// URI) whose raw region '
                             'features give the raw_features baselines')
    parser.add_argument('--survival-csv', type=Path, default=None, metavar='FILE',
                        help="survival labels in HIPT's convention (case_id, slide_id, "
                             'survival_months, censorship)')
    parser.add_argument('--survival-splits', type=Path, default=None, metavar='DIR',
                        help="HIPT's 5-fold survival splits (train,val case ids)")
    _mil_args(parser, 'MIL ')
    _fewshot_args(parser)
    _bootstrap_arg(parser, 'slides')


#: subcommand -> its own flags
PROTOCOL_ARGS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    'knn': _classification_args, 'linear': _linear_args, 'mil': _mil_protocol_args,
    'survival': _survival_args, 'fewshot': _fewshot_protocol_args, 'retrieval': _retrieval_args,
    'report': _report_args,
}


def build_parser() -> argparse.ArgumentParser:
    """The parser: one subcommand per protocol, each with the shared inputs and its own flags."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    sub = parser.add_subparsers(dest='protocol', required=True,
                                metavar='{' + ','.join(COMMANDS) + '}')
    for name, (short, description) in COMMANDS.items():
        PROTOCOL_ARGS[name](sub.add_parser(
            name, parents=[_inputs(name)], epilog=EXAMPLES, help=short,
            description=description, formatter_class=argparse.RawDescriptionHelpFormatter))
    return parser


def label_spec(args: argparse.Namespace) -> tuple[str, dict[str, int] | None]:
    """The label column and map of --task, or of --label-col/--label-map."""
    if args.task:
        preset = TASK_PRESETS[args.task]
        return preset.label_col, dict(preset.label_map)
    return args.label_col or 'oncotree_code', args.label_map


def parse_sets(values: list[str]) -> dict[str, Path]:
    """``[NAME=]DIR`` values -> name -> folder (name defaults to the folder's name)."""
    sets: dict[str, Path] = {}
    for value in values:
        name, sep, folder = value.partition('=')
        if not sep:
            name, folder = Path(value).name, value
        path = Path(folder)
        if not name or name in sets:
            raise UsageError(f'--embeddings {value!r}: empty or repeated name {name!r}')
        if not path.is_dir() or not (any(path.glob('*.pt')) or any(path.glob('*.h5'))):
            raise UsageError(f'--embeddings {value!r}: not a folder of .pt/.h5 files')
        sets[name] = path
    return sets


def report_survival(args: argparse.Namespace) -> SurvivalInputs | None:
    """The survival inputs of ``report``, or None without them.

    Raises:
        UsageError: If only one of --survival-csv and --survival-splits is given, or
            the file or folder does not exist.
    """
    csv_path, split_dir = args.survival_csv, args.survival_splits
    if (csv_path is None) != (split_dir is None):
        raise UsageError('--survival-csv and --survival-splits go together')
    if csv_path is None:
        return None
    if not csv_path.is_file():
        raise UsageError(f'--survival-csv: file not found: {csv_path}')
    if not split_dir.is_dir():
        raise UsageError(f'--survival-splits: not a folder: {split_dir}')
    return SurvivalInputs(load_survival_labels(csv_path), load_survival_splits(split_dir))


#: flag -> (whether a value is valid, what is needed); checked where a protocol has it
LIMITS: dict[str, tuple[Callable[[float], bool], str]] = {
    'epochs': (lambda v: v >= 1, '>= 1'),
    'lr': (lambda v: v > 0, '> 0'),
    'weight_decay': (lambda v: v >= 0, '>= 0'),
    'l1_ratio': (lambda v: 0 < v <= 1, 'in (0, 1]'),
    'inner_folds': (lambda v: v >= 2, '>= 2'),
    'draws': (lambda v: v >= 1, '>= 1'),
    'C': (lambda v: v > 0, '> 0'),
    'alpha_surv': (lambda v: 0 <= v <= 1, 'in [0, 1]'),
}


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if args.protocol in SINGLE:
        if not args.embeddings.is_dir():
            raise UsageError(f'--embeddings: not a folder: {args.embeddings}')
        if not any(args.embeddings.glob('*.pt')) and not any(args.embeddings.glob('*.h5')):
            raise UsageError(f'--embeddings: no .pt or .h5 files in {args.embeddings}')
    else:
        args.sets = parse_sets(args.embeddings)
    if not args.csv.is_file():
        raise UsageError(f'--csv: file not found: {args.csv}')
    if not args.splits.is_dir():
        raise UsageError(f'--splits: not a folder: {args.splits}')
    if not list(args.splits.glob('splits_*.csv')):
        raise UsageError(f'--splits: no splits_<k>.csv files in {args.splits}')
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f'--out: exists and is not a folder: {args.out}')
    if args.protocol != 'survival' and args.task and (args.label_map or args.label_col):
        raise UsageError('--task sets the label column and map; drop --label-col/--label-map '
                         'or drop --task')
    for name, (valid, needed) in LIMITS.items():
        value = getattr(args, name, None)
        if value is not None and not valid(value):
            raise UsageError(f'--{name.replace("_", "-")} must be {needed}, got {value}')
    least = 1 if args.protocol in MULTI else 0  # 0 = no CIs, for knn/linear/mil only
    if getattr(args, 'bootstrap', least) < least:
        raise UsageError(f'--bootstrap must be >= {least}, got {args.bootstrap}')
    if getattr(args, 'device', 'cpu').startswith('cuda') and not torch.cuda.is_available():
        raise UsageError(f'--device {args.device}: CUDA is not available')
    try:
        if args.protocol in SINGLE:
            args.fraction = parse_fraction(args.fraction)
        if getattr(args, 'label_map', None):
            args.label_map = parse_label_map(args.label_map)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.protocol == 'survival' and args.model != 'mil' and (
            args.survival_protocol != 'default' or args.alpha_surv):
        raise UsageError('--protocol and --alpha-surv set how the MIL model is trained: use '
                         'them with --model mil')
    args.survival = report_survival(args) if args.protocol == 'report' else None


def run_single(args: argparse.Namespace) -> str:
    """Run knn, linear or mil on one embeddings folder; return the text to print.

    Checks the cohort (labelled split slides with and without embeddings), runs the
    protocol, writes its files under --out and returns the results table with the
    bootstrap CIs.
    """
    label_col, label_map = label_spec(args)
    table = load_labels(args.csv, label_col, label_map, slide_col=args.slide_col)
    splits = load_splits(args.splits)
    cohort = select_cohort(table, splits, args.embeddings, csv=args.csv,
                           splits_dir=args.splits, label_map=label_map)
    wanted, unlabelled, missing = cohort.wanted, cohort.unlabelled, cohort.missing
    mil = (MILConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                     device=args.device, model=args.model, progress=not args.no_progress)
           if args.protocol == 'mil' else None)
    run = run_classification(args.protocol, args.embeddings, table, splits, args.out, wanted,
                             fraction=args.fraction, seed=args.seed,
                             C=getattr(args, 'C', None), mil=mil, roc=args.roc,
                             num_resamples=args.bootstrap, extra={
        'task': args.task, 'csv': str(args.csv), 'splits': str(args.splits),
        'label_col': label_col,
        'label_map': {name: i for i, name in enumerate(table.class_names)},
        'class_counts': table.class_counts(),
        'num_labelled_slides': len(table.labels),
        'num_labelled_in_splits': len(wanted),
        'missing_embeddings': missing.as_dict(),
        'unlabelled_split_ids': {'count': len(unlabelled), 'first': sorted(unlabelled)[:5]},
    })
    title = (f'{args.protocol} | task {args.task or label_col} | classes '
             f'{table.class_names} | train fraction {args.fraction.spec} '
             f'({args.fraction.description}) | {len(splits)} splits | '
             f'{run.num_evaluated}/{len(wanted)} labelled split slides with embeddings, '
             f'{missing.count} missing')
    lines = [format_table(run.result, title)]
    lines += [f'{name}: fold mean {ci} (95 % bootstrap CI, {ci.num_resamples} resamples '
              'of the test slides)' for name, ci in run.cis.items()]
    return '\n'.join(lines + [f'wrote {args.out}/summary.csv, results.json, predictions.csv '
                              f'and {len(run.pngs)} ROC PNG(s)'])


def run_sets(args: argparse.Namespace) -> str:
    """Run survival, fewshot, retrieval or report on the embedding sets; return the text.

    Writes each protocol's files under --out (created) and returns the lines it prints.
    """
    args.out.mkdir(parents=True, exist_ok=True)
    if args.protocol == 'survival':
        text = run_survival(args.sets, load_survival_labels(args.csv),
                            load_survival_splits(args.splits), args.out, args.model,
                            CoxConfig(l1_ratio=args.l1_ratio, inner_folds=args.inner_folds,
                                      progress=not args.no_progress),
                            MILConfig(epochs=args.epochs, lr=args.lr,
                                      weight_decay=args.weight_decay, device=args.device,
                                      progress=not args.no_progress),
                            seed=args.seed, num_resamples=args.bootstrap,
                            mil_protocol=args.survival_protocol, alpha=args.alpha_surv)
        return f'{text}\nwrote {args.out}'
    label_col, label_map = label_spec(args)
    table = load_labels(args.csv, label_col, label_map, slide_col=args.slide_col)
    splits = load_splits(args.splits)
    if args.protocol == 'fewshot':
        text = run_fewshot(args.sets, table, splits, args.out, args.shots, args.draws,
                           args.seed, args.linear)
    elif args.protocol == 'report':
        text = 'wrote ' + run_report(
            args.sets, table, splits, args.out, args.protocols, args.store, args.survival,
            MILConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                      device=args.device, progress=not args.no_progress),
            args.shots, args.draws, args.bootstrap, args.seed, progress=not args.no_progress)
    else:
        text = run_retrieval(args.sets, table, splits, args.out, args.similarity)
    return f'{text}\nwrote {args.out}'


def parse_and_run(argv: list[str] | None) -> int:
    """Parse and check ``argv``, run the protocol, print its results. Returns 0."""
    args = build_parser().parse_args(argv)
    validate(args)
    print(run_single(args) if args.protocol in SINGLE else run_sets(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation on ``argv`` (default: ``sys.argv[1:]``); return its exit status.

    0 on success, 2 for a bad argument, 1 for bad input (labels, splits, embeddings).
    """
    return run_tool(PROG, lambda: parse_and_run(argv))


if __name__ == '__main__':
    sys.exit(main())
