"""Shim: runs ``python -m slpd_plugin.cli.export``."""
import sys

from slpd_plugin.cli.export import main

if __name__ == '__main__':
    sys.exit(main())
