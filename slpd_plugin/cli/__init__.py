"""The command-line tools, the package's top layer.

Run them as ``python -m slpd_plugin.cli.<tool>``; ``tools/<tool>.py`` and the
``slpd-<tool>`` console scripts call the same ``main``.

Each module parses its arguments with :class:`~slpd_plugin.utils.cli.ToolParser` and runs
through :func:`~slpd_plugin.utils.cli.run_tool` (one-line errors, exit status 2 for bad
usage, 1 for a failed step); the work itself is done by the layers below.
"""
