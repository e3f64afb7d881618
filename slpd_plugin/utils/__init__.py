"""Helpers for tools. Import the modules directly (kept light: ``progress`` is imported by
the data and engine code, so this package imports nothing eagerly):

- :mod:`.progress`: progress bars for terminals and log files;
- :mod:`.checkpoint`: one encoder's weights out of a training checkpoint;
- :mod:`.hipt_export`: the region encoder in the layout of HIPT's ``vit4k_xs_dino.pth``.
"""
