"""Writing results: tables, CSV/JSON files, plots, statistics and comparison reports."""
