"""Training-step throughput: the plugin's step vs the original code's step.

Same model size, same data, same run; the paths take their steps in turn (round robin,
``--block`` steps at a time) so that other load on the machine slows each alike. Paths
are named ``naive`` or ``ours`` plus options joined by ``+``:

- ``naive``: per-sample crops in the dataset (Python, CPU), explicit softmax attention,
  a host sync (``loss.item()``) every step -- the original code's way. On a GPU it also
  runs under fp16 autocast with a loss scaler, as HIPT's DINO-4K training does;
- ``ours``: batched crops in the data preprocessor on the training device, SDPA, no host
  sync; options ``bf16`` / ``fp16`` (autocast; fp16 with a loss scaler) and ``compile``
  (``torch.compile``d backbones; compile time falls in the warm-up steps).

Reported per path: regions/s, the ratio to ``naive``, the share of the step spent waiting
for data (time blocked in the DataLoader and in the naive path's host-to-device copy),
model FLOP utilisation (MFU = model FLOPs per second / the matmul peak of the same dtype
measured in this run; model FLOPs of a step, forward + backward, are counted once with
``torch.utils.flop_counter.FlopCounterMode``), and peak memory: every path is also run on
its own in a fresh process (``--probe``) for the peak RSS of that process and, on a GPU,
its peak device memory (``torch.cuda.max_memory_allocated``). ``--sweep`` repeats the
timing at other batch sizes (throughput vs batch).

Tissue masks (``masks`` in the JSON, a second table): the ``ours`` ViT-4K step on one
batch without masks and with random masks (``--mask-keep`` of the cells present), timed
in turn on the same model and crops; and the dataset's batch read on a store without
holes (no mask read) vs a copy of it with holes (masks read in the same request).

On a GPU, timings synchronise the device once per block of steps, loaders use pinned
memory and worker prefetching, and batches are copied with ``non_blocking=True``.

    python benchmarks/train_step.py                # full size: ViT-4K-XS, 65536-d head
    python benchmarks/train_step.py --quick        # small head, fewer steps
    python benchmarks/train_step.py --device cuda --batch-size 128 --workers 8
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.baselines.naive_multicrop import NaiveMultiCropDataset  # noqa: E402
from benchmarks.memory import in_fresh_process, proc_mb  # noqa: E402
from slpd_plugin.datasets import RegionFeatureDataset  # noqa: E402
from slpd_plugin.datasets.stores import open_store, open_writer  # noqa: E402
from slpd_plugin.demo import make_synthetic_store  # noqa: E402
from slpd_plugin.engine.optimizers import DINOOptimWrapper, dino_param_groups  # noqa: E402
from slpd_plugin.registry import MODELS  # noqa: E402

AUTOCAST = {'bf16': 'bfloat16', 'fp16': 'float16'}
SWEEP_KEYS = ('path', 'batch_size', 'regions_per_s', 'data_share')
PEAK_DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclass(frozen=True)
class PathSpec:
    """How one path trains: data side, attention, autocast, compile, host sync."""

    naive: bool
    attn_impl: str
    autocast: str | None  # None, 'bfloat16' or 'float16'
    compile: bool
    host_sync: bool

    @property
    def peak_dtype(self) -> str:
        return {None: 'fp32', 'bfloat16': 'bf16', 'float16': 'fp16'}[self.autocast]

    @classmethod
    def parse(cls, name: str, device: torch.device) -> 'PathSpec':
        base, *options = name.split('+')
        unknown = set(options) - {'bf16', 'fp16', 'compile'}
        if base not in ('naive', 'ours') or unknown or ('bf16' in options and 'fp16' in options):
            raise SystemExit(f'train_step.py: unknown path {name!r}; use naive or ours with '
                             f'options +bf16, +fp16, +compile')
        naive = base == 'naive'
        dtype = next((AUTOCAST[o] for o in options if o in AUTOCAST), None)
        if naive and device.type == 'cuda' and dtype is None:
            dtype = 'float16'  # the original trains in fp16 on GPUs
        return cls(naive=naive, attn_impl='math' if naive else 'sdpa', autocast=dtype,
                   compile='compile' in options, host_sync=naive)


def default_paths(device: torch.device) -> list[str]:
    if device.type == 'cuda':
        return ['naive', 'ours', 'ours+bf16', 'ours+fp16', 'ours+bf16+compile']
    return ['naive', 'ours', 'ours+bf16', 'ours+compile']


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048,
                seconds: float = 1.5) -> float:
    """Measured GFLOP/s of a large square matmul (``n`` x 4 on a GPU).

    The side doubles from 256 up to ``n`` while one product takes under 0.05 s: a dtype
    the CPU has no fast kernels for (bf16 on many x86 CPUs) took a minute per product
    at 2048.
    """
    top = n * 4 if device.type == 'cuda' else n
    n = 256
    warm = torch.ones(n, n, device=device, dtype=dtype)
    warm @ warm  # library start-up (cuBLAS handles) out of the sizing
    while True:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        if n >= top or time.perf_counter() - start > 0.05:
            break
        n *= 2
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10 if device.type == 'cuda' else 1):
            a @ b
            done += 1
        synchronize(device)
    return 2 * n ** 3 * done / (time.perf_counter() - start) / 1e9


def build(args, attn_impl: str, autocast: str | None, compile: bool = False,
          device: torch.device | str = 'cpu'):
    """ViT-4K-XS (``--depth`` blocks) student/teacher with a DINO head, and its optimizer."""
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SLPD', compile=compile,
        backbone=dict(type='ViT4K', arch='xs', in_channels=args.channels,
                      depth=args.depth, attn_impl=attn_impl),
        head=dict(type='DINOHead', out_channels=args.out_dim),
        loss=dict(type='DINOLoss', output_dim=args.out_dim))).to(device).train()
    fused = torch.device(device).type == 'cuda'
    optim = DINOOptimWrapper(
        optimizer=torch.optim.AdamW(dino_param_groups(model.student), lr=1e-4, fused=fused),
        autocast_dtype=autocast)
    return model, optim


def step(model, optim, views, data_samples, host_sync: bool, masks=None):
    with optim.optim_context(model):
        losses = model.loss(views, data_samples, masks)
    loss = sum(losses.values())
    optim.update_params(loss)
    return loss.item() if host_sync else loss


class TrainPath:
    """One path's model, optimizer and batches, stepped a block at a time."""

    def __init__(self, name: str, args, dataset, batch_size: int) -> None:
        self.name, self.device = name, torch.device(args.device)
        self.spec = PathSpec.parse(name, self.device)
        self.model, self.optim = build(args, self.spec.attn_impl, self.spec.autocast,
                                       self.spec.compile, self.device)
        data = NaiveMultiCropDataset(dataset) if self.spec.naive else dataset
        cuda = self.device.type == 'cuda'
        self.loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True,
                                 num_workers=args.workers, collate_fn=default_collate,
                                 pin_memory=cuda,
                                 persistent_workers=args.workers > 0,
                                 generator=torch.Generator().manual_seed(0))
        self.batches = iter(self.loader)
        self.batch_size = batch_size
        self.steps = 0
        self.data_time = self.total_time = 0.0

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def inputs(self):
        """The step's views and data samples on the device, and the seconds spent
        waiting for them."""
        t0 = time.perf_counter()
        batch = self.next_batch()
        if self.spec.naive:  # the original copies each view, synchronously
            views = [v.to(self.device) for v in batch['views']]
            samples = batch['data_samples']
            wait = time.perf_counter() - t0
        else:
            wait = time.perf_counter() - t0
            out = self.model.data_preprocessor(batch, training=True)
            views, samples = out['inputs'], out['data_samples']
        return views, samples, wait

    def block(self, steps: int, timed: bool) -> None:
        synchronize(self.device)
        start, waited = time.perf_counter(), 0.0
        for _ in range(steps):
            views, samples, wait = self.inputs()
            waited += wait
            step(self.model, self.optim, views, samples, host_sync=self.spec.host_sync)
        synchronize(self.device)
        if timed:
            self.steps += steps
            self.data_time += waited
            self.total_time += time.perf_counter() - start

    def row(self) -> dict:
        return dict(path=self.name, batch_size=self.batch_size,
                    regions_per_s=self.steps * self.batch_size / self.total_time,
                    step_s=self.total_time / self.steps,
                    data_share=self.data_time / self.total_time,
                    autocast=self.spec.autocast)


