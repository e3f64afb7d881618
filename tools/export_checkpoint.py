"""Shim: runs ``python -m slpd_plugin.cli.export_checkpoint``."""
import sys

from slpd_plugin.cli.export_checkpoint import main

if __name__ == '__main__':
    sys.exit(main())
