"""Slide labels from HIPT-style dataset CSVs.

HIPT's subtyping tasks read one CSV per cohort (``tcga_brca_subset.csv``,
``tcga_lung_subset.csv``, ``tcga_kidney_subset.csv``) with a ``slide_id`` column (file
names ending in ``.svs``) and an ``oncotree_code`` column. Only the codes named in the
task's label map are kept; every other code is dropped (HIPT's BRCA task lists the
dropped codes explicitly as ``ignore``). The presets below copy HIPT's label maps
(``2-Weakly-Supervised-Subtyping/main.py``); the cohort sizes they give on the CSVs
shipped in ``shared/data/hipt`` are BRCA 875, lung 958 and kidney 905 slides.

Slide ids are normalised by :func:`normalize_slide_id` (whitespace and a trailing
``.svs`` removed), so the CSV (``X.svs``), HIPT's split files (``X``) and embedding
files (``X.pt`` or ``X.svs.pt``) all meet on the same key.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

__all__ = [
    'TASK_PRESETS',
    'LabelTable',
    'TaskPreset',
    'load_labels',
    'load_task_labels',
    'normalize_slide_id',
    'parse_label_map',
]

_SLIDE_SUFFIXES = ('.svs', '.SVS')


def normalize_slide_id(slide_id: str) -> str:
    """Return the canonical form of a slide id: stripped, without a ``.svs`` suffix.

    Args:
        slide_id: A slide id as written in a CSV, a split file or a file name.

    Returns:
        The id without surrounding whitespace and without a trailing ``.svs``.
    """
    slide_id = slide_id.strip()
    for suffix in _SLIDE_SUFFIXES:
        if slide_id.endswith(suffix):
            return slide_id[:-len(suffix)]
    return slide_id


@dataclass(frozen=True)
class TaskPreset:
    """A named subtyping task: which CSV column holds the class and how it maps to ints.

    Attributes:
        name: Task name, e.g. ``'tcga_brca'``.
        label_col: CSV column holding the class name.
        label_map: Class name -> integer label. Rows with other values are dropped.
        csv_name: File name of HIPT's dataset CSV for the task.
        split_dir: HIPT's split folder for the task, relative to ``shared/data/hipt``.
    """

    name: str
    label_col: str
    label_map: Mapping[str, int]
    csv_name: str
    split_dir: str


TASK_PRESETS: dict[str, TaskPreset] = {
    'tcga_brca': TaskPreset('tcga_brca', 'oncotree_code', {'IDC': 0, 'ILC': 1},
                            'tcga_brca_subset.csv', 'splits/10foldcv_subtype/tcga_brca'),
    'tcga_lung': TaskPreset('tcga_lung', 'oncotree_code', {'LUAD': 0, 'LUSC': 1},
                            'tcga_lung_subset.csv', 'splits/10foldcv_subtype/tcga_lung'),
    'tcga_kidney': TaskPreset('tcga_kidney', 'oncotree_code',
                              {'CCRCC': 0, 'PRCC': 1, 'CHRCC': 2},
                              'tcga_kidney_subset.csv',
                              'splits/10foldcv_subtype/tcga_kidney'),
}


@dataclass
class LabelTable:
    """Integer labels per slide, after filtering.

    Attributes:
        labels: Normalised slide id -> integer label in ``[0, num_classes)``.
        class_names: Class name for each integer label (index = label).
        label_col: The CSV column the labels came from.
        num_rows: Rows read from the CSV.
        num_dropped: Rows whose value is not in the label map (or is blank).
        dropped_values: Value -> count for the dropped rows.
    """

    labels: dict[str, int]
    class_names: list[str]
    label_col: str
    num_rows: int = 0
    num_dropped: int = 0
    dropped_values: dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes in the label map."""
        return len(self.class_names)

    def class_counts(self) -> dict[str, int]:
        """Slides per class name."""
        counts = {name: 0 for name in self.class_names}
        for label in self.labels.values():
            counts[self.class_names[label]] += 1
        return counts


