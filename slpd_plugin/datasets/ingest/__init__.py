"""Import per-slide feature files into a store, verify it, export it back."""
from .export import export_store
from .ingest import IngestReport, ingest, verify_store
from .patch_ingest import PatchIngestReport, PatchOptions, ingest_patches
from .patch_sources import find_patch_sources
from .readers import SlideData, StoreReader, read_slide, to_grids
from .sources import SlideSource, find_sources

__all__ = ['IngestReport', 'PatchIngestReport', 'PatchOptions', 'SlideData', 'SlideSource',
           'StoreReader', 'export_store', 'find_patch_sources', 'find_sources', 'ingest',
           'ingest_patches', 'read_slide', 'to_grids', 'verify_store']
