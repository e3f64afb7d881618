"""Per-slide region embeddings on disk and their mean-pooled slide embeddings.

A folder holds one ``{slide_id}.pt`` or ``{slide_id}.h5`` per slide (``{slide_id}.svs.pt``
is accepted too), each a tensor of shape (N, D) -- N region embeddings of size D -- or a
dict whose ``'features'`` entry is that tensor; an h5 file holds it as the dataset
``features``. A file holding one vector of shape (D,) is a slide embedding (N = 1): a
TRIDENT ``slide_features_<encoder>/`` folder (TITAN, PRISM, ... ``<slide>.h5`` with
``features`` (D,)) is read as it is. ``.pt`` files are read with ``torch.load(...,
weights_only=True)``, so a file cannot run code when loaded.

Letters: S = slides, N = regions of one slide, D = embedding size.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from slpd_plugin.datasets.labels import normalize_slide_id

__all__ = [
    'MissingReport',
    'SlideEmbeddings',
    'index_embedding_dir',
    'load_region_embeddings',
    'load_slide_embeddings',
    'report_missing',
]


def index_embedding_dir(emb_dir: str | Path) -> dict[str, Path]:
    """Map normalised slide id -> file for every ``*.pt`` and ``*.h5`` in a folder.

    Args:
        emb_dir: Folder of per-slide files.

    Returns:
        Slide id (``.pt``/``.h5`` and ``.svs`` removed) -> path.

    Raises:
        FileNotFoundError: If the folder does not exist.
        ValueError: If two files give the same slide id (e.g. ``X.pt`` and ``X.svs.pt``).
    """
    emb_dir = Path(emb_dir)
    if not emb_dir.is_dir():
        raise FileNotFoundError(f'embeddings folder not found: {emb_dir}')
    index: dict[str, Path] = {}
    for path in sorted([*emb_dir.glob('*.pt'), *emb_dir.glob('*.h5')]):
        slide_id = normalize_slide_id(path.name[:-len(path.suffix)])
        if slide_id in index:
            raise ValueError(f'two embedding files for slide {slide_id!r}: '
                             f'{index[slide_id].name} and {path.name}')
        index[slide_id] = path
    return index


def load_region_embeddings(path: str | Path) -> torch.Tensor:
    """Load one slide's region embeddings.

    Args:
        path: A ``.pt`` file holding a tensor of shape (N, D) or (D,), or a dict with the
            tensor under ``'features'``; or an ``.h5`` file with that array as dataset
            ``features``. A (D,) vector is returned as one row.

    Returns:
        Float32 tensor of shape (N, D).

    Raises:
        ValueError: If the content is not a finite (N, D) or (D,) tensor with N >= 1.
    """
    if Path(path).suffix == '.h5':
        obj = _read_h5_features(path)
    else:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(obj, dict):
        if 'features' not in obj:
            raise ValueError(f'{path}: dict without a "features" key '
                             f'(keys: {sorted(map(str, obj))})')
        obj = obj['features']
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f'{path}: expected a tensor or a dict with "features", '
                         f'got {type(obj).__name__}')
    if obj.ndim == 1 and obj.shape[0] > 0:
        obj = obj[None]  # a slide embedding (D,): one row
    if obj.ndim != 2 or obj.shape[0] == 0:
        raise ValueError(f'{path}: expected shape (N, D) with N >= 1 or (D,), '
                         f'got {tuple(obj.shape)}')
    feats = obj.float()
    if not torch.isfinite(feats).all():
        raise ValueError(f'{path}: embeddings contain NaN or inf')
    return feats


def _read_h5_features(path: str | Path) -> torch.Tensor:
    """The ``features`` dataset of an h5 file (TRIDENT's layout), as a tensor."""
    import h5py
    with h5py.File(path, 'r') as fh:
        if 'features' not in fh:
            raise ValueError(f'{path}: no "features" dataset (TRIDENT layout); datasets '
                             f'are {sorted(fh)}')
        return torch.from_numpy(np.asarray(fh['features'][()]))


@dataclass
class SlideEmbeddings:
    """Mean-pooled slide embeddings.

    Attributes:
        ids: Normalised slide ids, one per row of ``features``.
        features: Array of shape (S, D).
        num_regions: Regions per slide, aligned with ``ids``.
    """

    ids: list[str]
    features: np.ndarray
    num_regions: list[int]

    def __post_init__(self) -> None:
        self._row = {slide_id: i for i, slide_id in enumerate(self.ids)}

    def __contains__(self, slide_id: object) -> bool:
        return slide_id in self._row

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self.features.shape[1])

    def take(self, slide_ids: Iterable[str]) -> np.ndarray:
        """Rows for the given ids, shape (len(slide_ids), D)."""
        rows = [self._row[s] for s in slide_ids]
        return self.features[rows]

    def regions(self, slide_ids: Iterable[str]) -> np.ndarray:
        """Region counts for the given ids, shape (len(slide_ids),)."""
        return np.array([self.num_regions[self._row[s]] for s in slide_ids])


