"""The CPU demo of ``tools/run_demo.py``.

Synthetic region stores and WSI benchmarks with known ground truth, the demo dataset,
reference rows, figures and the report.

A top layer beside :mod:`slpd_plugin.evaluation` and :mod:`slpd_plugin.visualization`:
it may import anything below it, and nothing of the package's production path imports
it (``slpd_plugin/__init__`` imports :mod:`.dataset` only to register
``SyntheticRegionDataset`` under the ``slpd_plugin`` scope).
"""
from .dataset import SyntheticRegionDataset
from .synthetic import ensure_synthetic_store, make_synthetic_store

__all__ = ['SyntheticRegionDataset', 'ensure_synthetic_store', 'make_synthetic_store']
