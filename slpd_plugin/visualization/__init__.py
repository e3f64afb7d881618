"""Pictures and reports of a trained SLPD model.

Prototype maps, embedding projections, the slide-neighbour graph, and text reports of
prototype banks.

Checkpoints are read with :mod:`slpd_plugin.checkpoints`. Used by ``tools/visualize.py``
and ``tools/inspect_bank.py``.
Plots are drawn on :class:`matplotlib.figure.Figure` objects (Agg canvas, no pyplot
state, no display needed) and written as PNG files.
"""
from .bank_report import bank_overview, format_bank_overview, format_slide_report, slide_report
from .embedding import embed_regions
from .neighbor_graph import neighbor_edges, plot_neighbor_graph
from .palette import categorical_colors
from .projection import PROJECTION_METHODS, plot_projection, project_2d
from .prototype_map import grid_positions, neighbor_colors, plot_prototype_map, region_positions
from .slides import SlideLabels, load_slide_labels, open_bank_store, resolve_slide, spread_slides

__all__ = [
    'PROJECTION_METHODS', 'SlideLabels', 'bank_overview', 'categorical_colors',
    'embed_regions', 'format_bank_overview', 'format_slide_report',
    'grid_positions', 'load_slide_labels', 'neighbor_colors', 'neighbor_edges',
    'open_bank_store', 'plot_neighbor_graph', 'plot_projection', 'plot_prototype_map',
    'project_2d', 'region_positions', 'resolve_slide', 'slide_report', 'spread_slides',
]
