"""The GPU check's steps; each runs in its own process and writes one result row.

    python -m benchmarks.gpu_check.steps NAME --mode gpu|dry --work DIR --row FILE

A row holds ``status`` (``ok``: its ``threshold`` met; ``fail``; ``fallback``: it ran on a
slower path), ``threshold`` (what was asked, in words) and the step's numbers. The dry
run (``--mode dry``) runs each step on the CPU at toy size with no speed threshold.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from benchmarks.gpu_check.kernels import attention_kind
from benchmarks.gpu_check.train import (
    TrainSetup,
    build,
    step_flops,
    synthetic_batch,
    train_step,
)
from benchmarks.train_step import PEAK_DTYPES, matmul_peak, synchronize

ROOT = Path(__file__).resolve().parents[2]
#: The MFU the compiled bf16 step should reach at paper settings (the target), and the
#: least an uncompiled step must reach to count as running normally.
TARGET_MFU, SANE_MFU = 0.30, 0.05
CUDA_TEST_FILES = ('tests/engine/test_gpu_launch.py', 'tests/engine/test_optim_wrapper.py',
                   'tests/engine/test_host_syncs.py', 'tests/prototypes/test_faiss_backend.py')
IMPORTS = ('torch', 'mmengine', 'addict', 'termcolor', 'yapf', 'platformdirs', 'lightly',
           'redis', 'hiredis', 'faiss', 'slpd_plugin.engine', 'slpd_plugin.models',
           'slpd_plugin.prototypes', 'slpd_plugin.datasets')


def device_for(mode: str) -> torch.device:
    return torch.device('cuda' if mode == 'gpu' else 'cpu')


def verdict(ok: bool, threshold: str, **row) -> dict:
    return dict(status='ok' if ok else 'fail', threshold=threshold, **row)


def wheel_modules(site: Path) -> tuple[str, ...]:
    """Top-level modules the wheels installed in ``site`` put there (from their RECORD)."""
    names = set()
    for record in site.glob('*.dist-info/RECORD'):
        for line in record.read_text().splitlines():
            top = line.split(',')[0].split('/')[0]
            if top and '.' not in top.removesuffix('.py') and top != '__pycache__':
                names.add(top.removesuffix('.py'))
    return tuple(sorted(names - set(IMPORTS)))


def imports(mode: str, work: Path) -> dict:
    """Every package the steps need imports; where from; what torch sees."""
    import importlib
    site = str(work / 'site')
    origins, failed = {}, {}
    for name in IMPORTS + wheel_modules(work / 'site'):
        try:
            module = importlib.import_module(name)
            where = str(getattr(module, '__file__', '') or '')
            origins[name] = 'wheel' if where.startswith(site) else 'python'
        except Exception as e:  # noqa: BLE001 -- reported in the row
            failed[name] = f'{type(e).__name__}: {e}'[:200]
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(0) if cuda else None
    ok = not failed and (cuda or mode == 'dry')
    return verdict(ok, 'all import' + (', torch sees a GPU' if mode == 'gpu' else ''),
                   torch=torch.__version__, cuda=cuda, gpu=gpu, origins=origins,
                   failed=failed, python=sys.version.split()[0])


def measure_train(mode: str, backbone: str, precision: str, compile: bool) -> dict:
    """Regions/s, MFU, peak memory and the attention kernel of the step at paper size."""
    device = device_for(mode)
    setup = TrainSetup.for_mode(mode, backbone)
    model, optim = build(setup, precision, device, mode)
    batch = synthetic_batch(setup, device)
    flops = step_flops(model, optim, batch)  # uncompiled: FLOPs do not change
    if compile:
        options = {} if mode == 'gpu' else dict(backend='eager')  # dry: trace only
        for encoder in (model.student, model.teacher):
            encoder.backbone.compile(**options)
    start = time.perf_counter()
    for _ in range(setup.warmup):
        train_step(model, optim, batch)
    synchronize(device)
    warm_s = time.perf_counter() - start
    kind, kernels = attention_kind(lambda: train_step(model, optim, batch), device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(setup.steps):
        loss = train_step(model, optim, batch)
    synchronize(device)
    step_s = (time.perf_counter() - start) / setup.steps
    peak = matmul_peak(PEAK_DTYPES['bf16' if precision == 'bf16' else 'fp32'], device,
                       seconds=1.5 if mode == 'gpu' else 0.1) * 1e9
    mfu = flops / step_s / peak
    row = dict(backbone=backbone, precision=precision, compile=compile, batch=setup.batch,
               out_dim=setup.out_dim, regions_per_s=setup.batch / step_s, step_s=step_s,
               warmup_s=warm_s, gflop_per_region=flops / setup.batch / 1e9,
               peak_tflops=peak / 1e12, mfu=mfu, attention=kind, attention_kernels=kernels,
               loss=float(loss),
               peak_mem_gib=torch.cuda.max_memory_allocated(device) / 2**30
               if device.type == 'cuda' else None)
    finite = math.isfinite(row['loss'])
    if mode == 'dry':
        return verdict(finite, 'finite loss (dry run: no speed threshold)', **row)
    floor = TARGET_MFU if compile else SANE_MFU
    result = verdict(finite and mfu >= floor, f'finite loss, MFU >= {floor:.0%}'
                     + (' (the target)' if compile else ''), **row)
    if result['status'] == 'ok' and kind == 'math':
        result['status'] = 'fallback'
    return result


def data_wait(mode: str, work: Path) -> dict:
    """Share of the ViT4K-XS step (bf16; fp32 in the dry run) spent waiting for
    DataLoader workers reading a real memmap store (pinned memory, persistent workers,
    non-blocking copies)."""
    from benchmarks.train_step import TrainPath
    from slpd_plugin.datasets import RegionFeatureDataset
    from slpd_plugin.demo import make_synthetic_store
    gpu = mode == 'gpu'
    store = make_synthetic_store(work / 'store', num_slides=24 if gpu else 4,
                                 min_regions=20 if gpu else 4, max_regions=40 if gpu else 6,
                                 channels=384, progress=False)
    args = SimpleNamespace(device=str(device_for(mode)), workers=8 if gpu else 1,
                           channels=384, out_dim=65536 if gpu else 1024)
    path = TrainPath('ours+bf16' if gpu else 'ours', args, RegionFeatureDataset(str(store)),
                     batch_size=128 if gpu else 4)
    path.block(2 if gpu else 1, timed=False)
    path.block(8 if gpu else 1, timed=True)
    row = path.row()
    row.update(workers=args.workers,
               store_mb=sum(f.stat().st_size for f in store.rglob('*') if f.is_file()) / 2**20)
    if not gpu:
        return verdict(True, 'runs (dry run: no threshold)', **row)
    return verdict(row['data_share'] < 0.10, 'data wait < 10% of the step', **row)


def bf16_vs_fp32(mode: str, work: Path) -> dict:
    """The losses of one batch (same crops, same centres) in strict fp32, with TF32 and
    in bf16: relative differences to fp32."""
    from slpd_plugin.engine.launch import set_tf32
    device = device_for(mode)
    setup = TrainSetup.for_mode(mode, 'vit4k')
    model, optim = build(setup, 'fp32', device, mode)
    out = model.data_preprocessor(synthetic_batch(setup, device), training=True)
    centres = {k: v.clone() for k, v in model.state_dict().items() if 'center' in k}
    values = {}
    for precision in ('fp32', 'tf32', 'bf16'):
        model.load_state_dict(centres, strict=False)
        torch.manual_seed(0)  # the student's stochastic depth drops the same paths
        if device.type == 'cuda':
            set_tf32(precision == 'tf32')
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16,
                                             enabled=precision == 'bf16'):
            losses = model.loss(out['inputs'], out['data_samples'], out.get('masks'))
        values[precision] = {k: float(v) for k, v in losses.items()}
    rel = {p: max(abs(values[p][k] - v) / abs(v) for k, v in values['fp32'].items())
           for p in ('tf32', 'bf16')}
    ok = rel['bf16'] <= 2e-2 and rel['tf32'] <= 2e-3
    return verdict(ok, 'relative loss difference to fp32: bf16 <= 2e-2, TF32 <= 2e-3',
                   losses=values, max_rel_diff=rel, cuda=device.type == 'cuda')


def refresh(mode: str, backend: str) -> dict:
    """One prototype refresh (k-means of every slide, assignment, neighbours) of random
    embeddings on the device, timed."""
    from slpd_plugin.prototypes import build_bank
    from slpd_plugin.prototypes.faiss_backend import faiss_info
    device = device_for(mode)
    slides, per_slide = (1000, 100) if mode == 'gpu' else (20, 30)
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(slides * per_slide, 256, generator=g).to(device)
    slide_index = torch.arange(slides, device=device).repeat_interleave(per_slide)
    synchronize(device)
    start = time.perf_counter()
    bank = build_bank(emb, slide_index, num_clusters=4, min_regions=8, num_neighbors=1,
                      backend=backend)
    synchronize(device)
    seconds = time.perf_counter() - start
    row = dict(backend=backend, regions=len(emb), slides=slides, refresh_s=seconds,
               valid_slides=int(bank.valid.sum()), bank_device=str(bank.centroids.device))
    if backend == 'faiss':
        row['faiss'] = faiss_info()
    limit = 30.0 if mode == 'gpu' else 60.0
    result = verdict(seconds < limit and row['valid_slides'] == slides,
                     f'every slide clustered in < {limit:.0f} s', **row)
    cpu_faiss = backend == 'faiss' and row['faiss']['num_gpus'] == 0
    if result['status'] == 'ok' and device.type == 'cuda' and cpu_faiss:
        result.update(status='fallback', detail='faiss has no GPU: k-means ran on the CPU')
    return result


def resume(mode: str, work: Path) -> dict:
    """``tools/train.py`` on the tiny SLPD config (prototype terms from epoch 2): 2 epochs
    straight, then its epoch-1 checkpoint resumed in a fresh folder for epoch 2; the
    logged losses of epoch 2 must agree to a tolerance (on CUDA the bicubic resize and
    SDPA backward are not deterministic; on the CPU they must agree to 1e-5)."""
    config = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'
    env = dict(os.environ, **({} if mode == 'gpu' else dict(CUDA_VISIBLE_DEVICES='')))
    amp = ['--amp'] if mode == 'gpu' else []
    options = [f'train_dataloader.dataset.store={work / "resume_store"}',
               'train_cfg.max_epochs=2']

    def train(out: Path, *extra: str) -> None:
        subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), str(config),
                        '--work-dir', str(out), *amp, *extra, '--cfg-options', *options],
                       cwd=ROOT, env=env, check=True)

    straight, resumed = work / 'resume_straight', work / 'resume_split'
    train(straight)
    resumed.mkdir()
    shutil.copy(straight / 'epoch_1.pth', resumed / 'epoch_1.pth')
    train(resumed, '--resume', str(resumed / 'epoch_1.pth'))
    before, after = losses_by_iter(straight), losses_by_iter(resumed)
    diffs = [abs(after[i][k] - before[i][k]) / max(abs(before[i][k]), 1e-12)
             for i in after for k in after[i] if i in before and k in before[i]]
    tol = 1e-2 if mode == 'gpu' else 1e-5
    worst = max(diffs) if diffs else None
    return verdict(worst is not None and worst <= tol and min(after) > max(before) // 2,
                   f'every loss of the resumed epoch within rel {tol:g} of the straight run',
                   iters_compared=len(after), max_rel_diff=worst,
                   has_prototype_terms=any('loss_intra' in r for r in after.values()))


def losses_by_iter(work_dir: Path) -> dict[int, dict[str, float]]:
    rows = [json.loads(line) for f in sorted(work_dir.glob('*/vis_data/scalars.json'))
            for line in f.read_text().splitlines() if line]
    return {r['iter']: {k: v for k, v in r.items() if k.startswith('loss')}
            for r in rows if 'loss' in r}


def cuda_tests(mode: str, work: Path) -> dict:
    """The tests marked ``cuda`` in the files that hold them (the 2-GPU NCCL test
    needs a second GPU and is not among them)."""
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-m', 'cuda',
           '-rs', '--timeout', '120', f'--basetemp={work / "pytest"}', *CUDA_TEST_FILES]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(proc.stdout[-20000:], proc.stderr[-5000:], sep='\n')
    counts = {k: 0 for k in ('passed', 'failed', 'skipped', 'error', 'deselected')}
    for n, key in re.findall(r'(\d+) (passed|failed|skipped|errors?|deselected)', proc.stdout):
        counts[key.rstrip('s') if key.startswith('error') else key] = int(n)
    clean = proc.returncode in (0, 5) and not counts['failed'] and not counts['error']
    ok = clean and (counts['passed'] > 0 or mode == 'dry')
    return verdict(ok, 'no failure' + (' and some passed' if mode == 'gpu' else
                                       ' (dry run: they skip without CUDA)'),
                   files=list(CUDA_TEST_FILES), returncode=proc.returncode, **counts)


RUNNERS = {
    'imports': imports,
    'train_vit4k_bf16': lambda m, w: measure_train(m, 'vit4k', 'bf16', False),
    'train_alibi_bf16': lambda m, w: measure_train(m, 'alibi', 'bf16', False),
    'train_vit4k_bf16_compile': lambda m, w: measure_train(m, 'vit4k', 'bf16', True),
    'train_alibi_bf16_compile': lambda m, w: measure_train(m, 'alibi', 'bf16', True),
    'train_vit4k_tf32': lambda m, w: measure_train(m, 'vit4k', 'tf32', False),
    'train_alibi_tf32': lambda m, w: measure_train(m, 'alibi', 'tf32', False),
    'data_wait': data_wait,
    'bf16_vs_fp32': bf16_vs_fp32,
    'refresh_torch': lambda m, w: refresh(m, 'torch'),
    'refresh_faiss': lambda m, w: refresh(m, 'faiss'),
    'resume': resume,
    'cuda_tests': cuda_tests,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('name', choices=sorted(RUNNERS))
    parser.add_argument('--mode', choices=('gpu', 'dry'), required=True)
    parser.add_argument('--work', type=Path, required=True)
    parser.add_argument('--row', type=Path, required=True)
    args = parser.parse_args()
    row = RUNNERS[args.name](args.mode, args.work)
    args.row.write_text(json.dumps(row, default=str))


if __name__ == '__main__':
    main()
