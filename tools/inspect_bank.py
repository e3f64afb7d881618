"""Shim: runs ``python -m slpd_plugin.cli.inspect_bank``."""
import sys

from slpd_plugin.cli.inspect_bank import main

if __name__ == '__main__':
    sys.exit(main())
