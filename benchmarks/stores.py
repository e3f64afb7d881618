"""Read throughput and memory of the feature stores against the original Redis pattern
(not a test).

Writes the same random float32 grids ``(C, 16, 16)`` (TCGA-like 6..120 regions per slide)
to (a) the original layout -- one pickled float32 array per region key, one ``GET`` per
region (``baselines/original_redis.py``), (b) our Redis store (float16 blobs, one
pipelined round trip per batch) and (c) the memmap store (float16), then times random
batches on each. Then an end-to-end DataLoader (``RegionFeatureDataset`` +
``SlideAwareSampler``, persistent workers, epoch after epoch) on (b) and (c) for each
worker count of ``--workers`` (``loader_vs_workers``; the 2-worker rows also appear as
``loader_<store>_2workers``). Redis runs on loopback: a private ``redis-server`` started
here, or ``--redis URI``.

Memory of every row (``peak_rss_mb``, MB): this process's peak RSS during the row
(``VmHWM`` reset just before it) above its RSS before; memmap rows count the file pages
they map. Loader rows add each worker's own peak RSS, as ``ps`` shows it, so the pages a
worker shares with this process since the fork count again; their ``pss_mb`` (proportional
set sizes of this process and its workers after the row, less this process's before)
counts shared pages once. Prints tables, writes JSON.

    python benchmarks/stores.py --quick            # < 1 min
    python benchmarks/stores.py --regions 4000 --out work_dirs/bench/stores.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import redis
import redis.utils
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.baselines import original_redis  # noqa: E402
from benchmarks.memory import descendants, measure, proc_mb, pss_mb, reset_peak  # noqa: E402
from slpd_plugin.datasets import RegionFeatureDataset  # noqa: E402
from slpd_plugin.datasets.samplers import SlideAwareSampler  # noqa: E402
from slpd_plugin.datasets.stores import (  # noqa: E402
    MemmapStoreWriter,
    RedisStoreWriter,
    delete_redis_store,
    open_store,
    parse_redis_uri,
)

PREFIX = 'slpd-bench'
ORIGINAL_PREFIX = f'{PREFIX}-original'


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='small run: 1,200 regions, 20 batches, 2 repeats, workers 0 2 (< 1 min)')
    p.add_argument('--regions', type=int, default=3000, help='regions written (default 3000)')
    p.add_argument('--channels', type=int, default=384, help='C (default 384)')
    p.add_argument('--batch', type=int, default=128, help='batch size (default 128)')
    p.add_argument('--batches', type=int, default=40, help='timed batches per repeat')
    p.add_argument('--repeats', type=int, default=3, help='repeats; the best is reported')
    p.add_argument('--workers', type=int, nargs='+', default=None,
                   help='DataLoader worker counts to sweep; 2 is always run (default 0 1 2 4; '
                        'quick: 0 2)')
    p.add_argument('--redis', metavar='URI', default=None,
                   help='use this server instead of starting a private redis-server '
                        f'(keys under prefix {PREFIX}* are written and deleted)')
    p.add_argument('--out', type=Path, default=Path('work_dirs/bench/stores.json'),
                   help='JSON output (default work_dirs/bench/stores.json)')
    return p


@contextmanager
def existing_redis(uri: str):
    """A server given by --redis; its prefix must be the benchmark's own."""
    if parse_redis_uri(uri).prefix != PREFIX:
        sys.exit(f'stores.py: error: --redis must use ?prefix={PREFIX} (the benchmark writes '
                 f'and then deletes the keys under it)')
    yield uri


@contextmanager
def private_redis(tmp: str):
    """A loopback redis-server with a password, on a free port; yields its URI."""
    exe = shutil.which('redis-server')
    if exe is None:
        sys.exit('stores.py: error: redis-server not found (apt-get install redis-server) '
                 'and no --redis URI given')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    os.environ['SLPD_BENCH_REDIS_PASSWORD'] = password = os.urandom(12).hex()
    proc = subprocess.Popen([exe, '--port', str(port), '--bind', '127.0.0.1', '--requirepass',
                             password, '--save', '', '--appendonly', 'no', '--dir', tmp],
                            stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=password)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    try:
        yield f'redis://127.0.0.1:{port}/0?prefix={PREFIX}&password_env=SLPD_BENCH_REDIS_PASSWORD'
    finally:
        proc.terminate()
        proc.wait()


