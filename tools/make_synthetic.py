"""Shim: runs ``python -m slpd_plugin.cli.make_synthetic``."""
import sys

from slpd_plugin.cli.make_synthetic import main

if __name__ == '__main__':
    sys.exit(main())
