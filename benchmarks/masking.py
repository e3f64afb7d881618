"""iBOT block masks per batch: BlockMaskGenerator against lightly's random_block_mask.

The masks are made on the CPU inside the training step (DINOv2 makes them in its data
collate instead), so their cost adds to every step. Per batch of global views
(``--grids`` sizes, ``--side`` x ``--side`` cells, default 20x20 as the window
recipe's global views), the median of ``--repeats`` calls:

- ``lightly``: ``lightly.models.utils.random_block_mask`` (the DINOv2 scheme with
  Python's ``random``; masks half the grids, knows no tissue), on full grids;
- ``ours full``: :class:`BlockMaskGenerator` with the same settings on full grids;
- ``ours holes``: the same on grids with ``--holes`` of their cells missing (masks
  stay inside the tissue).

Also reported: the mean share of cells each masks (of all cells / of the tissue).

    python benchmarks/masking.py --quick
    python benchmarks/masking.py
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from lightly.models.utils import random_block_mask

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slpd_plugin.models.masking import BlockMaskGenerator  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rows_for(grids: int, side: int, holes: float, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    full = torch.ones(grids, side, side, dtype=torch.bool)
    tissue = torch.rand(grids, side, side) >= holes
    ours = BlockMaskGenerator()
    paths = {
        'lightly': (lambda: random_block_mask((grids, side, side)), full),
        'ours full': (lambda: ours(full), full),
        'ours holes': (lambda: ours(tissue), tissue),
    }
    rows = []
    for name, (fn, cells) in paths.items():
        seconds = median_seconds(fn, repeats)
        masks = fn()
        rows.append(dict(path=name, grids=grids, side=side, ms=1000 * seconds,
                         masked_share=masks.float().mean().item(),
                         masked_of_tissue=(masks.sum() / cells.sum()).item(),
                         outside_tissue=int((masks & ~cells).sum())))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='one batch size, 3 repeats')
    parser.add_argument('--grids', type=int, nargs='+', default=[128, 512, 2048])
    parser.add_argument('--side', type=int, default=20)
    parser.add_argument('--holes', type=float, default=0.2)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--out', default=str(ROOT / 'benchmarks/results/masking.json'))
    args = parser.parse_args(argv)
    grids, repeats = ([64], 3) if args.quick else (args.grids, args.repeats)
    torch.set_num_threads(1)
    rows = [r for g in grids for r in rows_for(g, args.side, args.holes, repeats)]
    print(f"{'path':<11} {'grids':>6} {'ms/batch':>9} {'masked':>7} {'of tissue':>9} "
          f"{'outside':>8}")
    for r in rows:
        print(f"{r['path']:<11} {r['grids']:>6} {r['ms']:>9.1f} {r['masked_share']:>7.3f} "
              f"{r['masked_of_tissue']:>9.3f} {r['outside_tissue']:>8}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(machine=platform.node(), side=args.side,
                                   holes=args.holes, repeats=repeats, rows=rows), indent=1))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
