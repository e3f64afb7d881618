"""Small data files derived from public TCGA metadata (see each module for its source)."""
