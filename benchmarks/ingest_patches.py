"""Patch-feature ingest: patches/s and peak memory for slides of growing size (not a test).

Writes a TRIDENT patch-feature h5 per size (``features`` ``(N, D)`` float32 as TRIDENT
writes it, ``coords`` level-0 px with TRIDENT's attributes; patches on a square lattice
with 20 % random holes, in row-major file order) into a temporary folder, then ingests
each into a fresh memmap store (float16, 16x16-patch regions) in a fresh process, so
the row's peak RSS is its own. The whole path is timed: reading coordinates, lattice
checks, SHA-256 of the file, streamed region assembly, store writes and fsync.

``peak_rss_mb`` is the ingesting process's peak RSS above its RSS before the call:
it stays near a few streamed parts (32 MiB of features each) plus the coordinates, far
below the file size, and grows little with the slide. Prints a table, writes JSON.

    python benchmarks/ingest_patches.py                     # 50,000 and 200,000 x 1,536
    python benchmarks/ingest_patches.py --quick             # 20,000 x 1,536, < 1 min
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.memory import in_fresh_process, measure  # noqa: E402
from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources, ingest_patches  # noqa: E402

WRITE_ROWS = 8192


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', type=int, nargs='+', default=[50_000, 200_000],
                   help='patches per slide, one row each (default 50000 200000)')
    p.add_argument('--dim', type=int, default=1536, help='feature width D (default 1536)')
    p.add_argument('--quick', action='store_true', help='one 20,000-patch slide')
    p.add_argument('--tmp', default=None, help='folder for the h5 files and stores')
    p.add_argument('--row', nargs=2, metavar=('H5', 'STORE'), help=argparse.SUPPRESS)
    p.add_argument('--out', type=Path, default=Path('work_dirs/bench/ingest_patches.json'),
                   help='JSON output (default work_dirs/bench/ingest_patches.json)')
    return p


def write_trident(path: Path, patches: int, dim: int, seed: int = 0) -> None:
    """A TRIDENT-style file of ``patches`` patches (80 % of a square lattice), written
    in blocks so this process never holds the whole feature matrix."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(patches / 0.8)))
    cells = np.flatnonzero(rng.random(side * side) < 0.8)[:patches]
    coords = np.stack([cells % side, cells // side], axis=1).astype(np.int64) * 256
    write_trident_file(path, coords, dim, rng)


def write_trident_file(path: Path, coords: np.ndarray, dim: int, rng: np.random.Generator,
                       level0_magnification: int = 20) -> None:
    """A TRIDENT-style file of 256-px patches at 20x at level-0 ``coords`` with random
    float32 features, written in blocks of ``WRITE_ROWS``."""
    with h5py.File(path, 'w') as f:
        feats = f.create_dataset('features', (len(coords), dim), dtype='float32')
        feats.attrs['encoder'] = 'uni_v2'
        for a in range(0, len(coords), WRITE_ROWS):
            n = min(WRITE_ROWS, len(coords) - a)
            feats[a:a + n] = rng.standard_normal((n, dim), dtype=np.float32)
        c = f.create_dataset('coords', data=coords)
        c.attrs.update(patch_size=256, level0_magnification=level0_magnification,
                       patch_size_level0=256 * level0_magnification // 20,
                       target_magnification=20, overlap=0)


def run_row(h5: str, store: str) -> dict:
    """Ingest one file (in this process); the row as a dict."""
    sources = find_patch_sources(h5, 'trident')
    report, seconds, peak = measure(
        lambda: ingest_patches(sources, store, PatchOptions('trident'), dtype='float16'))
    return dict(patches=report.patches, regions=report.regions, seconds=seconds,
                patches_per_s=report.patches / seconds, peak_rss_mb=peak,
                file_mb=os.path.getsize(h5) / 2 ** 20)


def main() -> int:
    args = build_parser().parse_args()
    if args.row:
        print(json.dumps(run_row(*args.row)))
        return 0
    sizes = [20_000] if args.quick else args.sizes
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for n in sizes:
            h5 = Path(tmp) / f'slide_{n}.h5'
            write_trident(h5, n, args.dim)
            row = in_fresh_process([sys.executable, __file__, '--row', str(h5),
                                    str(Path(tmp) / f'store_{n}')], f'ingest of {n} patches')
            rows.append(dict(row, dim=args.dim))
            h5.unlink()
    print(f'{"patches":>9} {"D":>5} {"file MB":>8} {"regions":>7} {"s":>6} '
          f'{"patches/s":>10} {"peak RSS MB":>11}')
    for r in rows:
        print(f'{r["patches"]:>9,} {r["dim"]:>5} {r["file_mb"]:>8,.0f} {r["regions"]:>7,} '
              f'{r["seconds"]:>6.1f} {r["patches_per_s"]:>10,.0f} {r["peak_rss_mb"]:>11,.0f}')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(rows=rows, machine=dict(
        cpus=os.cpu_count(), platform=platform.platform())), indent=1))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
