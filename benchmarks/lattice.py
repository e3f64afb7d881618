"""Slide lattices: conversion speed against a plain h5 read, window gathers, bytes on disk.

One TRIDENT-style slide per size, 1536-d float32 features as TRIDENT writes them, on a
realistic tissue shape: two elliptical tissue pieces with a lumen each and 10 % scattered
holes, coordinates in row-major file order. For each slide, side by side on the same
file (page cache warm, the best of three reads / conversions):

- ``h5 read``: a plain sequential ``f['features'][()]``, the floor of reading;
- ``write``: writing and fsyncing as many bytes as the lattice store holds, the floor of
  writing (the conversion does both, and casts, checks and hashes in between);
- ``lattice``: ``tools/convert_lattice.py``'s conversion into a float16 lattice store
  (coordinates, lattice checks, index map, chunked read, NaN/Inf check, cast, SHA-256,
  write, fsync), in a fresh process so its peak RSS is its own;
- ``regions``: today's ``tools/ingest.py --format trident`` into a float16 16x16 region
  store.

Then window gathers, batch 128, 16x16, through the datasets' ``__getitems__`` as a
DataLoader worker calls it (one torch thread): random windows anywhere (``SlideLatticeDataset``,
``mode='windows'``) from the lattice store and from the h5 read in place (cache warm;
the first load is reported apart), and random regions from the region store
(``RegionFeatureDataset``) and from the lattice store (``mode='regions'``). Bytes on disk
compare the lattice store's files with the region store's.

    python benchmarks/lattice.py --quick     # one 30,000-patch slide, a few minutes
    python benchmarks/lattice.py             # 100,000 and 200,000 patches
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest_patches import write_trident_file  # noqa: E402
from benchmarks.memory import in_fresh_process, measure  # noqa: E402
from slpd_plugin.datasets import RegionFeatureDataset  # noqa: E402
from slpd_plugin.datasets.ingest import PatchOptions, find_patch_sources, ingest_patches  # noqa: E402
from slpd_plugin.datasets.lattice import (  # noqa: E402
    LatticeStore,
    SlideLatticeDataset,
    convert,
)

BATCH, GRID = 128, 16


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', type=int, nargs='+', default=[100_000, 200_000],
                   help='patches per slide, one row each (default 100000 200000)')
    p.add_argument('--dim', type=int, default=1536, help='feature width D (default 1536)')
    p.add_argument('--quick', action='store_true', help='one 30,000-patch slide')
    p.add_argument('--batches', type=int, default=20, help='gather batches timed (default 20)')
    p.add_argument('--tmp', default=None, help='folder for the h5 files and stores')
    p.add_argument('--row', nargs=3, metavar=('KIND', 'H5', 'STORE'), help=argparse.SUPPRESS)
    p.add_argument('--out', type=Path, default=Path('work_dirs/bench/lattice.json'),
                   help='JSON output (default work_dirs/bench/lattice.json)')
    p.add_argument('--note', default='', help='a line for docs/benchmarks.md (the machine, '
                                              'its load)')
    return p


def tissue_cells(patches: int, seed: int = 0) -> np.ndarray:
    """``(patches, 2)`` (col, row) lattice cells of two elliptical pieces with a lumen
    each and 10 % random holes, row-major."""
    rng = np.random.default_rng(seed)
    side = int(np.sqrt(patches / 0.9 / 0.42)) + 4  # two ellipses cover ~0.42 of the box
    rows, cols = np.mgrid[0:side, 0:2 * side]
    inside = np.zeros(rows.shape, dtype=bool)
    for cx in (0.5 * side, 1.5 * side):
        d = ((cols - cx) / (0.48 * side)) ** 2 + ((rows - side / 2) / (0.45 * side)) ** 2
        lumen = ((cols - cx - 0.1 * side) / (0.12 * side)) ** 2 \
            + ((rows - side / 2) / (0.1 * side)) ** 2
        inside |= (d <= 1) & (lumen > 1)
    inside &= rng.random(inside.shape) > 0.1
    r, c = np.nonzero(inside)  # row-major
    if len(r) < patches:
        raise SystemExit(f'tissue shape holds {len(r)} < {patches} patches')
    return np.stack([c, r], axis=1)[:patches]


def write_trident(path: Path, patches: int, dim: int, seed: int = 0) -> None:
    """A TRIDENT-style file of a 40x slide, 256-px patches at 20x (stride 512)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_trident_file(path, tissue_cells(patches, seed).astype(np.int64) * 512, dim,
                       np.random.default_rng(seed), level0_magnification=40)


