"""How values go into result files: an empty CSV cell and a JSON ``null`` for NaN.

Every ``summary.csv``, ``results.json`` and ``report.json`` of the evaluation is written
through these two functions, so an undefined metric (a split whose test part has one
class, for instance) reads the same in all of them: what pandas writes for NaN in CSV,
and ``null`` in JSON (which has no NaN).

Example:
    >>> csv_cell(float('nan')), csv_cell(0.5)
    ('', '0.5')
    >>> write_json_file(Path('results.json'), {'auc': float('nan')})  # {"auc": null}
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ['csv_cell', 'json_safe', 'write_json_file']


def csv_cell(value: float) -> str:
    """A metric as a CSV cell: ``repr`` of the float, empty for NaN."""
    return '' if math.isnan(value) else repr(float(value))


def json_safe(obj: Any) -> Any:
    """``obj`` made JSON-writable: NaN as None, numpy scalars as Python numbers.

    Dicts, lists and tuples are converted recursively (tuples become lists).
    """
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json_file(path: str | Path, payload: Mapping[str, Any], indent: int = 2) -> Path:
    """Write ``payload`` as indented JSON (NaN as ``null``) and a final newline."""
    path = Path(path)
    path.write_text(json.dumps(json_safe(dict(payload)), indent=indent) + '\n')
    return path
