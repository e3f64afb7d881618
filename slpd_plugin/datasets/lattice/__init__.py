"""Slides as patch lattices: features as stored, an index map per slide, windows as gathers.

Converted into a store or read in place from TRIDENT/CLAM/STAMP folders.
"""
from .convert import ConvertReport, convert, join_shards
from .dataset import SlideLatticeDataset, open_lattice
from .in_place import InPlaceSource
from .region_store import LatticeRegionStore, is_slide_lattice, open_regions
from .slide_cells import slide_cells
from .source import LatticeSource
from .store import LatticeStore, is_lattice_store
from .window_views import SlideWindowViewsDataset
from .writer import LatticeWriter

__all__ = ['ConvertReport', 'InPlaceSource', 'LatticeRegionStore', 'LatticeSource',
           'LatticeStore', 'LatticeWriter', 'SlideLatticeDataset', 'SlideWindowViewsDataset',
           'convert', 'is_lattice_store', 'is_slide_lattice', 'join_shards', 'open_lattice',
           'open_regions', 'slide_cells']
