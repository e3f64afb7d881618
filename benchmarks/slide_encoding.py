"""Whole-slide encoding: peak memory of the dense forward against the chunked one, by N.

One slide per size: ``N`` present patches, 70 % of a square-ish bounding grid (the rest
holes), random ``C``-d features, through an ALiBiViT (TITAN-style, arch ``xs`` by
default) in eval mode, one torch thread:

- ``dense``: the backbone's own forward on the bounding grid with the tissue mask, as a
  region grid is embedded: one ``(1, h, T, T)`` float bias over all ``T = H*W + 1``
  grid cells (holes included), its masked copy and the attention scores of each block;
- ``chunked``: :func:`~slpd_plugin.models.backbones.slide_encoding.encode_slide` over the
  ``N`` present cells, attention for ``--chunk-size`` queries at a time against all keys
  (memory ``O(chunk * N)``).

Each row runs in a fresh process so that its peak RSS (``VmHWM`` reset before the call)
is its own. The dense forward is not run where its three ``h x T x T`` float32 arrays
would exceed ``--dense-max-gb``; the row then says how much it would need. Where both
run, the largest difference between their embeddings is reported.

    python benchmarks/slide_encoding.py --quick   # 1,000 to 4,000 patches, 2 blocks
    python benchmarks/slide_encoding.py           # up to 64,000 patches, 6 blocks
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.memory import in_fresh_process, measure  # noqa: E402
from slpd_plugin.models.backbones import ALiBiViT, encode_slide  # noqa: E402

TISSUE = 0.7  # present share of the bounding grid
BIAS_COPIES = 3  # dense: the cached bias, its masked copy, one block's scores


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='1,000, 2,000 and 4,000 patches, 2 blocks')
    p.add_argument('--sizes', type=int, nargs='+',
                   default=[1000, 4000, 8000, 16000, 32000, 64000], help='patches N')
    p.add_argument('--arch', default='xs', help="ALiBiViT arch (default 'xs')")
    p.add_argument('--depth', type=int, default=None, help='blocks (default: the arch)')
    p.add_argument('--channels', type=int, default=768, help='feature dim C (default 768)')
    p.add_argument('--chunk-size', type=int, default=1024, help='queries per chunk')
    p.add_argument('--dense-max-gb', type=float, default=6.0,
                   help='run the dense forward only below this estimate (default 6)')
    p.add_argument('--row', nargs=2, metavar=('METHOD', 'N'), help=argparse.SUPPRESS)
    p.add_argument('--out', type=Path, default=Path('work_dirs/bench/slide_encoding.json'),
                   help='JSON output (default work_dirs/bench/slide_encoding.json)')
    return p


def grid_of(n: int) -> tuple[int, int]:
    """A bounding grid ``(H, W)``, W about 4/3 H, holding ``n`` cells at 70 % tissue."""
    cells = n / TISSUE
    height = max(1, math.isqrt(int(cells * 3 / 4)))
    return height, max(math.ceil(cells / height), 1)


def dense_gb(n: int, heads: int) -> float:
    """The dense forward's ``h x T x T`` float32 arrays for an ``n``-patch slide, GB."""
    height, width = grid_of(n)
    return BIAS_COPIES * heads * (height * width + 1) ** 2 * 4 / 2 ** 30


def slide(n: int, channels: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
    """Bounding grid ``(C, H, W)``, mask ``(H, W)`` with ``n`` cells, their cells (n, 2)."""
    height, width = grid_of(n)
    gen = torch.Generator().manual_seed(seed)
    flat = torch.zeros(height * width, dtype=torch.bool)
    flat[torch.randperm(height * width, generator=gen)[:n]] = True
    mask = flat.reshape(height, width)
    cells = mask.nonzero()
    grid = torch.zeros(channels, height, width)
    grid[:, cells[:, 0], cells[:, 1]] = torch.randn(channels, n, generator=gen)
    return grid, mask, cells


def run_row(args: argparse.Namespace, method: str, n: int) -> dict:
    """One measurement in this process: seconds, peak RSS, the embedding."""
    torch.manual_seed(0)
    model = ALiBiViT(arch=args.arch, in_channels=args.channels, depth=args.depth,
                     drop_path_rate=0.0).eval()
    grid, mask, cells = slide(n, args.channels)
    feats = grid[:, cells[:, 0], cells[:, 1]].T.contiguous()  # (N, C)

    def work() -> torch.Tensor:
        with torch.no_grad():
            if method == 'dense':
                return model(grid[None], mask[None])[0]
            return encode_slide(model, feats, cells, args.chunk_size)

    emb, seconds, peak = measure(work)
    return dict(method=method, patches=n, grid=list(grid.shape[1:]), seconds=round(seconds, 3),
                peak_rss_mb=round(peak, 1), embedding=emb.tolist())


def print_table(rows: list[dict]) -> None:
    print(f'{"patches":>8} {"grid":>9} {"dense s":>8} {"dense MB":>10} {"chunked s":>9} '
          f'{"chunked MB":>10} {"max |diff|":>10}')
    for r in rows:
        dense = (f'{r["dense_s"]:>8.2f} {r["dense_peak_mb"]:>10,.0f}' if r['dense_ran']
                 else f'{"-":>8} {"needs " + format(r["dense_would_need_gb"], ".0f") + " GB":>10}')
        diff = f'{r["max_abs_diff"]:>10.1e}' if r['dense_ran'] else f'{"-":>10}'
        print(f'{r["patches"]:>8,} {r["grid"][0]:>4}x{r["grid"][1]:<4} {dense} '
              f'{r["chunked_s"]:>9.2f} {r["chunked_peak_mb"]:>10,.0f} {diff}')


def main() -> int:
    args = build_parser().parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.sizes, args.depth = [1000, 2000, 4000], args.depth or 2
    if args.row:
        print(json.dumps(run_row(args, args.row[0], int(args.row[1]))))
        return 0
    heads = ALiBiViT(arch=args.arch, in_channels=8, depth=1).num_heads
    options = ['--arch', args.arch, '--channels', str(args.channels), '--chunk-size',
               str(args.chunk_size)] + (['--depth', str(args.depth)] if args.depth else [])
    rows = []
    for n in args.sizes:
        def one(method: str) -> dict:
            cmd = [sys.executable, __file__, '--row', method, str(n), *options]
            return in_fresh_process(cmd, f'{method} N={n}')
        chunked = one('chunked')
        need = dense_gb(n, heads)
        row = dict(patches=n, grid=chunked['grid'], chunked_s=chunked['seconds'],
                   chunked_peak_mb=chunked['peak_rss_mb'], dense_ran=need <= args.dense_max_gb,
                   dense_would_need_gb=round(need, 2))
        if row['dense_ran']:
            dense = one('dense')
            diff = (torch.tensor(dense['embedding']) - torch.tensor(chunked['embedding']))
            row.update(dense_s=dense['seconds'], dense_peak_mb=dense['peak_rss_mb'],
                       max_abs_diff=float(diff.abs().max()))
        rows.append(row)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    note = f'1-min load average {os.getloadavg()[0]:.1f} at the end of the run (shared CPU).'
    args.out.write_text(json.dumps(dict(
        rows=rows, arch=args.arch, depth=args.depth, channels=args.channels,
        chunk_size=args.chunk_size, tissue=TISSUE, dense_max_gb=args.dense_max_gb,
        note=note, machine=dict(cpus=os.cpu_count(), platform=platform.platform())),
        indent=1))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