def h5_read(h5: str, repeats: int = 3) -> float:
    """Seconds of a plain sequential read of the features (the best of ``repeats``)."""
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        with h5py.File(h5, 'r') as f:
            f['features'][()]
        best = min(best, time.perf_counter() - start)
    return best


def write_floor(path: Path, nbytes: int, chunk: int = 32 * 2 ** 20) -> float:
    """Seconds to write ``nbytes`` sequentially and fsync them: the floor of any store."""
    block = np.ones(chunk, dtype=np.uint8)
    start = time.perf_counter()
    with open(path, 'wb') as f:
        for lo in range(0, nbytes, chunk):
            f.write(block[:min(chunk, nbytes - lo)])
        f.flush()
        os.fsync(f.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def run_row(kind: str, h5: str, store: str) -> dict:
    """One conversion (this process): seconds, peak RSS."""
    sources = find_patch_sources(h5, 'trident')
    if kind == 'lattice':  # best of three conversions into a fresh store
        def work():
            shutil.rmtree(store, ignore_errors=True)
            return convert(sources, store, PatchOptions('trident'))
        _, seconds, peak = measure(work, repeats=3)
    else:
        _, seconds, peak = measure(lambda: ingest_patches(sources, store,
                                                          PatchOptions('trident')))
    return dict(seconds=seconds, peak_rss_mb=peak)


def gather_rate(dataset, batches: int, seed: int = 0) -> float:
    """Windows/s of ``__getitems__`` and the collate's stack on random batches of
    ``BATCH`` samples."""
    rng = np.random.default_rng(seed)
    dataset.__getitems__(rng.integers(0, len(dataset), BATCH))  # maps, caches, page cache
    start = time.perf_counter()
    for _ in range(batches):
        torch.stack([s['inputs'] for s in
                     dataset.__getitems__(rng.integers(0, len(dataset), BATCH))])
    return batches * BATCH / (time.perf_counter() - start)


def first_load(h5_folder: str) -> float:
    """Seconds of the first batch read in place (opening, placing, loading the slide)."""
    start = time.perf_counter()
    ds = SlideLatticeDataset(h5_folder, mode='windows', windows_per_slide=BATCH)
    ds.__getitems__(np.arange(BATCH))
    return time.perf_counter() - start


def folder_bytes(path: Path, names: tuple[str, ...]) -> int:
    return sum((path / n).stat().st_size for n in names if (path / n).exists())


def bench_size(tmp: Path, n: int, dim: int, batches: int) -> dict:
    folder = tmp / f'h5_{n}'
    h5 = folder / f'slide_{n}.h5'
    write_trident(h5, n, dim)
    file_mb = h5.stat().st_size / 2 ** 20
    read_s = h5_read(str(h5))
    lattice = in_fresh_process([sys.executable, __file__, '--row', 'lattice', str(h5),
                                str(tmp / f'lattice_{n}')], f'conversion of {n} patches')
    row = dict(patches=n, dim=dim, file_mb=file_mb, h5_read_s=read_s,
               h5_read_mb_s=file_mb / read_s, lattice_s=lattice['seconds'],
               lattice_patches_s=n / lattice['seconds'],
               lattice_mb_s=file_mb / lattice['seconds'],
               lattice_vs_read=lattice['seconds'] / read_s,
               lattice_peak_rss_mb=lattice['peak_rss_mb'])
    store = LatticeStore(tmp / f'lattice_{n}')
    row['lattice_bytes'] = store.nbytes()
    row['write_floor_s'] = write_floor(tmp / 'floor.bin', row['lattice_bytes'])
    row['gather_lattice_windows'] = gather_rate(
        SlideLatticeDataset(str(tmp / f'lattice_{n}'), mode='windows'), batches)
    row['gather_lattice_regions'] = gather_rate(
        SlideLatticeDataset(str(tmp / f'lattice_{n}')), batches)
    row['in_place_first_batch_s'] = first_load(str(folder))
    row['gather_in_place_windows'] = gather_rate(
        SlideLatticeDataset(str(folder), mode='windows'), batches)
    reg = in_fresh_process([sys.executable, __file__, '--row', 'regions', str(h5),
                            str(tmp / f'regions_{n}')], f'region ingest of {n} patches')
    row.update(regions_s=reg['seconds'], regions_patches_s=n / reg['seconds'],
               regions_peak_rss_mb=reg['peak_rss_mb'],
               regions_bytes=folder_bytes(tmp / f'regions_{n}',
                                          ('grids.bin', 'masks.bin', 'coords.bin')),
               gather_region_store=gather_rate(
                   RegionFeatureDataset(str(tmp / f'regions_{n}')), batches))
    shutil.rmtree(tmp / f'regions_{n}')
    shutil.rmtree(tmp / f'lattice_{n}')
    h5.unlink()
    return row


def print_table(rows: list[dict]) -> None:
    print(f'{"patches":>9} {"file MB":>8} {"h5 read s":>9} {"write s":>7} {"convert s":>9} '
          f'{"patches/s":>10} {"MB/s":>6} {"x read":>6} {"RSS MB":>6} {"ingest p/s":>10}')
    for r in rows:
        print(f'{r["patches"]:>9,} {r["file_mb"]:>8,.0f} {r["h5_read_s"]:>9.2f} '
              f'{r["write_floor_s"]:>7.2f} '
              f'{r["lattice_s"]:>9.2f} {r["lattice_patches_s"]:>10,.0f} '
              f'{r["lattice_mb_s"]:>6,.0f} {r["lattice_vs_read"]:>6.1f} '
              f'{r["lattice_peak_rss_mb"]:>6,.0f} {r["regions_patches_s"]:>10,.0f}')
    print(f'\n{"patches":>9} {"windows/s: lattice":>18} {"lattice regions":>15} '
          f'{"region store":>12} {"h5 in place":>11} {"1st load s":>10} '
          f'{"lattice MB":>10} {"region MB":>9}')
    for r in rows:
        print(f'{r["patches"]:>9,} {r["gather_lattice_windows"]:>18,.0f} '
              f'{r["gather_lattice_regions"]:>15,.0f} {r["gather_region_store"]:>12,.0f} '
              f'{r["gather_in_place_windows"]:>11,.0f} {r["in_place_first_batch_s"]:>10.2f} '
              f'{r["lattice_bytes"] / 2 ** 20:>10,.0f} '
              f'{r["regions_bytes"] / 2 ** 20:>9,.0f}')


def main() -> int:
    args = build_parser().parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker
    if args.row:
        print(json.dumps(run_row(*args.row)))
        return 0
    sizes = [30_000] if args.quick else args.sizes
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        rows = [bench_size(Path(tmp), n, args.dim, args.batches) for n in sizes]
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    note = args.note or f'1-min load average {load:.1f} at the end of the run.'
    machine = dict(cpus=os.cpu_count(), platform=platform.platform())
    args.out.write_text(json.dumps(dict(rows=rows, batch=BATCH, grid=GRID, note=note,
                                        machine=machine), indent=1))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
