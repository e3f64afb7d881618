"""Make HIPT-layout split files from a labels CSV, by case, stratified and seeded.

classification: splits_{k}.csv with train,val,test slide ids, stratified by the class.
survival: splits_{k}.csv with train,val case ids (HIPT's survival layout), stratified by
the event (censorship). A patient's slides never cross parts. --design kfold partitions
the cases into --folds folds (split k holds out fold k); --design mc draws --folds
independent splits with --val-frac / --test-frac. A cohort too small for the request is
refused with its counts. See docs/evaluation.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from slpd_plugin.evaluation.data.make_splits import (
    SplitPlan,
    classification_splits,
    describe,
    read_cohort,
    survival_splits,
    write_splits,
)
from slpd_plugin.utils.cli import ToolParser, run_tool

PROG = 'make_splits.py'
EXAMPLES = """\
examples:
  # 5-fold CV by case, stratified by oncotree_code, 10 % of the cases in val
  python tools/make_splits.py classification labels.csv --out splits/ --folds 5

  # 10 Monte Carlo draws, 60/20/20 train/val/test
  python tools/make_splits.py classification labels.csv --out splits/ --design mc \\
      --folds 10 --val-frac 0.2 --test-frac 0.2

  # HIPT's 5-fold survival splits (train,val case ids) from a survival CSV
  python tools/make_splits.py survival survival.csv --out splits_survival/ --folds 5
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the task, the labels CSV, --out, the split design and the CSV columns."""
    parser = ToolParser.for_tool(PROG, __doc__, EXAMPLES)
    parser.add_argument('task', choices=('classification', 'survival'),
                        help='classification (train,val,test slide ids) or survival '
                             '(train,val case ids)')
    parser.add_argument('csv', type=Path, help='labels CSV, one row per slide')
    parser.add_argument('--out', required=True, type=Path, help='folder for splits_k.csv')
    parser.add_argument('--design', choices=('kfold', 'mc'), default='kfold',
                        help='kfold: a partition of the cases; mc: independent draws '
                             '(default: kfold)')
    parser.add_argument('--folds', type=int, default=5, help='number of splits (default: 5)')
    parser.add_argument('--val-frac', type=float, default=None,
                        help='share of the cases in val (default: 0.1 for classification; '
                             'survival mc: 0.2)')
    parser.add_argument('--test-frac', type=float, default=0.2,
                        help='share of the cases in test, classification with --design '
                             'mc (kfold holds out 1/folds) (default: 0.2)')
    parser.add_argument('--label-col', default=None,
                        help='class column (default: oncotree_code; survival: censorship)')
    parser.add_argument('--case-col', default='case_id', help='patient column '
                        '(default: case_id)')
    parser.add_argument('--slide-col', default='slide_id', help='slide id column '
                        '(default: slide_id)')
    parser.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
    return parser


def make(argv: list[str] | None) -> int:
    """Parse ``argv``, read the cohort, draw the splits and write ``splits_{k}.csv`` files.

    Classification splits hold train/val/test slide ids stratified by class; survival
    splits hold train/val case ids stratified by the event. Prints the cohort and split
    sizes. Returns 0.
    """
    args = build_parser().parse_args(argv)
    survival = args.task == 'survival'
    label_col = args.label_col or ('censorship' if survival else 'oncotree_code')
    val_frac = args.val_frac if args.val_frac is not None else (0.2 if survival else 0.1)
    plan = SplitPlan(args.design, args.folds, val_frac, 0 if survival else args.test_frac,
                     args.seed)
    cohort = read_cohort(args.csv, label_col, args.case_col, args.slide_col)
    splits = (survival_splits if survival else classification_splits)(cohort, plan)
    paths = write_splits(splits, args.out)
    print(describe(cohort, splits))
    print(f'wrote {len(paths)} split file(s) to {args.out}')
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 for a bad argument, 1 for a CSV or cohort that cannot be split.
    """
    return run_tool(PROG, lambda: make(argv))
