"""Low-level helpers; import the modules directly.

The package is kept light (``progress`` is imported by the data and engine code), so
it imports nothing eagerly:

- :mod:`.progress`: progress bars for terminals and log files;
- :mod:`.weights`: the one weights-only file loader, one encoder's weights out of a
  training checkpoint, pretrained backbone weights;
- :mod:`.model`: :func:`~.model.unwrap`, the model inside a DDP/FSDP wrapper.
"""
