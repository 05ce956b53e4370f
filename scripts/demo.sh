#!/usr/bin/env bash
# The main job on the built-in default, from a fresh checkout: set up, generate a small ListOps,
# train the full-attention Transformer on the CPU (experiment=smoke), print the leaderboard.
# Records and tables go to outputs/results (git-ignored). Run again, it finds the finished run
# and only reports; `LRA_RESULTS_DIR=results ./scripts/demo.sh trainer.resume=false` retrains
# and regenerates the project's committed record and tables.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] || . .venv/bin/activate
start=$(date +%s)
lra-data task=listops experiment=smoke
lra-train experiment=smoke model=transformer "$@"
lra-report
echo "demo: data + training + report took $(( $(date +%s) - start )) s"