def run_paths(names: list[str], args, dataset, batch_size: int, steps: int) -> list[dict]:
    """Step the paths in turn (round robin), so that whatever else the machine does
    slows every path alike; returns one row per path."""
    paths = [TrainPath(n, args, dataset, batch_size) for n in names]
    rounds = -(-steps // args.block)
    for r in range(args.warmup + rounds):
        for path in paths:
            path.block(1 if r < args.warmup else args.block, timed=r >= args.warmup)
    return [p.row() for p in paths]


def step_flops(args, dataset, batch_size: int) -> float:
    """Model FLOPs (forward + backward) of one training step."""
    model, optim = build(args, 'sdpa', None, device=args.device)
    batch = default_collate([dataset[i] for i in range(batch_size)])
    out = model.data_preprocessor(batch, training=True)
    with FlopCounterMode(display=False) as counter:
        step(model, optim, out['inputs'], out['data_samples'], host_sync=False)
    return counter.get_total_flops()


def probe(name: str, args, dataset) -> dict:
    """Peak memory of ``name`` trained on its own in this (fresh) process."""
    path = TrainPath(name, args, dataset, args.batch_size)
    device = path.device
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    path.block(args.warmup + 1, timed=False)
    peak_device = torch.cuda.max_memory_allocated(device) / 2 ** 20 \
        if device.type == 'cuda' else None
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    return dict(peak_rss_mb=proc_mb('self', 'VmHWM'), peak_device_mb=peak_device)


def probe_in_subprocess(name: str, args, store: Path) -> dict:
    cmd = [sys.executable, __file__, '--probe', name, '--store', str(store),
           '--device', args.device, '--batch-size', str(args.batch_size),
           '--warmup', str(args.warmup), '--workers', str(args.workers),
           '--channels', str(args.channels), '--out-dim', str(args.out_dim)]
    if args.depth is not None:
        cmd += ['--depth', str(args.depth)]
    return in_fresh_process(cmd, f'train_step.py: memory probe of {name}')


def holey_batch(dataset, batch_size: int, keep: float) -> tuple[dict, dict]:
    """One batch of ``dataset``, without and with random tissue masks (a fraction ``keep``
    of the cells present; the missing ones zeroed, as ingest writes them)."""
    batch = default_collate([dataset[i] for i in range(batch_size)])
    g = dataset.store.grid_size
    masks = torch.rand(batch_size, g, g, generator=torch.Generator().manual_seed(0)) < keep
    masks[:, g // 2, g // 2] = True  # every region keeps some tissue
    holey = dict(batch, inputs=batch['inputs'] * masks[:, None], masks=masks)
    return batch, holey


def mask_step_rows(args, dataset, batch_size: int, steps: int) -> list[dict]:
    """ViT-4K step time on the same batch without masks and with masks (in turn, one
    model, the same crops): the cost of leaving missing tokens out of attention."""
    device = torch.device(args.device)
    model, optim = build(args, 'sdpa', None, device=device)
    plain, holey = holey_batch(dataset, batch_size, args.mask_keep)
    variants = {'unmasked': plain, 'masked': holey}
    seconds = dict.fromkeys(variants, 0.0)
    for r in range(args.warmup + steps):
        for name, data in variants.items():
            torch.manual_seed(r)  # both variants cut the same crops
            synchronize(device)
            start = time.perf_counter()
            out = model.data_preprocessor(data, training=True)
            step(model, optim, out['inputs'], out['data_samples'], host_sync=False,
                 masks=out.get('masks'))
            synchronize(device)
            if r >= args.warmup:
                seconds[name] += time.perf_counter() - start
    base = seconds['unmasked'] / steps
    return [dict(variant=name, batch_size=batch_size, step_s=t / steps,
                 regions_per_s=steps * batch_size / t, ratio_vs_unmasked=t / steps / base,
                 cells_present=1.0 if name == 'unmasked' else float(holey['masks'].float().mean()))
            for name, t in seconds.items()]


def mask_loader_rows(store: Path, tmp: Path, batch_size: int, keep: float,
                     batches: int = 20) -> list[dict]:
    """The dataset's batch read (``__getitems__``) on a store without holes (no mask is
    read) and on a copy of it with holes (masks read in the same request)."""
    source = open_store(str(store))
    g = source.grid_size
    rng = np.random.default_rng(0)
    with open_writer(str(tmp / 'holey'), dtype=source.dtype.name) as writer:
        for i, rec in enumerate(source.slides):
            masks = rng.random((rec.count, g, g)) < keep
            writer.add_slide(rec.slide_id, source.read_slide(i) * masks[:, None], masks=masks)
    rows = []
    for name, location in (('no holes', store), ('holes', tmp / 'holey')):
        dataset = RegionFeatureDataset(str(location))
        order = np.random.default_rng(1).permutation(len(dataset))
        blocks = np.resize(order, (batches, batch_size))  # the permutation, repeated
        dataset.__getitems__(blocks[0])  # open the maps
        start = time.perf_counter()
        for block in blocks:
            dataset.__getitems__(block)
        seconds = (time.perf_counter() - start) / batches
        rows.append(dict(store=name, masks_read=dataset.has_holes, batch_size=batch_size,
                         batch_ms=1e3 * seconds))
    for r in rows:
        r['ratio_vs_no_holes'] = r['batch_ms'] / rows[0]['batch_ms']
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='4096-d head, batch 16, 3 steps, sweep over batch 8')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=4, help='timed steps per path')
    parser.add_argument('--block', type=int, default=None,
                        help='steps per turn of a path (default 1 on CPU, 10 on GPU)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed turns of one step')
    parser.add_argument('--workers', type=int, default=None,
                        help='DataLoader workers (default 0 on CPU, 6 on GPU)')
    parser.add_argument('--channels', type=int, default=384)
    parser.add_argument('--out-dim', type=int, default=65536)
    parser.add_argument('--depth', type=int, default=None,
                        help="ViT-4K blocks (default: the 'xs' preset's 6; smoke tests use 1)")
    parser.add_argument('--paths', nargs='+', default=None,
                        help='default: naive ours ours+bf16 ours+compile (CPU); naive ours '
                             'ours+bf16 ours+fp16 ours+bf16+compile (GPU)')
    parser.add_argument('--sweep', type=int, nargs='*', default=None,
                        help='more batch sizes to time (default 8 16 on CPU, 64 256 on GPU)')
    parser.add_argument('--sweep-paths', nargs='+', default=['naive', 'ours', 'ours+bf16'])
    parser.add_argument('--no-probe', action='store_true', help='skip the memory probes')
    parser.add_argument('--mask-keep', type=float, default=0.7,
                        help='fraction of cells present in the masked-vs-unmasked rows')
    parser.add_argument('--probe', metavar='PATH', help=argparse.SUPPRESS)
    parser.add_argument('--store', help=argparse.SUPPRESS)
    parser.add_argument('--out', default=str(ROOT / 'benchmarks/results/train_step.json'))
    return parser


