"""Shim: runs ``python -m slpd_plugin.cli.visualize``."""
import sys

from slpd_plugin.cli.visualize import main

if __name__ == '__main__':
    sys.exit(main())
