"""Fixtures that write per-slide feature files in every supported layout."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.utils import load_tool as _load_tool


def to_tokens(grids: np.ndarray) -> np.ndarray:
    """(n, C, 16, 16) -> HIPT (n, 256, C) with seq[i*16 + j, c] = grid[c, i, j]."""
    n, c = grids.shape[:2]
    return np.ascontiguousarray(grids.reshape(n, c, 256).transpose(0, 2, 1))


def write_slide(folder: Path, slide_id: str, layout: str, grids: np.ndarray,
                coords: np.ndarray | None = None) -> Path:
    """Write one slide's ``(n, C, 16, 16)`` grids in ``layout``; returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    if layout == 'hipt_pt':
        path = folder / f'{slide_id}.pt'
        torch.save(torch.from_numpy(to_tokens(grids)), path)
    elif layout == 'slpd_pt':
        path = folder / f'{slide_id}.pt'
        torch.save(torch.from_numpy(grids), path)
    elif layout in ('hipt_h5', 'slpd_h5'):
        path = folder / f'{slide_id}.h5'
        with h5py.File(path, 'w') as f:
            f.create_dataset('features', data=to_tokens(grids) if layout == 'hipt_h5' else grids)
            if coords is not None:
                f.create_dataset('coords', data=coords)
    elif layout == 'regions':
        path = folder / slide_id
        path.mkdir()
        for k, grid in enumerate(grids):
            x, y = coords[k] if coords is not None else (k, k)
            name = f'r{k}_{x}_{y}.pt' if coords is not None else f'region{k}.pt'
            torch.save(torch.from_numpy(np.ascontiguousarray(grid.reshape(len(grid), 256).T)),
                       path / name)
    else:
        raise ValueError(layout)
    return path


@pytest.fixture(name='write_slide')
def write_slide_fixture():
    """The :func:`write_slide` helper (fixtures are how test modules share code here)."""
    return write_slide


@pytest.fixture
def src(tmp_path) -> Path:
    """An empty source folder."""
    folder = tmp_path / 'src'
    folder.mkdir()
    return folder


@pytest.fixture
def make_slides(tmp_path):
    """Factory: write ``counts`` slides of random grids; returns (folder, truth).

    ``truth`` maps slide id -> (grids float32 (n, C, 16, 16), coords int64 (n, 2) or None).
    """
    def make(layout: str, counts=(3, 5, 2), channels: int = 8, seed: int = 0,
             folder: str = 'src', with_coords: bool = True):
        rng = np.random.default_rng(seed)
        root = tmp_path / folder
        truth = {}
        for s, n in enumerate(counts):
            grids = rng.standard_normal((n, channels, 16, 16)).astype(np.float32)
            coords = (rng.integers(0, 50_000, (n, 2)) * 4096 if with_coords
                      and layout in ('hipt_h5', 'slpd_h5', 'regions') else None)
            write_slide(root, f'slide-{s}', layout, grids, coords)
            truth[f'slide-{s}'] = (grids, coords)
        return root, truth
    return make


@pytest.fixture(scope='session')
def load_tool():
    """The module of a command-line tool by name (``slpd_plugin.cli.<name>``)."""
    return _load_tool