def resolve_defaults(args) -> None:
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    if args.quick:
        args.out_dim, args.steps, args.batch_size = 4096, 3, 16
    args.block = args.block or (10 if cuda else 1)
    args.workers = (6 if cuda else 0) if args.workers is None else args.workers
    args.paths = args.paths or default_paths(device)
    if args.sweep is None:
        args.sweep = [8] if args.quick and not cuda else ([64, 256] if cuda else [8, 16])


def print_rows(rows: list[dict], args, peaks: dict) -> None:
    print(f"\n{args.device}; matmul peak GFLOP/s: "
          + ', '.join(f'{k} {v:.0f}' for k, v in peaks.items())
          + f"; batch {args.batch_size}, head {args.out_dim}, {args.steps} timed steps, "
          f"{args.workers} loader workers, {torch.get_num_threads()} threads")
    header = (f"{'path':<18} {'regions/s':>10} {'x naive':>8} {'step s':>8} {'data %':>7} "
              f"{'GFLOP/step':>11} {'MFU':>6} {'RSS MB':>7} {'dev MB':>7}")
    print(header + '\n' + '-' * len(header))
    for r in rows:
        dev = '-' if r.get('peak_device_mb') is None else f"{r['peak_device_mb']:.0f}"
        rss = f"{r['peak_rss_mb']:.0f}" if 'peak_rss_mb' in r else '-'
        print(f"{r['path']:<18} {r['regions_per_s']:>10.2f} {r['speedup_vs_naive']:>8.2f} "
              f"{r['step_s']:>8.3f} {100 * r['data_share']:>7.1f} {r['gflop_per_step']:>11.1f} "
              f"{100 * r['mfu']:>5.1f}% {rss:>7} {dev:>7}")


