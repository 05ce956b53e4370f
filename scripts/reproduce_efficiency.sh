#!/usr/bin/env bash
# Reproduce our efficiency table (LRA Table 2 protocol): one training step of the Text-recipe
# classifier for every method at lengths 1K, 2K, 3K, 4K, batch 32, bf16, on one GPU; speed and
# peak memory relative to transformer_naive and transformer, parameter counts with the 10 % rule.
#
#   scripts/reproduce_efficiency.sh                      # $LRA_RESULTS_DIR/bench, default outputs/results/bench
#   scripts/reproduce_efficiency.sh mode=both            # also one attention layer alone
#   scripts/reproduce_efficiency.sh device=cpu threads=1 batch_sizes=[1] warmup=1 repeats=3  # the CPU table
#   scripts/reproduce_efficiency.sh out_dir=results/bench   # into the committed results/bench
#
# Rows go to <out_dir>/<device type>_text.csv; out_dir defaults to $LRA_RESULTS_DIR/bench or
# outputs/results/bench (git-ignored), never the committed results/bench unless asked. Every
# call is one invocation (bench_id): its ratios use only its own transformer_naive and
# transformer rows, so measure the methods you compare, and the references, in one call.
#
# Expected time (ESTIMATE): every point runs in a fresh process (start-up ~10-20 s, 2 warm-up and
# 5 timed steps of <= 32 x 4K tokens): ~23 methods x 4 lengths x ~30 s = ~0.8 GPU-h on one GPU.
# The committed CPU table (batch 1, 1 thread, 23 methods) took 25 minutes on our 2-core machine,
# in two calls; quadratic methods at 4K dominate it.
set -euo pipefail
cd "$(dirname "$0")/.."
lra-bench "$@"
