"""Concurrent readers of one Redis store while a writer ingests another prefix (not a test).

For each reader count P: P processes (each with its own connection, like DataLoader
workers) read random batches of ``(C, 16, 16)`` float16 regions from one store while one
more process keeps writing slides under another prefix. Phase 1 times the reads
(aggregate regions/s = all regions read / wall time from the common start to the last
reader's end); phase 2 re-reads the same batches and compares every byte with a memmap
copy of the store. Afterwards the writer's store must pass its checksums. Redis runs on
loopback: a private ``redis-server`` started here (see ``benchmarks/stores.py``).

    python benchmarks/load.py --quick               # ~1 min
    python benchmarks/load.py --readers 1 2 4 8 --out work_dirs/bench/load.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stores import PREFIX, private_redis  # noqa: E402
from slpd_plugin.datasets.ingest import verify_store  # noqa: E402
from slpd_plugin.datasets.stores import (  # noqa: E402
    MemmapStore,
    MemmapStoreWriter,
    RedisStoreWriter,
    delete_redis_store,
    open_store,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='1,200 regions, 10 batches per reader, readers 1 2 4')
    p.add_argument('--regions', type=int, default=2000, help='regions in the read store')
    p.add_argument('--channels', type=int, default=384, help='C (default 384)')
    p.add_argument('--batch', type=int, default=128, help='regions per batch (default 128)')
    p.add_argument('--batches', type=int, default=20, help='batches per reader (default 20)')
    p.add_argument('--readers', type=int, nargs='+', default=[1, 2, 4, 8],
                   help='reader process counts to run (default 1 2 4 8)')
    p.add_argument('--out', type=Path, default=Path('work_dirs/bench/load.json'),
                   help='JSON output (default work_dirs/bench/load.json)')
    return p


def write_stores(uri: str, memmap_dir: str, regions: int, channels: int) -> int:
    """The same random slides into Redis and a memmap folder; returns the region count."""
    rng = np.random.default_rng(0)
    with RedisStoreWriter(uri, channels=channels) as to_redis, \
            MemmapStoreWriter(memmap_dir, channels=channels) as to_memmap:
        written, s = 0, 0
        while written < regions:
            n = int(min(rng.integers(6, 121), regions - written))
            grids = rng.standard_normal((n, channels, 16, 16), dtype=np.float32)
            to_redis.add_slide(f'slide-{s:05d}', grids)
            to_memmap.add_slide(f'slide-{s:05d}', grids)
            written, s = written + n, s + 1
    return written


def reader(uri: str, memmap_dir: str, seed: int, args, start: mp.Barrier, out: mp.Queue):
    """Phase 1: timed reads; phase 2: the same batches compared with the memmap copy."""
    store, truth = open_store(uri), MemmapStore(memmap_dir)
    rng = np.random.default_rng(seed)
    batches = [rng.choice(store.num_regions, args.batch, replace=False)
               for _ in range(args.batches)]
    store.read(batches[0])  # connect
    start.wait()
    began = time.monotonic()
    for b in batches:
        store.read(b)
    ended = time.monotonic()
    wrong = sum(int(not np.array_equal(store.read(b), truth.read(b))) for b in batches)
    out.put(dict(began=began, ended=ended, regions=args.batch * len(batches), wrong=wrong))


def writer(uri: str, channels: int, limit: int, stop: mp.Event, out: mp.Queue) -> None:
    """Ingest slides under another prefix until ``stop`` is set (at most ``limit``
    regions, then wait), then finalize."""
    rng = np.random.default_rng(1)
    with RedisStoreWriter(uri, channels=channels) as to_redis:
        s = written = 0
        while not stop.is_set() or s == 0:
            if written >= limit:
                stop.wait(0.05)
                continue
            n = int(rng.integers(6, 121))
            to_redis.add_slide(f'w-{s:05d}', rng.standard_normal((n, channels, 16, 16),
                                                                 dtype=np.float32))
            s, written = s + 1, written + n
    out.put(dict(slides=s, regions=written))


def run_phase(uri: str, memmap_dir: str, readers: int, args) -> dict:
    ctx = mp.get_context('fork')
    start, stop, out, wout = ctx.Barrier(readers + 1), ctx.Event(), ctx.Queue(), ctx.Queue()
    writer_uri = uri.replace(f'prefix={PREFIX}', f'prefix={PREFIX}-writer')
    w = ctx.Process(target=writer, args=(writer_uri, args.channels, args.regions // 2,
                                         stop, wout))
    w.start()
    procs = [ctx.Process(target=reader, args=(uri, memmap_dir, k, args, start, out))
             for k in range(readers)]
    for p in procs:
        p.start()
    start.wait()
    results = [out.get() for _ in procs]
    stop.set()
    written = wout.get()
    for p in [*procs, w]:
        p.join()
    if any(p.exitcode for p in [*procs, w]):
        raise RuntimeError(f'a reader or the writer failed: {[p.exitcode for p in procs]}, '
                           f'{w.exitcode}')
    verified = verify_store(writer_uri, progress=False)
    delete_redis_store(writer_uri)
    wall = max(r['ended'] for r in results) - min(r['began'] for r in results)
    total = sum(r['regions'] for r in results)
    return dict(readers=readers, regions_read=total, seconds=wall, regions_per_s=total / wall,
                wrong_batches=sum(r['wrong'] for r in results), writer_slides=written['slides'],
                writer_regions=written['regions'], writer_verified_regions=verified)


def main() -> int:
    args = build_parser().parse_args()
    if args.quick:
        args.regions, args.batches, args.readers = 1200, 10, [1, 2, 4]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, private_redis(tmp) as uri:
        n = write_stores(uri, f'{tmp}/memmap', args.regions, args.channels)
        for readers in args.readers:
            rows.append(run_phase(uri, f'{tmp}/memmap', readers, args))
            r = rows[-1]
            print(f'{readers} reader(s): {r["regions_per_s"]:8,.0f} regions/s, '
                  f'{r["wrong_batches"]} wrong batch(es); writer meanwhile '
                  f'{r["writer_regions"]} regions, checksums ok')
        delete_redis_store(uri)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(
        regions=n, channels=args.channels, batch=args.batch, batches_per_reader=args.batches,
        cpus=os.cpu_count(), rows=rows, time=time.strftime('%Y-%m-%dT%H:%M:%S')), indent=1))
    print(f'wrote {args.out}')
    return int(any(r['wrong_batches'] for r in rows))


if __name__ == '__main__':
    sys.exit(main())
