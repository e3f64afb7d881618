"""Shim: runs ``python -m slpd_plugin.cli.inspect_store``."""
import sys

from slpd_plugin.cli.inspect_store import main

if __name__ == '__main__':
    sys.exit(main())