def write_all(args, uri: str, memmap_dir: str, client: redis.Redis) -> int:
    """Write the same random slides to all three layouts; returns the region count."""
    rng = np.random.default_rng(0)
    redis_writer = RedisStoreWriter(uri, channels=args.channels)
    memmap_writer = MemmapStoreWriter(memmap_dir, channels=args.channels)
    written, s = 0, 0
    while written < args.regions:
        n = int(min(rng.integers(6, 121), args.regions - written))
        grids = rng.standard_normal((n, args.channels, 16, 16), dtype=np.float32)
        original_redis.write_regions(client, ORIGINAL_PREFIX, grids, written)
        redis_writer.add_slide(f'slide-{s:05d}', grids)
        memmap_writer.add_slide(f'slide-{s:05d}', grids)
        written, s = written + n, s + 1
    redis_writer.finalize()
    memmap_writer.finalize()
    return written


def time_reads(read, batches: list[np.ndarray], repeats: int) -> float:
    """Best regions/s over ``repeats`` passes of ``batches`` (after 2 warm-up batches)."""
    for b in batches[:2]:
        read(b)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            read(b)
        best = max(best, sum(len(b) for b in batches) / (time.perf_counter() - start))
    return best


def epochs(loader: DataLoader, sampler: SlideAwareSampler) -> Iterator[dict]:
    """The loader's batches, epoch after epoch, as training reads them."""
    for epoch in itertools.count():
        sampler.set_epoch(epoch)
        yield from loader


def time_loader(store: str, args, workers: int) -> dict[str, float]:
    """A DataLoader with the slide-aware sampler (persistent workers, as in
    ``configs/_base_/datasets/region_grids.py``): regions/s over ``args.batches`` batches
    after the 1st, across epochs if need be, and memory.

    ``peak_rss_mb``: this process's VmHWM above its VmRSS before the loader, plus every
    worker's VmHWM (what ``ps`` shows, so pages a worker shares with this process, from
    the fork, count again). ``pss_mb``: the proportional set sizes of this process and
    its workers after the timed batches, less this process's before (shared pages count
    once).
    """
    dataset = RegionFeatureDataset(store)
    sampler = SlideAwareSampler(dataset, slides_per_batch=4, regions_per_slide=args.batch // 4,
                                seed=0)
    loader = DataLoader(dataset, batch_size=args.batch, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0)
    others = set(descendants(os.getpid()))  # e.g. the private redis-server
    before = reset_peak()
    pss_before = pss_mb(os.getpid())
    it = epochs(loader, sampler)
    next(it)
    start, regions = time.perf_counter(), 0
    for _, batch in zip(range(args.batches), it):
        regions += len(batch['inputs'])
    rate = regions / (time.perf_counter() - start)
    kids = [pid for pid in descendants(os.getpid()) if pid not in others]
    peak = proc_mb('self', 'VmHWM') - before + sum(proc_mb(pid, 'VmHWM') for pid in kids)
    pss = sum(pss_mb(pid) for pid in [os.getpid(), *kids]) - pss_before
    return dict(regions_per_s=rate, peak_rss_mb=peak, pss_mb=pss)


def time_store(read, batches: list[np.ndarray], repeats: int) -> dict[str, float]:
    """:func:`time_reads` and the peak RSS increase (MB) of this process meanwhile."""
    rate, _, peak = measure(lambda: time_reads(read, batches, repeats))
    return dict(regions_per_s=rate, peak_rss_mb=peak)


