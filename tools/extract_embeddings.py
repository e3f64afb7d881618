"""Shim: runs ``python -m slpd_plugin.cli.extract_embeddings``."""
import sys

from slpd_plugin.cli.extract_embeddings import main

if __name__ == '__main__':
    sys.exit(main())
