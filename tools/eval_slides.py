"""Shim: runs ``python -m slpd_plugin.cli.eval_slides``."""
import sys

from slpd_plugin.cli.eval_slides import main

if __name__ == '__main__':
    sys.exit(main())
