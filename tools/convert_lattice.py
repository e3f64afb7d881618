"""Shim: runs ``python -m slpd_plugin.cli.convert_lattice``."""
import sys

from slpd_plugin.cli.convert_lattice import main

if __name__ == '__main__':
    sys.exit(main())
