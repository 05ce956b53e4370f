#!/usr/bin/env bash
# The example method package end to end, as a user would take it: install it into the active
# environment (scripts/setup.sh's .venv if none is active), check it with lra-check, train it on
# the smoke protocol and find its row in the leaderboard. CI runs this after the test tiers.
#
#   examples/check.sh [OUT]     OUT: where checks, records and tables go (default: a temp folder)
#
# The curve stops at 4K tokens here (lra-check's default goes to 8K) to stay within a small CI
# machine's memory.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] || . .venv/bin/activate
out="${1:-$(mktemp -d -t lra-example-XXXXXX)}"
python -m pip install -q ./examples/sigmoid_attention
lra-check sigmoid --lengths 1024,2048,4096 --out "$out/check"
lra-train experiment=smoke model=sigmoid results_dir="$out" hydra.run.dir="$out/run" \
  trainer.progress=false
lra-report results_dir="$out" >/dev/null
row="sigmoid \[lra-sigmoid-attention 0.1.0\]"
if ! grep -q "| ours | $row |" "$out/leaderboard.md"; then
  echo "examples/check.sh: no row '$row' in $out/leaderboard.md" >&2
  exit 1
fi
grep "| ours | $row |" "$out/leaderboard.md"
echo "examples/check.sh: ok ($out)"