def print_mask_rows(masks: dict) -> None:
    print(f"\n{'masks (ViT-4K, same batch)':<28} {'step s':>8} {'regions/s':>10} "
          f"{'x unmasked':>11} {'cells present':>14}")
    for r in masks['step']:
        print(f"{r['variant']:<28} {r['step_s']:>8.3f} {r['regions_per_s']:>10.2f} "
              f"{r['ratio_vs_unmasked']:>11.2f} {r['cells_present']:>14.2f}")
    print(f"{'loader batch read':<28} {'ms':>8} {'x no holes':>11}")
    for r in masks['loader']:
        print(f"{r['store']:<28} {r['batch_ms']:>8.2f} {r['ratio_vs_no_holes']:>11.2f}")


def main() -> None:
    args = build_parser().parse_args()
    resolve_defaults(args)
    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(args.device)
    if args.probe:
        print(json.dumps(probe(args.probe, args, RegionFeatureDataset(args.store))))
        return

    with tempfile.TemporaryDirectory() as tmp:
        store = make_synthetic_store(Path(tmp) / 'store', num_slides=24, min_regions=10,
                                     max_regions=30, channels=args.channels, progress=False)
        dataset = RegionFeatureDataset(str(store))
        dtypes = ['fp32', 'bf16'] + (['fp16'] if device.type == 'cuda' else [])
        peaks = {k: matmul_peak(PEAK_DTYPES[k], device) for k in dtypes}
        flops = step_flops(args, dataset, args.batch_size)
        rows = run_paths(args.paths, args, dataset, args.batch_size, args.steps)
        sweep = [r for b in args.sweep
                 for r in run_paths(args.sweep_paths, args, dataset, b, max(2, args.steps // 2))]
        sweep += [r for r in rows if r['path'] in args.sweep_paths]
        masks = dict(step=mask_step_rows(args, dataset, args.batch_size, args.steps),
                     loader=mask_loader_rows(store, Path(tmp), args.batch_size,
                                             args.mask_keep))
        if not args.no_probe:
            for r in rows:
                r.update(probe_in_subprocess(r['path'], args, store))
    base = next((r for r in rows if r['path'] == 'naive'), rows[0])
    for r in rows:
        spec = PathSpec.parse(r['path'], device)
        r['speedup_vs_naive'] = r['regions_per_s'] / base['regions_per_s']
        r['gflop_per_step'] = flops / 1e9
        r['mfu'] = flops / r['step_s'] / 1e9 / peaks.get(spec.peak_dtype, peaks['fp32'])
    print_rows(rows, args, peaks)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else None
    out.write_text(json.dumps(dict(machine=platform.node(), processor=platform.processor(),
                                   device=args.device, gpu=gpu, config=vars(args),
                                   matmul_peak_gflops=peaks, rows=rows, masks=masks,
                                   batch_sweep=[{k: r[k] for k in SWEEP_KEYS} for r in sorted(
                                       sweep, key=lambda r: (r['path'], r['batch_size']))]),
                              indent=1))
    print_mask_rows(masks)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
