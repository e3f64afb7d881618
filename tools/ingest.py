"""Shim: runs ``python -m slpd_plugin.cli.ingest``."""
import sys

from slpd_plugin.cli.ingest import main

if __name__ == '__main__':
    sys.exit(main())
