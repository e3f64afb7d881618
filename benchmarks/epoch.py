"""One SLPD training epoch end to end: the plugin's Runner vs the original code's loop.

Both sides train the same model (``configs/slpd_lung.py``'s SLPD: ViT-4K-XS, DINO head,
intra + inter prototype losses, K = 4) for one epoch that starts with a prototype
refresh and ends with a checkpoint, on the same synthetic slides:

- ``ours`` / ``ours+bf16``: ``tools/train.py``'s Runner (``SLPDRunner``) on a memmap
  store, with every hook of the config (refresh via ``PrototypeHook``, teacher EMA,
  logging, checkpoint), fp32 or under bf16 autocast (``--amp``);
- ``original``: ``benchmarks/baselines/original_epoch.py`` -- per-region pickled Redis
  ``GET``s, per-sample CPU crops, explicit attention, a host sync every step, the
  per-slide k-means loop with permutation matching (on a GPU: fp16 autocast).

Each side runs in its own fresh process (so peak RSS is per row: the training process,
DataLoader workers not included; on a GPU also peak device memory), in turn and, with
``--repeats 2``, a second time in reverse order so that drifting load hits all alike;
the best time of each side is reported. Sides: ``ours ours+bf16 original`` on CPU,
``ours+bf16 original`` on a GPU. Redis runs on loopback (a private
``redis-server``), which flatters the original's per-region round trips.

    python benchmarks/epoch.py --quick     # ~2 minutes on 2 CPU cores
    python benchmarks/epoch.py             # 16 slides x 24-56 regions, 65,536-d head
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

import numpy as np
import redis
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.baselines import original_epoch, original_redis  # noqa: E402
from benchmarks.memory import in_fresh_process, proc_mb  # noqa: E402
from benchmarks.stores import private_redis  # noqa: E402
from benchmarks.train_step import synchronize  # noqa: E402
from slpd_plugin.datasets import RegionFeatureDataset  # noqa: E402
from slpd_plugin.datasets.stores import open_store, parse_redis_uri  # noqa: E402
from slpd_plugin.demo import make_synthetic_store  # noqa: E402
from slpd_plugin.engine.launch import build_runner, prepare_config  # noqa: E402
from slpd_plugin.engine.optimizers import DINOOptimWrapper, dino_param_groups  # noqa: E402
from slpd_plugin.registry import MODELS  # noqa: E402

CONFIG = ROOT / 'configs' / 'slpd_lung.py'
PREFIX = 'slpd-bench-epoch'
NUM_CLUSTERS = 4
SIDES = ('ours', 'ours+bf16', 'original')


def cfg_options(args, store: str, work_dir: str) -> dict:
    """Overrides of the paper config for a one-epoch run of this size."""
    cuda = args.device == 'cuda'
    return {
        'train_dataloader.dataset.store': store,
        'train_dataloader.batch_size': args.batch_size,
        'train_dataloader.num_workers': args.workers,
        'train_dataloader.persistent_workers': args.workers > 0,
        'train_dataloader.pin_memory': cuda,
        'train_dataloader.drop_last': True,  # as the original (DINO's loader)
        'train_cfg.max_epochs': 1,
        'model.head.out_channels': args.out_dim,
        'model.loss.output_dim': args.out_dim,
        **({'model.backbone.depth': args.depth} if args.depth is not None else {}),
        'default_hooks.prototype.warm_epochs': 0,
        'default_hooks.prototype.min_regions': args.min_regions,
        'default_hooks.prototype.num_clusters': NUM_CLUSTERS,
        'default_hooks.prototype.num_workers': args.workers,
        'default_hooks.logger.interval': 10,
        'default_hooks.checkpoint.interval': 1,
        'env_cfg.dist_cfg.backend': 'nccl' if cuda else 'gloo',
        'log_level': 'WARNING',
        'work_dir': work_dir,
    }


def run_ours(args, work_dir: str) -> dict:
    cfg = prepare_config(str(CONFIG), work_dir=work_dir, amp=args.side == 'ours+bf16' or None,
                         cfg_options=cfg_options(args, args.store, work_dir))
    runner = build_runner(cfg)
    start = time.perf_counter()
    runner.train()
    synchronize(torch.device(args.device))
    return dict(seconds=time.perf_counter() - start, steps=runner.iter)


def run_original(args, work_dir: str) -> dict:
    device = torch.device(args.device)
    cfg = prepare_config(str(CONFIG), work_dir=work_dir,
                         cfg_options=cfg_options(args, args.store, work_dir))
    torch.manual_seed(0)
    model_cfg = cfg.model.to_dict()
    model_cfg.pop('_scope_', None)
    model_cfg['backbone']['attn_impl'] = 'math'
    model = MODELS.build(model_cfg).to(device).train()
    optimizer = torch.optim.AdamW(dino_param_groups(model.student), lr=5e-4)
    optim = DINOOptimWrapper(optimizer=optimizer,
                             autocast_dtype='float16' if device.type == 'cuda' else None)
    location = parse_redis_uri(args.redis_uri)
    dataset = original_epoch.OriginalRedisDataset(location.client_kwargs(), PREFIX,
                                                  open_store(args.store).region_slide_index())
    start = time.perf_counter()
    losses = original_epoch.run_epoch(model, optim, dataset, Path(work_dir), args.batch_size,
                                      args.workers, NUM_CLUSTERS, args.min_regions, device)
    synchronize(device)
    return dict(seconds=time.perf_counter() - start, steps=len(losses))


def run_side(args) -> dict:
    """Child process: one epoch of ``args.side``, with its time and peak memory."""
    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as work_dir:
        row = (run_original if args.side == 'original' else run_ours)(args, work_dir)
    row.update(side=args.side, peak_rss_mb=proc_mb('self', 'VmHWM'),
               peak_device_mb=torch.cuda.max_memory_allocated(device) / 2 ** 20
               if device.type == 'cuda' else None)
    return row


def write_original_layout(store: str, client: redis.Redis) -> int:
    """Copy the store's grids into the original layout: one pickled float32 key each."""
    dataset = RegionFeatureDataset(store)
    grids = np.stack([dataset[i]['inputs'].float().numpy() for i in range(len(dataset))])
    original_redis.write_regions(client, PREFIX, grids, 0)
    return len(grids)


