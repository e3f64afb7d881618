"""SLPD (Slide-Level Prototypical Distillation) as an mmengine plugin.

Importing the package registers every component under the ``slpd_plugin`` scope.
"""
from . import datasets, engine, models  # noqa: F401  (register components)
from .demo import dataset as _demo_dataset  # noqa: F401  (registers SyntheticRegionDataset)
from .version import __version__

__all__ = ['__version__']
