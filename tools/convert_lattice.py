from slpd_plugin.cli.convert_lattice import main

if __name__ == '__main__':
    raise SystemExit(main())
