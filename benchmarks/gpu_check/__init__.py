"""The first check of a GPU machine, made to fit one short device call.

``tools/gpu_check.sh`` calls ``python3 -m benchmarks.gpu_check``: ``prepare`` (here:
pinned wheels into ``.whl/``, the size of what travels, the call to make), ``run`` (on
the GPU machine: offline install, then :mod:`.steps` under a deadline, rows into
``$OUT/results.jsonl``) and ``dry`` (the same on the CPU at toy sizes, for CI).
Modules: :mod:`.prepare`, :mod:`.plan` (steps and budgets), :mod:`.driver`,
:mod:`.steps`, :mod:`.train` (the paper-size step), :mod:`.kernels` (attention kernel).
"""
