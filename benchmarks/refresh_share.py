"""Share of an epoch spent on the prototype refresh, at TCGA-NSCLC scale.

Measured in one run on the paper's model (ViT-4K-XS, 65,536-d head), fp32:

- a training step per region (batch 32, batched multi-crop + SDPA: the plugin's path);
- the refresh's embedding pass per region (``embed_grids``: teacher, eval mode, centre
  14x14 crop, batch 256, no autograd);
- the refresh's clustering + matching (``build_bank``, K = 4, min 32 regions) on 62,853
  synthetic 256-d region embeddings of 1,041 slides.

An epoch at TCGA scale is then ``N x step`` and the refresh ``N x pass + clustering``
(``source='pass'``, the default) or ``clustering`` only (``source='memory'``).

    python benchmarks/refresh_share.py [--quick] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import default_collate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.prototypes import region_counts, synthetic_regions  # noqa: E402
from benchmarks.train_step import build, step  # noqa: E402
from slpd_plugin.checkpoints.embed import embed_grids  # noqa: E402
from slpd_plugin.datasets import RegionFeatureDataset  # noqa: E402
from slpd_plugin.demo import make_synthetic_store  # noqa: E402
from slpd_plugin.prototypes import build_bank  # noqa: E402

LUNG_SLIDES = 1041


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='4096-d head, fewer repeats')
    parser.add_argument('--out', default=str(ROOT / 'benchmarks/results/refresh_share.json'))
    args = parser.parse_args()
    model_args = argparse.Namespace(channels=384, out_dim=4096 if args.quick else 65536)
    repeats = 1 if args.quick else 3

    with tempfile.TemporaryDirectory() as tmp:
        store = make_synthetic_store(Path(tmp) / 'store', num_slides=8, min_regions=40,
                                     max_regions=40, progress=False)
        dataset = RegionFeatureDataset(str(store))
        model, optim = build(model_args, 'sdpa', None)
        train_batch = model.data_preprocessor(
            default_collate([dataset[i] for i in range(32)]), training=True)
        step_s = timed(lambda: step(model, optim, train_batch['inputs'],
                                    train_batch['data_samples'], host_sync=False), repeats)
        grids = default_collate([dataset[i % len(dataset)] for i in range(256)])['inputs']
        pass_s = timed(lambda: embed_grids(model, grids), repeats)

    counts = region_counts(LUNG_SLIDES, seed=0)
    embeddings, slide_index = synthetic_regions(counts, seed=0)
    cluster_s = timed(lambda: build_bank(embeddings, slide_index, num_clusters=4,
                                         min_regions=32, num_slides=LUNG_SLIDES), 1)
    n = int(counts.sum())
    epoch_s = n * step_s / 32
    pass_total = n * pass_s / 256
    rows = [dict(source=src, refresh_s=refresh, epoch_s=epoch_s,
                 share=refresh / (epoch_s + refresh))
            for src, refresh in (('pass', pass_total + cluster_s), ('memory', cluster_s))]
    print(f'\nTCGA-NSCLC scale: {n} regions, {LUNG_SLIDES} slides; head {model_args.out_dim}; '
          f'step {1e3 * step_s / 32:.1f} ms/region, pass {1e3 * pass_s / 256:.2f} ms/region, '
          f'clustering + matching {cluster_s:.1f} s')
    print(f"{'source':<8} {'refresh s':>10} {'epoch s':>10} {'refresh share':>14}")
    for r in rows:
        print(f"{r['source']:<8} {r['refresh_s']:>10.0f} {r['epoch_s']:>10.0f} "
              f"{100 * r['share']:>13.1f}%")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(machine=platform.node(), regions=n, slides=LUNG_SLIDES,
                                   head=model_args.out_dim, step_s_per_region=step_s / 32,
                                   pass_s_per_region=pass_s / 256, cluster_s=cluster_s,
                                   rows=rows), indent=1))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
