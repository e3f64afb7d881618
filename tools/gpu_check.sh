#!/usr/bin/env bash
# First check of a GPU machine, made to fit one device call (docs/benchmarks.md, "GPU check").
#
# Usage: tools/gpu_check.sh --prepare [--list] | --run | --dry-run [--out DIR]
#   --prepare  (here, with network) download the pinned wheels of tools/gpu_wheels.txt into
#              .whl/, check that the travelling tree stays under 64 MiB, print the call to
#              make on the GPU machine (command, carry, timeout). --list: download nothing.
#   --run      (default; on the GPU machine) install .whl/ offline into /tmp, then the steps
#              under a 480-s deadline; one row per step appended to $OUT/results.jsonl as it
#              ends, everything else in $OUT/gpu_check.log, work dirs in /tmp.
#   --dry-run  the same plumbing on the CPU at toy sizes (< 2 minutes), as CI runs it.
#   --out DIR  results folder instead of $OUT.
# Other options go to the Python side: --steps NAME... (a subset, in order), --wheels DIR,
# --deadline S (see `python3 -m benchmarks.gpu_check --help`).
# The logic is in benchmarks/gpu_check/; this script only picks the mode and the python.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=run ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --prepare) MODE=prepare ;;
        --run) MODE=run ;;
        --dry-run) MODE=dry ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
# The GPU image's python3 holds its torch; here the project's venv, if there is one.
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ "$MODE" != run ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONUNBUFFERED=1
exec "$PY" -m benchmarks.gpu_check "$MODE" "${ARGS[@]}"
