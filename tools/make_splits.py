"""Shim: runs ``python -m slpd_plugin.cli.make_splits``."""
import sys

from slpd_plugin.cli.make_splits import main

if __name__ == '__main__':
    sys.exit(main())
