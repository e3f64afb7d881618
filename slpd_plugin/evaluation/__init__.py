"""Slide-level evaluation the way HIPT reports it: KNN, linear probe and gated-attention
MIL on region embeddings, over HIPT's train/val/test splits. See ``docs/evaluation.md``
and ``tools/eval_slides.py``."""
from slpd_plugin.datasets.labels import (
                                         TASK_PRESETS,
                                         LabelTable,
                                         TaskPreset,
                                         load_labels,
                                         load_task_labels,
                                         normalize_slide_id,
                                         parse_label_map,
)

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
from .reporting.report import (
                                         format_table,
                                         write_json,
                                         write_predictions,
                                         write_roc_plots,
                                         write_summary_csv,
)
from .stats.metrics import accuracy, auc_score, mean_std

__all__ = [
    'DEFAULT_C_GRID', 'PROTOCOLS', 'TASK_PRESETS', 'FoldResult', 'GatedAttentionMIL',
    'LabelTable', 'MILConfig', 'MissingReport', 'ProtocolResult', 'SlideEmbeddings',
    'TransformerMIL',
    'Split', 'TaskPreset', 'TrainFraction', 'accuracy', 'auc_score', 'evaluate_mil',
    'evaluate_splits', 'format_table', 'index_embedding_dir', 'load_bags', 'load_labels',
    'load_region_embeddings', 'load_slide_embeddings', 'load_splits', 'load_task_labels',
    'make_knn', 'make_linear', 'mean_std', 'normalize_slide_id', 'parse_fraction',
    'parse_label_map', 'read_split_csv', 'report_missing', 'subsample', 'write_json',
    'write_predictions', 'write_roc_plots', 'write_summary_csv',
]
