#!/usr/bin/env bash
# The GPU check: every part of the CUDA path once, about ten minutes on one GPU (steps and
# outputs: lra/check/gpu.py). On a machine without CUDA, or with --dry, a small CPU version of
# every step runs instead (CI runs it).
#
#   scripts/gpu_check.sh                           # -> $LRA_RESULTS_DIR/gpu_check (default outputs/results/gpu_check)
#   scripts/gpu_check.sh --out results/gpu_check   # the project's committed measurement
#   scripts/gpu_check.sh --dry --out /tmp/check    # the CPU dry run
#
# Exit status 1 when a step fails (the summary names it).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m lra.check.gpu "$@"
