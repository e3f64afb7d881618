"""The GPU check's steps, in order of value, with their time budgets.

A device call may run 600 s; the check's deadline is 480 s (install included), so a
slow machine start or a hung step still leaves the rows written so far to come back.
Budgets add up to more than the deadline on purpose: the last steps (the second
compiled train step, faiss) run only if time is left. The dry run (``--dry-run``, CPU)
runs the same steps at toy sizes under a 110-s deadline (on a slow or busy CPU
the last ones are skipped, as the deadline intends).

Example:
    >>> [s.name for s in STEPS][:2]
    ['imports', 'train_vit4k_bf16']
"""
from __future__ import annotations

from dataclasses import dataclass

DEADLINE_S = {'gpu': 480.0, 'dry': 110.0}


@dataclass(frozen=True)
class Step:
    """One step: its name (the function in :mod:`.steps`), budget on the GPU and in the
    dry run (seconds), the least time worth starting it with, and what it measures."""

    name: str
    gpu_s: float
    dry_s: float
    min_s: float
    what: str

    def budget(self, mode: str) -> float:
        return self.gpu_s if mode == 'gpu' else self.dry_s


STEPS = (
    Step('imports', 40, 30, 5, 'every package imports; the GPU torch sees'),
    Step('train_vit4k_bf16', 55, 25, 20,
         'paper-size step (batch 128, 65,536-d head, prototype terms), ViT4K-XS, bf16'),
    Step('train_alibi_bf16', 55, 25, 20,
         'paper-size step, ALiBiViT titan on 8192-px regions (16x16 CONCH grids), bf16'),
    Step('train_vit4k_bf16_compile', 100, 40, 45, 'the ViT4K-XS step, torch.compile, bf16'),
    Step('train_vit4k_tf32', 45, 25, 20, 'the ViT4K-XS step in fp32 with TF32'),
    Step('train_alibi_tf32', 45, 25, 20, 'the ALiBiViT step in fp32 with TF32'),
    Step('data_wait', 50, 25, 20, 'DataLoader workers from a real memmap store'),
    Step('bf16_vs_fp32', 30, 20, 10, 'losses of one batch: bf16 and TF32 against fp32'),
    Step('refresh_torch', 30, 20, 10, 'one prototype refresh, torch k-means on the GPU'),
    Step('resume', 90, 60, 40, 'resume 1+1 epochs against 2 straight'),
    Step('cuda_tests', 90, 60, 20, 'the tests marked cuda, named by file'),
    Step('train_alibi_bf16_compile', 100, 40, 45, 'the ALiBiViT step, torch.compile, bf16'),
    Step('refresh_faiss', 30, 20, 10, 'one refresh with faiss (CPU build: a fallback)'),
)
