"""Import per-slide feature files into a store, verify it, export it back."""
from .export import export_store
from .ingest import IngestReport, ingest, verify_store
from .readers import SlideData, StoreReader, read_slide, to_grids
from .sources import SlideSource, find_sources

__all__ = ['IngestReport', 'SlideData', 'SlideSource', 'StoreReader', 'export_store',
           'find_sources', 'ingest', 'read_slide', 'to_grids', 'verify_store']
