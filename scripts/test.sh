#!/usr/bin/env bash
# Set up (as scripts/setup.sh), lint, and run the tests.
#
#   scripts/test.sh            the default tier: everything not marked slow, spread over the
#                              CPU cores (pytest-xdist; ~2.5 min on 2 cores)
#   scripts/test.sh --all      both tiers: the default tier, then the tests marked slow
#                              (DDP, sweeps, real signals, learning, generator statistics),
#                              then examples/check.sh (installs the example method package);
#                              CI (CI=true) always runs both
#   scripts/test.sh -k report  other arguments go to pytest (default tier)
#
# Each tier prints its slowest tests.
set -euo pipefail
cd "$(dirname "$0")/.."
all=false
if [ "${1:-}" = "--all" ]; then
  all=true
  shift
fi
[ "${CI:-}" = "true" ] && all=true
bash scripts/setup.sh
[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] || . .venv/bin/activate
ruff check .
ruff format --check .
echo "== default tier (not slow)"
python -m pytest -n auto --durations=15 "$@"
if $all; then
  echo "== slow tier (one process: its tests time real signals and child processes)"
  python -m pytest -m slow --durations=15 "$@"
  echo "== the example method package: install, lra-check, smoke run, leaderboard row"
  bash examples/check.sh
fi
