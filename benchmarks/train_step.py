"""Training-step throughput: batched on-device multi-crop + SDPA vs the naive path.

Same model size, same data, same run; the paths take their steps in turn (round robin)
so that other load on the machine slows each alike. Paths:

- ``naive``: per-sample crops in the dataset (Python, CPU), explicit softmax attention,
  a host sync (``loss.item()``) every step -- the original code's way;
- ``ours``: batched crops in the data preprocessor on the training device, SDPA;
- ``ours+bf16``: the same under bf16 autocast;
- ``ours+compile``: fp32 with the backbones ``torch.compile``d (compile time excluded:
  it happens in the warm-up step).

Model FLOP utilisation (MFU) = model FLOPs per second / the matmul peak measured in this
run (fp32 peak for fp32 rows, bf16 peak for bf16 rows). Model FLOPs of a step (forward +
backward) are counted once with ``torch.utils.flop_counter.FlopCounterMode`` on the SDPA
model and used for every row (same model, same work).

    python benchmarks/train_step.py                # full size: ViT-4K-XS, 65536-d head
    python benchmarks/train_step.py --quick        # small head, fewer steps
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, default_collate
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.baselines.naive_multicrop import NaiveMultiCropDataset  # noqa: E402
from slpd_plugin.datasets import RegionFeatureDataset, make_synthetic_store  # noqa: E402
from slpd_plugin.engine.optimizers import DINOOptimWrapper, dino_param_groups  # noqa: E402
from slpd_plugin.registry import MODELS  # noqa: E402


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 1.5) -> float:
    """Measured GFLOP/s of a large square matmul."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        done += 1
    return 2 * n ** 3 * done / (time.perf_counter() - start) / 1e9


def build(args, attn_impl: str, autocast: str | None, compile: bool = False):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SLPD', compile=compile,
        backbone=dict(type='ViT4K', arch='xs', in_channels=args.channels,
                      attn_impl=attn_impl),
        head=dict(type='DINOHead', out_channels=args.out_dim),
        loss=dict(type='DINOLoss', output_dim=args.out_dim))).train()
    optim = DINOOptimWrapper(
        optimizer=torch.optim.AdamW(dino_param_groups(model.student), lr=1e-4),
        autocast_dtype=autocast)
    return model, optim


def step(model, optim, views, data_samples, host_sync: bool):
    with optim.optim_context(model):
        losses = model.loss(views, data_samples)
    loss = sum(losses.values())
    optim.update_params(loss)
    return loss.item() if host_sync else loss


class TrainPath:
    """One path's model, optimizer and batches, stepped one at a time."""

    def __init__(self, name: str, args, dataset) -> None:
        self.name, self.naive = name, name == 'naive'
        self.model, self.optim = build(args, 'math' if self.naive else 'sdpa',
                                       'bfloat16' if name.endswith('bf16') else None,
                                       compile=name.endswith('compile'))
        data = NaiveMultiCropDataset(dataset) if self.naive else dataset
        self.batches = iter(DataLoader(data, batch_size=args.batch_size, shuffle=True,
                                       drop_last=True, num_workers=args.workers,
                                       collate_fn=default_collate,
                                       generator=torch.Generator().manual_seed(0)))
        self.data_time = self.compute_time = 0.0

    def step(self, timed: bool) -> None:
        t0 = time.perf_counter()
        batch = next(self.batches)
        if self.naive:
            views, samples = batch['views'], batch['data_samples']
        else:
            out = self.model.data_preprocessor(batch, training=True)
            views, samples = out['inputs'], out['data_samples']
        t1 = time.perf_counter()
        step(self.model, self.optim, views, samples, host_sync=self.naive)
        if timed:
            self.data_time += t1 - t0
            self.compute_time += time.perf_counter() - t1


def run_paths(names: list[str], args, dataset) -> list[dict]:
    """Step the paths in turn (round robin), so that whatever else the machine does
    slows every path alike; returns one row per path."""
    paths = [TrainPath(n, args, dataset) for n in names]
    for i in range(args.warmup + args.steps):
        for path in paths:
            path.step(timed=i >= args.warmup)
    rows = []
    for path in paths:
        total = path.data_time + path.compute_time
        rows.append(dict(path=path.name, regions_per_s=args.steps * args.batch_size / total,
                         step_s=total / args.steps, data_share=path.data_time / total))
    return rows


def step_flops(args, dataset) -> float:
    """Model FLOPs (forward + backward) of one training step."""
    model, optim = build(args, 'sdpa', None)
    batch = default_collate([dataset[i] for i in range(args.batch_size)])
    out = model.data_preprocessor(batch, training=True)
    with FlopCounterMode(display=False) as counter:
        step(model, optim, out['inputs'], out['data_samples'], host_sync=False)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='4096-d head, 3 steps')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=4)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--channels', type=int, default=384)
    parser.add_argument('--out-dim', type=int, default=65536)
    parser.add_argument('--paths', nargs='+',
                        default=['naive', 'ours', 'ours+bf16', 'ours+compile'])
    parser.add_argument('--out', default=str(ROOT / 'benchmarks/results/train_step.json'))
    args = parser.parse_args()
    if args.quick:
        args.out_dim, args.steps, args.batch_size = 4096, 3, 16
    torch.set_num_threads(os.cpu_count() or 1)

    with tempfile.TemporaryDirectory() as tmp:
        store = make_synthetic_store(Path(tmp) / 'store', num_slides=24, min_regions=10,
                                     max_regions=30, channels=args.channels, progress=False)
        dataset = RegionFeatureDataset(str(store))
        peaks = {'fp32': matmul_peak(torch.float32), 'bf16': matmul_peak(torch.bfloat16)}
        flops = step_flops(args, dataset)
        rows = run_paths(args.paths, args, dataset)
    base = next((r for r in rows if r['path'] == 'naive'), rows[0])
    for r in rows:
        r['speedup_vs_naive'] = r['regions_per_s'] / base['regions_per_s']
        r['gflop_per_step'] = flops / 1e9
        r['mfu'] = flops / r['step_s'] / 1e9 / peaks[
            'bf16' if r['path'].endswith('bf16') else 'fp32']

    print(f"\nmatmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; "
          f"batch {args.batch_size}, head {args.out_dim}, {args.steps} timed steps, "
          f"{args.workers} loader workers, {torch.get_num_threads()} threads")
    header = f"{'path':<10} {'regions/s':>10} {'x naive':>8} {'step s':>8} {'data %':>7} " \
             f"{'GFLOP/step':>11} {'MFU':>6}"
    print(header + '\n' + '-' * len(header))
    for r in rows:
        print(f"{r['path']:<10} {r['regions_per_s']:>10.2f} {r['speedup_vs_naive']:>8.2f} "
              f"{r['step_s']:>8.2f} {100 * r['data_share']:>7.1f} {r['gflop_per_step']:>11.1f} "
              f"{100 * r['mfu']:>5.1f}%")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(machine=platform.node(), processor=platform.processor(),
                                   config=vars(args), matmul_peak_gflops=peaks, rows=rows),
                              indent=1))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