def load_slide_embeddings(emb_dir: str | Path,
                          slide_ids: Iterable[str] | None = None) -> SlideEmbeddings:
    """Load and mean-pool the region embeddings of a folder.

    Args:
        emb_dir: Folder of ``{slide_id}.pt`` or ``{slide_id}.h5`` files.
        slide_ids: Only load these slides (those without a file are skipped; see
            :func:`report_missing` to report them). ``None`` loads every file.
            Defaults to None.

    Returns:
        One mean-pooled embedding per loaded slide, in sorted id order.

    Raises:
        ValueError: If files disagree on D, or a file is malformed.
    """
    index = index_embedding_dir(emb_dir)
    wanted = sorted(index) if slide_ids is None else sorted(set(slide_ids) & set(index))
    rows: list[np.ndarray] = []
    counts: list[int] = []
    dim = None
    for slide_id in wanted:
        feats = load_region_embeddings(index[slide_id])
        if dim is None:
            dim = feats.shape[1]
        elif feats.shape[1] != dim:
            raise ValueError(f'{index[slide_id].name}: embedding size {feats.shape[1]} '
                             f'differs from {dim} in the other files')
        rows.append(feats.mean(dim=0).double().numpy())
        counts.append(int(feats.shape[0]))
    features = np.stack(rows) if rows else np.zeros((0, 0))
    return SlideEmbeddings(wanted, features, counts)


@dataclass
class MissingReport:
    """Slides that were wanted but are not available.

    Attributes:
        what: What is missing, e.g. ``'embeddings'``.
        count: Number of missing slides.
        first: The first few missing ids (sorted).
    """

    what: str
    count: int
    first: list[str]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {'count': self.count, 'first': self.first}


def report_missing(wanted: Iterable[str], available: Iterable[str] | SlideEmbeddings,
                   what: str = 'embeddings', show: int = 5) -> MissingReport:
    """Find wanted slides that are not available and warn about them.

    Nothing is dropped silently: when any slide is missing, a ``UserWarning`` gives the
    count and the first ``show`` ids.

    Args:
        wanted: Slide ids that should be present.
        available: Ids present (or a :class:`SlideEmbeddings`).
        what: Noun for the message. Defaults to ``'embeddings'``.
        show: How many ids to name. Defaults to 5.

    Returns:
        The report (count 0 when nothing is missing).
    """
    have = set(available.ids) if isinstance(available, SlideEmbeddings) else set(available)
    missing = sorted(set(wanted) - have)
    report = MissingReport(what, len(missing), missing[:show])
    if missing:
        more = ', ...' if len(missing) > show else ''
        warnings.warn(f'{len(missing)} slide(s) in the splits have no {what} and are left '
                      f'out: {", ".join(report.first)}{more}', UserWarning, stacklevel=2)
    return report
