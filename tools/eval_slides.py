"""Slide-level evaluation of region embeddings over HIPT's splits (KNN, linear probe, MIL,
survival, few-shot, retrieval).

knn/linear/mil write, under --out: summary.csv (HIPT's layout), results.json (per-split
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

try:
    import slpd_plugin  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from slpd_plugin.evaluation import (  # noqa: E402
    TASK_PRESETS,
    MILConfig,
    evaluate_mil,
    evaluate_splits,
    format_table,
    load_bags,
    load_labels,
    load_slide_embeddings,
    load_splits,
    parse_fraction,
    parse_label_map,
    write_json,
    write_predictions,
    write_roc_plots,
    write_summary_csv,
)
from slpd_plugin.evaluation.cohort import select_cohort  # noqa: E402
from slpd_plugin.evaluation.comparison_report import (  # noqa: E402
    REPORT_PROTOCOLS,
    SurvivalInputs,
    run_report,
)
from slpd_plugin.evaluation.fewshot import DEFAULT_SHOTS  # noqa: E402
from slpd_plugin.evaluation.jobs import run_fewshot, run_retrieval, run_survival  # noqa: E402
from slpd_plugin.evaluation.statistics import classification_cis  # noqa: E402
from slpd_plugin.evaluation.survival import CoxConfig  # noqa: E402
from slpd_plugin.evaluation.survival_data import load_survival_labels, load_survival_splits  # noqa: E402
from slpd_plugin.utils.cli import ToolParser, UsageError, run_tool  # noqa: E402

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


def _add_label_args(parser: argparse.ArgumentParser) -> None:
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


def _multi_parent(labels: bool) -> argparse.ArgumentParser:
    """Inputs of survival/fewshot/retrieval: several embedding sets side by side."""
    parent = argparse.ArgumentParser(add_help=False)
    io = parent.add_argument_group('inputs and output')
    io.add_argument('--embeddings', required=True, action='append', metavar='[NAME=]DIR',
                    help='folder of per-slide {slide_id}.pt or .h5 files (region embeddings '
                         '(N, D) or slide embeddings (D,), e.g. a TRIDENT '
                         'slide_features_<encoder>/ folder); repeat as NAME=DIR to compare '
                         'sets on the same splits')
    io.add_argument('--csv', required=True, type=Path, metavar='FILE',
                    help='dataset CSV (survival: case_id, slide_id, survival_months, '
                         'censorship with 1 = censored)')
    io.add_argument('--splits', required=True, type=Path, metavar='DIR',
                    help='folder of splits_{k}.csv (survival: train,val case ids)')
    io.add_argument('--out', required=True, type=Path, metavar='DIR',
                    help='output folder (created; existing files are overwritten)')
    parent.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
    if labels:
        _add_label_args(parent)
    return parent


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    io = common.add_argument_group('inputs and output')
    io.add_argument('--embeddings', required=True, type=Path, metavar='DIR',
                    help='folder of {slide_id}.pt files, each a tensor (N, D) of region '
                         'embeddings or a dict with key "features"; mean-pooled per slide')
    io.add_argument('--csv', required=True, type=Path, metavar='FILE',
                    help='dataset CSV with a slide_id column (".svs" optional) and a '
                         'label column')
    io.add_argument('--splits', required=True, type=Path, metavar='DIR',
                    help='folder of HIPT split files splits_{k}.csv (train,val,test)')
    io.add_argument('--out', required=True, type=Path, metavar='DIR',
                    help='output folder (created; existing files are overwritten)')
    _add_label_args(common)
    run = common.add_argument_group('protocol')
    run.add_argument('--fraction', default='1.0', metavar='F',
                     help='share of each training part used: a number in (0, 1], or '
                          "'hipt10' = HIPT's '25%%' setting, which draws 10%% of the "
                          'training slides (default: 1.0)')
    run.add_argument('--seed', type=int, default=0,
                     help='seed of the training subsample; split k uses [seed, k] '
                          '(default: 0)')
    run.add_argument('--roc', choices=('all', 'mean', 'none'), default='all',
                     help='ROC PNGs: per split and mean, mean only, or none (default: all)')
    run.add_argument('--bootstrap', type=int, default=1000, metavar='B',
                     help='bootstrap resamples of the test slides for the 95%% CIs of the '
                          'test AUC and balanced accuracy; 0 = none (default: 1000)')

    parser = ToolParser(prog=PROG, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='protocol', required=True,
                                metavar='{knn,linear,mil,survival,fewshot,retrieval,report}')
    sub.add_parser('knn', parents=[common], epilog=EXAMPLES,
                   formatter_class=argparse.RawDescriptionHelpFormatter,
                   help="HIPT's protocol: sklearn KNeighborsClassifier() defaults (k=5)",
                   description='KNN (scikit-learn defaults: k=5, uniform, Euclidean) on '
                               'mean-pooled slide embeddings, fit on train, scored on '
                               'test (and val).')
    lin = sub.add_parser('linear', parents=[common], epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         help='logistic-regression probe on standardised embeddings',
                         description='StandardScaler + LogisticRegression(max_iter=1000) '
                                     'on mean-pooled slide embeddings; C chosen per split '
                                     'by val AUC unless --C is given.')
    lin.add_argument('--C', type=float, default=None,
                     help='fixed inverse regularisation strength (default: choose from '
                          '1e-4..1e2 by val AUC per split)')
    mil = sub.add_parser('mil', parents=[common], epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         help='gated-attention MIL trained per split (slow on CPU)',
                         description='Gated-attention MIL over the region embeddings of '
                                     'each slide, trained per split on train (class-'
                                     'balanced sampling, Adam), the epoch with the best '
                                     'val AUC kept, scored on test.')
    mil.add_argument('--epochs', type=int, default=20, help='epochs (default: 20)')
    mil.add_argument('--lr', type=float, default=2e-4, help='Adam lr (default: 2e-4)')
    mil.add_argument('--weight-decay', type=float, default=1e-5,
                     help='Adam weight decay (default: 1e-5)')
    mil.add_argument('--device', default='cpu', help="torch device (default: cpu)")
    mil.add_argument('--no-progress', action='store_true',
                     help='no progress bar (splits x epochs) on stderr')
    mil.add_argument('--model', choices=['abmil', 'transformer'], default='abmil',
                     help='gated-attention MIL, or the HIPT-style slide transformer '
                     '(default: abmil)')
    surv = sub.add_parser('survival', parents=[_multi_parent(False)], epilog=EXAMPLES,
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          help="c-index on HIPT's 5-fold survival splits (Cox or MIL)",
                          description='Per patient (slides of a case pooled): elastic-net '
                                      'Cox on the mean embedding with the penalty chosen by '
                                      'inner CV on train (--model cox), or attention MIL '
                                      'with the discrete-time NLL loss (--model mil); '
                                      "Harrell's c-index on val per fold.")
    surv.add_argument('--model', choices=('cox', 'mil'), default='cox',
                      help='cox (default) or mil')
    surv.add_argument('--l1-ratio', type=float, default=0.5,
                      help='Cox elastic-net mixing in (0, 1] (default: 0.5)')
    surv.add_argument('--inner-folds', type=int, default=5,
                      help='inner CV folds choosing the Cox penalty (default: 5)')
    surv.add_argument('--epochs', type=int, default=20, help='MIL epochs (default: 20)')
    surv.add_argument('--lr', type=float, default=2e-4, help='MIL Adam lr (default: 2e-4)')
    surv.add_argument('--weight-decay', type=float, default=1e-5,
                      help='MIL Adam weight decay (default: 1e-5)')
    surv.add_argument('--device', default='cpu', help='MIL torch device (default: cpu)')
    surv.add_argument('--no-progress', action='store_true',
                      help='no progress bar (splits, or splits x epochs) on stderr')
    surv.add_argument('--bootstrap', type=int, default=1000, metavar='B',
                      help='bootstrap resamples of the test patients (default: 1000)')
    few = sub.add_parser('fewshot', parents=[_multi_parent(True)], epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         help='k-shot SimpleShot and logistic regression, many draws',
                         description='k slides per class drawn from each train part, '
                                     'SimpleShot and logistic regression scored on test.')
    few.add_argument('--shots', type=int, nargs='+', default=list(DEFAULT_SHOTS),
                     metavar='K', help='k values (default: 1 2 4 8 16 32)')
    few.add_argument('--draws', type=int, default=50,
                     help='random draws per split and k (default: 50)')
    sub.add_parser('retrieval', parents=[_multi_parent(True)], epilog=EXAMPLES,
                   formatter_class=argparse.RawDescriptionHelpFormatter,
                   help='cosine slide retrieval, test against train: Acc@1/3/5, MVAcc@5',
                   description='Each test slide retrieves the train slides of its split '
                               'by cosine similarity of the slide embeddings.')
    rep = sub.add_parser('report', parents=[_multi_parent(True)], epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         help='all protocols, several embedding sets and raw-feature '
                              'baselines, one markdown report with CIs and plots',
                         description='Runs knn, linear, mil, fewshot and retrieval (and Cox '
                                     'survival with --survival-csv/--survival-splits) on '
                                     'every --embeddings set, plus the raw-feature '
                                     'baselines of --store (mean-pooled raw features, and '
                                     'a supervised FEATHER-like ABMIL), and writes '
                                     'report.md, report.json and PNGs into --out.')
    rep.add_argument('--protocols', nargs='+', choices=REPORT_PROTOCOLS,
                     default=list(REPORT_PROTOCOLS), metavar='P',
                     help='any of knn linear mil fewshot retrieval (default: all)')
    rep.add_argument('--store', default=None, metavar='STORE',
                     help='feature store (path or redis:// URI) whose raw region features '
                          'give the raw_features baselines')
    rep.add_argument('--survival-csv', type=Path, default=None, metavar='FILE',
                     help="survival labels in HIPT's convention (case_id, slide_id, "
                          'survival_months, censorship)')
    rep.add_argument('--survival-splits', type=Path, default=None, metavar='DIR',
                     help="HIPT's 5-fold survival splits (train,val case ids)")
    rep.add_argument('--epochs', type=int, default=20, help='MIL epochs (default: 20)')
    rep.add_argument('--lr', type=float, default=2e-4, help='MIL Adam lr (default: 2e-4)')
    rep.add_argument('--device', default='cpu', help='MIL torch device (default: cpu)')
    rep.add_argument('--shots', type=int, nargs='+', default=list(DEFAULT_SHOTS),
                     metavar='K', help='few-shot k values (default: 1 2 4 8 16 32)')
    rep.add_argument('--draws', type=int, default=50,
                     help='few-shot draws per split and k (default: 50)')
    rep.add_argument('--bootstrap', type=int, default=1000, metavar='B',
                     help='bootstrap resamples of the test slides (default: 1000)')
    rep.add_argument('--no-progress', action='store_true',
                     help='no progress bar (protocols x sets, MIL epochs) on stderr')
    return parser


MULTI = ('survival', 'fewshot', 'retrieval', 'report')


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
    """The survival inputs of ``report``: both --survival-csv and --survival-splits, or
    neither."""
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


def run_multi(args: argparse.Namespace) -> int:
    """survival / fewshot / retrieval / report: read, call the package, print."""
    sets = parse_sets(args.embeddings)
    if not args.csv.is_file():
        raise UsageError(f'--csv: file not found: {args.csv}')
    if not args.splits.is_dir():
        raise UsageError(f'--splits: not a folder: {args.splits}')
    if args.protocol == 'report':
        survival = report_survival(args)
        if args.bootstrap < 1 or args.epochs < 1 or args.draws < 1:
            raise UsageError('need --bootstrap >= 1, --epochs >= 1 and --draws >= 1')
    args.out.mkdir(parents=True, exist_ok=True)
    if args.protocol == 'survival':
        if not 0 < args.l1_ratio <= 1 or args.inner_folds < 2 or args.epochs < 1:
            raise UsageError('need 0 < --l1-ratio <= 1, --inner-folds >= 2, --epochs >= 1')
        text = run_survival(sets, load_survival_labels(args.csv),
                            load_survival_splits(args.splits), args.out, args.model,
                            CoxConfig(l1_ratio=args.l1_ratio, inner_folds=args.inner_folds,
                                      progress=not args.no_progress),
                            MILConfig(epochs=args.epochs, lr=args.lr,
                                      weight_decay=args.weight_decay, device=args.device,
                                      progress=not args.no_progress),
                            seed=args.seed, num_resamples=args.bootstrap)
    else:
        if args.task and (args.label_map or args.label_col):
            raise UsageError('--task sets the label column and map; drop --label-col/'
                             '--label-map or drop --task')
        if args.label_map:
            args.label_map = parse_label_map(args.label_map)
        label_col, label_map = label_spec(args)
        table = load_labels(args.csv, label_col, label_map, slide_col=args.slide_col)
        splits = load_splits(args.splits)
        if args.protocol == 'fewshot':
            text = run_fewshot(sets, table, splits, args.out, args.shots, args.draws,
                               args.seed)
        elif args.protocol == 'report':
            text = 'wrote ' + run_report(sets, table, splits, args.out, args.protocols,
                                         args.store, survival,
                                         MILConfig(epochs=args.epochs, lr=args.lr,
                                                   device=args.device,
                                                   progress=not args.no_progress),
                                         args.shots, args.draws, args.bootstrap, args.seed,
                                         progress=not args.no_progress)
        else:
            text = run_retrieval(sets, table, splits, args.out)
    print(text)
    print(f'wrote {args.out}')
    return 0


def validate(args: argparse.Namespace) -> None:
    """Check the arguments before any work; raise UsageError on the first problem."""
    if not args.embeddings.is_dir():
        raise UsageError(f'--embeddings: not a folder: {args.embeddings}')
    if not any(args.embeddings.glob('*.pt')) and not any(args.embeddings.glob('*.h5')):
        raise UsageError(f'--embeddings: no .pt or .h5 files in {args.embeddings}')
    if not args.csv.is_file():
        raise UsageError(f'--csv: file not found: {args.csv}')
    if not args.splits.is_dir():
        raise UsageError(f'--splits: not a folder: {args.splits}')
    if not list(args.splits.glob('splits_*.csv')):
        raise UsageError(f'--splits: no splits_<k>.csv files in {args.splits}')
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f'--out: exists and is not a folder: {args.out}')
    if args.task and (args.label_map or args.label_col):
        raise UsageError('--task sets the label column and map; drop --label-col/--label-map '
                         'or drop --task')
    try:
        args.fraction = parse_fraction(args.fraction)
        args.label_map = parse_label_map(args.label_map) if args.label_map else None
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.protocol == 'mil':
        if args.epochs < 1:
            raise UsageError(f'--epochs must be >= 1, got {args.epochs}')
        if not args.lr > 0 or args.weight_decay < 0:
            raise UsageError(f'--lr must be > 0 and --weight-decay >= 0, got {args.lr}, '
                             f'{args.weight_decay}')
        if args.device.startswith('cuda') and not torch.cuda.is_available():
            raise UsageError(f'--device {args.device}: CUDA is not available')
    if args.bootstrap < 0:
        raise UsageError(f'--bootstrap must be >= 0, got {args.bootstrap}')
    if getattr(args, 'C', None) is not None and not args.C > 0:
        raise UsageError(f'--C must be > 0, got {args.C}')


def run(args: argparse.Namespace) -> int:
    out = args.out
    label_col, label_map = label_spec(args)
    table = load_labels(args.csv, label_col, label_map, slide_col=args.slide_col)
    splits = load_splits(args.splits)
    cohort = select_cohort(table, splits, args.embeddings, csv=args.csv,
                           splits_dir=args.splits, label_map=label_map)
    wanted, unlabelled, missing = cohort.wanted, cohort.unlabelled, cohort.missing
    if args.protocol == 'mil':
        bags = load_bags(args.embeddings, wanted)
        num_evaluated, dim = len(bags), next(iter(bags.values())).shape[1]
        config = MILConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                           device=args.device, model=args.model,
                           progress=not args.no_progress)
        result = evaluate_mil(bags, table.labels, splits, table.num_classes,
                              table.class_names, args.fraction, seed=args.seed,
                              config=config)
    else:
        embeddings = load_slide_embeddings(args.embeddings, wanted)
        num_evaluated, dim = len(embeddings), embeddings.dim
        result = evaluate_splits(args.protocol, embeddings, table.labels, splits,
                                 table.num_classes, table.class_names, args.fraction,
                                 seed=args.seed, C=getattr(args, 'C', None))

    out.mkdir(parents=True, exist_ok=True)
    extra = {
        'task': args.task,
        'csv': str(args.csv), 'splits': str(args.splits), 'embeddings': str(args.embeddings),
        'label_col': label_col,
        'label_map': {name: i for i, name in enumerate(table.class_names)},
        'class_counts': table.class_counts(),
        'num_labelled_slides': len(table.labels),
        'num_labelled_in_splits': len(wanted),
        'num_slides_evaluated': num_evaluated,
        'embedding_dim': dim,
        'missing_embeddings': missing.as_dict(),
        'unlabelled_split_ids': {'count': len(unlabelled), 'first': sorted(unlabelled)[:5]},
    }
    cis = classification_cis(result, args.bootstrap, args.seed) if args.bootstrap else {}
    extra['bootstrap'] = {name: ci.as_dict() for name, ci in cis.items()}
    write_summary_csv(result, out / 'summary.csv')
    write_json(result, out / 'results.json', extra)
    write_predictions(result, out / 'predictions.csv')
    pngs = [] if args.roc == 'none' else write_roc_plots(result, out, args.roc == 'all')

    title = (f'{args.protocol} | task {args.task or label_col} | classes '
             f'{table.class_names} | train fraction {args.fraction.spec} '
             f'({args.fraction.description}) | {len(splits)} splits | '
             f'{num_evaluated}/{len(wanted)} labelled split slides with embeddings, '
             f'{missing.count} missing')
    print(format_table(result, title))
    for name, ci in cis.items():
        print(f'{name}: fold mean {ci} (95 % bootstrap CI, {ci.num_resamples} resamples '
              'of the test slides)')
    print(f'wrote {out}/summary.csv, results.json, predictions.csv and {len(pngs)} ROC PNG(s)')
    return 0


def parse_and_run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.protocol in MULTI:
        return run_multi(args)
    validate(args)
    return run(args)


def main(argv: list[str] | None = None) -> int:
    return run_tool(PROG, lambda: parse_and_run(argv))

if __name__ == '__main__':
    sys.exit(main())
