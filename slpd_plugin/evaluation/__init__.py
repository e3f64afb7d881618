"""Slide-level evaluation the way HIPT reports it.

KNN, linear probe and gated-attention MIL on region embeddings, over HIPT's
train/val/test splits. See ``docs/evaluation.md`` and ``tools/eval_slides.py``.

Four subpackages, each importing only from those before it:

- :mod:`.data`: embeddings, splits, the cohort, training fractions, survival tables;
- :mod:`.stats`: AUC/accuracy, c-index, bootstrap intervals, DeLong's test;
- :mod:`.protocols`: KNN/linear, MIL, survival, few-shot, retrieval, baselines;
- :mod:`.reporting`: result files (:mod:`.reporting.runs` runs a protocol and writes
  ``results.json``), plots, statistics and the comparison report.

Labels are read with :mod:`slpd_plugin.datasets.labels`.
"""
from .data.embeddings import (
    MissingReport,
    SlideEmbeddings,
    index_embedding_dir,
    load_region_embeddings,
    load_slide_embeddings,
    report_missing,
)
from .data.fractions import TrainFraction, parse_fraction, subsample
from .data.splits import Split, load_splits, read_split_csv
from .protocols.linear_knn import (
    DEFAULT_C_GRID,
    PROTOCOLS,
    FoldResult,
    ProtocolResult,
    evaluate_splits,
    make_knn,
    make_linear,
)
from .protocols.mil import GatedAttentionMIL, MILConfig, TransformerMIL, evaluate_mil, load_bags
from .reporting.report import format_table, write_predictions, write_roc_plots, write_summary_csv
from .reporting.runs import ClassificationRun, run_classification, write_json
from .stats.metrics import accuracy, auc_score, mean_std

__all__ = [
    'DEFAULT_C_GRID', 'PROTOCOLS', 'ClassificationRun', 'FoldResult', 'GatedAttentionMIL',
    'MILConfig', 'MissingReport', 'ProtocolResult', 'SlideEmbeddings', 'Split',
    'TrainFraction', 'TransformerMIL', 'accuracy', 'auc_score', 'evaluate_mil',
    'evaluate_splits', 'format_table', 'index_embedding_dir', 'load_bags',
    'load_region_embeddings', 'load_slide_embeddings', 'load_splits', 'make_knn',
    'make_linear', 'mean_std', 'parse_fraction', 'read_split_csv', 'report_missing',
    'run_classification', 'subsample', 'write_json', 'write_predictions', 'write_roc_plots',
    'write_summary_csv',
]