def side_in_subprocess(side: str, args, store: str, uri: str) -> dict:
    cmd = [sys.executable, __file__, '--side', side, '--store', store, '--redis-uri', uri,
           '--device', args.device, '--batch-size', str(args.batch_size),
           '--workers', str(args.workers), '--out-dim', str(args.out_dim),
           *(['--depth', str(args.depth)] if args.depth is not None else []),
           '--min-regions', str(args.min_regions)]
    row = in_fresh_process(cmd, f'epoch.py: the {side} epoch')
    print(f"  {side:<10} {row['seconds']:7.1f} s  {row['steps']} steps  "
          f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    return row


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='8 slides, 4096-d head, batch 16, one run per side')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--slides', type=int, default=16)
    p.add_argument('--min-regions', type=int, default=24,
                   help='fewest regions per slide; also the prototype threshold')
    p.add_argument('--max-regions', type=int, default=56)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--workers', type=int, default=1, help='DataLoader workers, both sides')
    p.add_argument('--out-dim', type=int, default=65536)
    p.add_argument('--depth', type=int, default=None,
                   help="ViT-4K blocks, both sides (default: the config's; smoke tests use 1)")
    p.add_argument('--repeats', type=int, default=2, help='epochs per side (ABBA order)')
    p.add_argument('--sides', nargs='+', choices=SIDES, default=None,
                   help='default: ours ours+bf16 original (CPU), ours+bf16 original (GPU)')
    p.add_argument('--side', choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument('--store', help=argparse.SUPPRESS)
    p.add_argument('--redis-uri', help=argparse.SUPPRESS)
    p.add_argument('--out', default=str(ROOT / 'benchmarks/results/epoch.json'))
    return p


def main() -> None:
    args = build_parser().parse_args()
    if args.side:
        print(json.dumps(run_side(args)))
        return
    if args.quick:
        args.slides, args.out_dim, args.batch_size, args.repeats = 8, 4096, 16, 1
    sides = args.sides or (['ours+bf16', 'original'] if args.device == 'cuda' else list(SIDES))
    order = [side for r in range(args.repeats) for side in (sides if r % 2 == 0 else sides[::-1])]
    with tempfile.TemporaryDirectory() as tmp:
        store = str(make_synthetic_store(Path(tmp) / 'store', num_slides=args.slides,
                                         min_regions=args.min_regions,
                                         max_regions=args.max_regions, progress=False))
        with private_redis(tmp) as uri:
            uri = uri.replace('prefix=slpd-bench', f'prefix={PREFIX}')
            client = redis.Redis(**parse_redis_uri(uri).client_kwargs())
            regions = write_original_layout(store, client)
            print(f'{regions} regions of {args.slides} slides; {args.device}; '
                  f'batch {args.batch_size}; head {args.out_dim}', flush=True)
            runs = [side_in_subprocess(side, args, store, uri) for side in order]
    best = {side: min((r for r in runs if r['side'] == side), key=lambda r: r['seconds'])
            for side in sides}
    rows = [dict(best[side], regions_per_s=regions / best[side]['seconds'],
                 speedup=best['original']['seconds'] / best[side]['seconds'])
            for side in sides]
    print(f"\n{'side':<10} {'epoch s':>8} {'regions/s':>10} {'x original':>11} {'steps':>6} "
          f"{'RSS MB':>7}  (best of {args.repeats})")
    for r in rows:
        print(f"{r['side']:<10} {r['seconds']:>8.1f} {r['regions_per_s']:>10.2f} "
              f"{r['speedup']:>11.2f} {r['steps']:>6} {r['peak_rss_mb']:>7.0f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        machine=platform.node(), device=args.device, regions=regions, slides=args.slides,
        config=vars(args), rows=rows, runs=runs), indent=1))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
