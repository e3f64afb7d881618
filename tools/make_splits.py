from slpd_plugin.cli.make_splits import main

if __name__ == '__main__':
    raise SystemExit(main())
