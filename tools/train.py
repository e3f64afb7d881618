"""Shim: runs ``python -m slpd_plugin.cli.train``."""
import sys

from slpd_plugin.cli.train import main

if __name__ == '__main__':
    sys.exit(main())
