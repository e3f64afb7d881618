#!/usr/bin/env bash
# First check of a fresh GPU machine, about 10 minutes, one table at the end.
#
# Usage: tools/gpu_check.sh [--no-install] [--dry-run] [--out DIR]
#   --no-install  use $PYTHON (default: .venv/bin/python if present, else python3) as is
#   --dry-run     print the plan and check that everything it names exists; runs nothing
#                 that needs a GPU (works on any machine)
#   --out DIR     logs, JSON and work dirs (default: work_dirs/gpu_check)
#
# Steps: install (make install FAISS=gpu: torch + faiss-gpu); the tests marked `cuda`;
# benchmarks/train_step.py --device cuda (the original-style fp16 step vs ours, bf16 and
# fp16); one demo epoch through tools/train.py with --amp and with --amp fp16; one
# prototype refresh with the torch and with the faiss backend (must say "on cuda:");
# with >= 2 GPUs a 2-process NCCL run whose weights, centres and bank must be identical
# on both ranks. Each step has its own timeout; a failed step does not stop the others.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
INSTALL=1 DRY=0 OUT=work_dirs/gpu_check
while [ $# -gt 0 ]; do
    case "$1" in
        --no-install) INSTALL=0 ;;
        --dry-run) DRY=1 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RESULTS="$OUT/results.tsv"
: > "$RESULTS"
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
STORE="$OUT/store"
DEMO=(--cfg-options "train_dataloader.dataset.store=$STORE" train_cfg.max_epochs=1
      default_hooks.checkpoint.interval=1)

# step NAME TIMEOUT_S CMD...: run CMD with its output in $OUT/NAME.log, record a row.
step() {
    local name=$1 limit=$2; shift 2
    if [ "$DRY" = 1 ]; then
        local cmd="$*"
        printf '%s\tplanned\t-\t%s\n' "$name" "${cmd//$'\n'/ }" >> "$RESULTS"
        return 0
    fi
    echo "== $name: $*"
    local start=$SECONDS rc
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    local status=ok
    [ $rc = 124 ] && status="TIMEOUT ${limit}s" || { [ $rc != 0 ] && status="FAILED rc=$rc"; }
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" \
        "$(detail "$name")" >> "$RESULTS"
    [ $rc = 0 ] || tail -n 20 "$OUT/$name.log"
}

# detail NAME: the one number or line a row reports, read from its log/JSON.
detail() {
    local log="$OUT/$1.log"
    case "$1" in
        environment) tail -n 1 "$log" ;;
        cuda_tests) grep -E '[0-9]+ (passed|failed)' "$log" | tail -n 1 ;;
        train_step) "$PY" - "$OUT/train_step.json" <<'EOF' 2>&1 | tail -n 1
import json, sys
rows = json.load(open(sys.argv[1]))['rows']
print('; '.join(f"{r['path']} {r['regions_per_s']:.0f}/s x{r['speedup_vs_naive']:.2f}"
                for r in rows))
EOF
        ;;
        demo_*) grep -oE 'loss: [0-9.e+-]+' "$log" | tail -n 1 ;;
        refresh_*) grep -oE 'prototype refresh: k-means backend .*' "$log" | head -n 1 ;;
        nccl_2gpu) cmp -s "$OUT/nccl/consistency/rank0.json" "$OUT/nccl/consistency/rank1.json" \
            && echo "weights, centres, bank identical on both ranks" \
            || echo "ranks DIFFER (or no dumps)" ;;
    esac
}

if [ "$DRY" = 0 ] && ! command -v nvidia-smi > /dev/null; then
    echo "gpu_check.sh: no NVIDIA GPU here (nvidia-smi not found). Run it on a GPU machine," \
         "or use --dry-run to check the plan." >&2
    exit 3
fi
if [ "$DRY" = 1 ]; then  # everything the plan names must exist
    for f in Makefile benchmarks/train_step.py tools/train.py tools/dist_train.sh \
             configs/demo_dino4k.py configs/demo_slpd.py tests/engine/test_nccl.py; do
        [ -e "$f" ] || { echo "gpu_check.sh: missing $f" >&2; exit 1; }
    done
fi

if [ "$INSTALL" = 1 ]; then
    step install 420 make install FAISS=gpu
    PY=.venv/bin/python
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
step environment 120 "$PY" -c "
import torch
from slpd_plugin.prototypes.faiss_backend import faiss_info
i = faiss_info()
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
print(f'torch {torch.__version__}, {torch.cuda.device_count()} x {name}; faiss '
      f\"{i['version']} gpu_build={i['gpu_build']} sees {i['num_gpus']} GPU(s)\")"
[ "$DRY" = 1 ] || "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || { echo "gpu_check.sh: torch in $PY does not see a GPU" >&2; exit 3; }
NGPU=$([ "$DRY" = 1 ] && echo 2 || "$PY" -c 'import torch; print(torch.cuda.device_count())')

step cuda_tests 300 "$PY" -m pytest -q -m cuda tests -rs
step train_step 240 "$PY" benchmarks/train_step.py --device cuda --quick --no-probe \
    --sweep --paths naive ours ours+bf16 ours+fp16 --out "$OUT/train_step.json"
step demo_bf16 180 "$PY" tools/train.py configs/demo_dino4k.py --amp \
    --work-dir "$OUT/demo_bf16" "${DEMO[@]}"
step demo_fp16 180 "$PY" tools/train.py configs/demo_dino4k.py --amp fp16 \
    --work-dir "$OUT/demo_fp16" "${DEMO[@]}"
for backend in torch faiss; do
    step "refresh_$backend" 180 "$PY" tools/train.py configs/demo_slpd.py --amp \
        --work-dir "$OUT/refresh_$backend" "${DEMO[@]}" default_hooks.prototype.warm_epochs=0 \
        "default_hooks.prototype.backend=$backend"
done
if [ "$NGPU" -ge 2 ]; then
    step nccl_2gpu 240 env PYTHON="$PY" tools/dist_train.sh configs/demo_slpd.py 2 --amp \
        --work-dir "$OUT/nccl" "${DEMO[@]}" default_hooks.prototype.warm_epochs=0 \
        default_hooks.state_consistency.dump=True
else
    printf 'nccl_2gpu\tskipped\t-\tneeds 2 GPUs, found %s\n' "$NGPU" >> "$RESULTS"
fi

echo
"$PY" - "$RESULTS" <<'EOF'
import sys
rows = [line.rstrip('\n').split('\t') for line in open(sys.argv[1]) if line.strip()]
head = ['step', 'result', 'seconds', 'detail']
widths = [max(len(r[i]) for r in rows + [head]) for i in range(3)]
fmt = lambda r: ' | '.join(c.ljust(w) for c, w in zip(r[:3], widths)) + ' | ' + r[3]
print(fmt(head))
print('-+-'.join('-' * w for w in widths) + '-+-' + '-' * 6)
print('\n'.join(fmt(r) for r in rows))
EOF
echo "logs: $OUT"
! grep -qP '\t(FAILED|TIMEOUT)' "$RESULTS"
