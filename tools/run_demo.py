"""Shim: runs ``python -m slpd_plugin.cli.run_demo``."""
import sys

from slpd_plugin.cli.run_demo import main

if __name__ == '__main__':
    sys.exit(main())