def parse_label_map(text: str) -> dict[str, int]:
    """Parse a label map given on the command line.

    Accepts JSON (``'{"IDC": 0, "ILC": 1}'``) or comma-separated ``name:int`` pairs
    (``'IDC:0,ILC:1'``). A list of names (``'IDC,ILC'`` or ``'["IDC", "ILC"]'``)
    numbers them in the order given.

    Args:
        text: The map as text.

    Returns:
        Class name -> integer label.

    Raises:
        ValueError: If the text cannot be parsed or the labels are not ``0..K-1``.
    """
    text = text.strip()
    if text.startswith(('{', '[')):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f'label map is not valid JSON: {err}') from None
        if isinstance(raw, list):
            raw = {name: i for i, name in enumerate(raw)}
        label_map = {str(k): v for k, v in raw.items()}
    else:
        items = [item.strip() for item in text.split(',') if item.strip()]
        if not items:
            raise ValueError('label map is empty')
        if all(':' in item for item in items):
            label_map = {}
            for item in items:
                name, _, value = item.rpartition(':')
                try:
                    label_map[name.strip()] = int(value)
                except ValueError:
                    raise ValueError(f'label map entry {item!r} is not name:int') from None
        elif any(':' in item for item in items):
            raise ValueError(f'label map {text!r} mixes name:int and bare names')
        else:
            label_map = {name: i for i, name in enumerate(items)}
    _check_label_map(label_map)
    return label_map


def _check_label_map(label_map: Mapping[str, int]) -> None:
    values = list(label_map.values())
    if not values:
        raise ValueError('label map is empty')
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f'label map values must be integers, got {dict(label_map)}')
    if sorted(set(values)) != list(range(max(values) + 1)):
        raise ValueError(f'label map values must cover 0..K-1, got {dict(label_map)}')


def load_labels(csv_path: str | Path,
                label_col: str = 'oncotree_code',
                label_map: Mapping[str, int] | None = None,
                slide_col: str = 'slide_id') -> LabelTable:
    """Read slide labels from a CSV, keeping only rows whose value is in ``label_map``.

    Args:
        csv_path: The dataset CSV (any extra columns are ignored).
        label_col: Column holding the class. Defaults to ``'oncotree_code'``.
        label_map: Class value -> integer label. Several values may share a label
            (then the class is named by the values joined with ``'|'``). ``None`` numbers
            the distinct non-blank values in sorted order. Defaults to None.
        slide_col: Column holding the slide id. Defaults to ``'slide_id'``.

    Returns:
        The filtered labels.

    Raises:
        FileNotFoundError: If the CSV does not exist.
        ValueError: If a column is missing, or one slide has two different labels.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f'label CSV not found: {csv_path}')
    with csv_path.open(newline='') as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        for col in (slide_col, label_col):
            if col not in columns:
                shown = ', '.join(repr(c) for c in columns[:12])
                more = f', ... ({len(columns)} in all)' if len(columns) > 12 else ''
                raise ValueError(f'column {col!r} not in {csv_path.name}; '
                                 f'columns are {shown}{more}')
        rows = [(row[slide_col] or '', (row[label_col] or '').strip()) for row in reader]

    if label_map is None:
        label_map = {v: i for i, v in enumerate(sorted({v for _, v in rows if v}))}
    else:
        _check_label_map(label_map)
    names: dict[int, list[str]] = {}
    for value, label in label_map.items():
        names.setdefault(label, []).append(value)
    class_names = ['|'.join(names[i]) for i in range(len(names))]

    table = LabelTable({}, class_names, label_col, num_rows=len(rows))
    for raw_id, value in rows:
        slide_id = normalize_slide_id(raw_id)
        if not slide_id:
            raise ValueError(f'{csv_path.name}: a row has an empty {slide_col!r}')
        if value not in label_map:
            table.num_dropped += 1
            table.dropped_values[value] = table.dropped_values.get(value, 0) + 1
            continue
        label = label_map[value]
        previous = table.labels.setdefault(slide_id, label)
        if previous != label:
            raise ValueError(f'{csv_path.name}: slide {slide_id!r} has two labels '
                             f'({class_names[previous]!r} and {class_names[label]!r})')
    return table


def load_task_labels(task: str, csv_path: str | Path) -> LabelTable:
    """Read the labels of a preset task (see :data:`TASK_PRESETS`).

    Args:
        task: One of ``'tcga_brca'``, ``'tcga_lung'``, ``'tcga_kidney'``.
        csv_path: The task's CSV, e.g. ``shared/data/hipt/tcga_brca_subset.csv``.

    Returns:
        The filtered labels.

    Raises:
        ValueError: If ``task`` is not a preset.
    """
    if task not in TASK_PRESETS:
        raise ValueError(f'unknown task {task!r}; choose one of {sorted(TASK_PRESETS)}')
    preset = TASK_PRESETS[task]
    return load_labels(csv_path, preset.label_col, preset.label_map)