def main() -> int:
    args = build_parser().parse_args()
    if args.quick:
        args.regions, args.batches, args.repeats = 1200, 20, 2
    workers = sorted(set(args.workers or ([0, 2] if args.quick else [0, 1, 2, 4])) | {2})
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        server = private_redis(tmp) if args.redis is None else existing_redis(args.redis)
        with server as uri:
            loc = parse_redis_uri(uri)
            client = redis.Redis(**loc.client_kwargs())
            t0 = time.perf_counter()
            n = write_all(args, uri, f'{tmp}/memmap', client)
            write_s = time.perf_counter() - t0
            batches = [rng.choice(n, args.batch, replace=False) for _ in range(args.batches)]
            redis_store, memmap_store = open_store(uri), open_store(f'{tmp}/memmap')
            rows = {
                'a_original_redis_pickle_fp32': time_store(
                    lambda b: original_redis.read_batch(client, ORIGINAL_PREFIX, b),
                    batches, args.repeats),
                'b_redis_store_fp16': time_store(redis_store.read, batches, args.repeats),
                'c_memmap_store_fp16_warm': time_store(memmap_store.read, batches,
                                                       args.repeats),
            }
            sweep = [dict(store=name, workers=w, **time_loader(location, args, w))
                     for name, location in (('redis', uri), ('memmap', f'{tmp}/memmap'))
                     for w in workers]
            original_redis.delete_regions(client, ORIGINAL_PREFIX, n)
            delete_redis_store(uri)
    rows.update({f'loader_{r["store"]}_2workers': r for r in sweep if r['workers'] == 2})
    report(args, n, write_s, rows, sweep)
    return 0


def report(args, n: int, write_s: float, rows: dict[str, dict[str, float]],
           sweep: list[dict]) -> None:
    """Print the tables and write the JSON."""
    rates = {name: r['regions_per_s'] for name, r in rows.items()}
    base = rates['a_original_redis_pickle_fp32']
    mb = args.channels * 256 * 2 / 1e6  # float16 MB per region
    print(f'\n{n} regions [{args.channels},16,16], batch {args.batch}, {args.batches} '
          f'batches x {args.repeats} repeats (best), {os.cpu_count()} CPUs; written in '
          f'{write_s:.1f} s\n')
    print(f'{"path":34s} {"regions/s":>10s} {"x (a)":>7s} {"ms/batch":>9s} '
          f'{"peak RSS MB":>12s}')
    for name, r in rows.items():
        rate = r['regions_per_s']
        print(f'{name:34s} {rate:10,.0f} {rate / base:7.1f} {1e3 * args.batch / rate:9.1f} '
              f'{r["peak_rss_mb"]:12,.0f}')
    print(f'\n{"loader store":12s} {"workers":>7s} {"regions/s":>10s} {"peak RSS MB":>12s} '
          f'{"PSS MB":>7s}')
    for r in sweep:
        print(f'{r["store"]:12s} {r["workers"]:7d} {r["regions_per_s"]:10,.0f} '
              f'{r["peak_rss_mb"]:12,.0f} {r["pss_mb"]:7,.0f}')
    print('\npeak RSS: increase over the row (this process) plus the loader workers\' own '
          'peaks, which count the pages they share with this process again; PSS: this '
          'process and its workers after the row, shared pages once.')
    print(f'\n(b) moves {mb:.2f} MB per region in 1 round trip per batch; (a) {2 * mb:.2f} MB '
          f'in {args.batch} round trips. Modelled (not measured) extra time per batch at '
          f'network RTT r: (a) {args.batch} r, (b) 1 r.')
    goals = dict(b_over_a=rates['b_redis_store_fp16'] / base,
                 c_over_a=rates['c_memmap_store_fp16_warm'] / base)
    print(f'goals: (b)/(a) = {goals["b_over_a"]:.1f} (>= 2), (c)/(a) = '
          f'{goals["c_over_a"]:.1f} (>= 10)')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(
        regions=n, channels=args.channels, batch=args.batch, batches=args.batches,
        repeats=args.repeats, write_seconds=write_s, regions_per_s=rates,
        peak_rss_mb={name: r['peak_rss_mb'] for name, r in rows.items()},
        loader_vs_workers=sweep, ratios=goals,
        cpus=os.cpu_count(), python=platform.python_version(), numpy=np.__version__,
        torch=torch.__version__, redis_py=redis.__version__,
        hiredis=redis.utils.HIREDIS_AVAILABLE, time=time.strftime('%Y-%m-%dT%H:%M:%S')),
        indent=1))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    sys.exit(main())
