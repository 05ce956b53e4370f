#!/usr/bin/env bash
# How each method's time and memory grow with length: one attention layer of the Text recipe
# (forward + backward), batch 1, one CPU thread, lengths 1K to 16K, every method. A point that
# passes the memory or time limit is recorded as oom/timeout and the method's longer lengths
# are skipped.
#
#   scripts/bench_growth.sh                          # -> $LRA_RESULTS_DIR/bench/cpu_growth.csv
#   scripts/bench_growth.sh out_dir=results/bench    # the committed table
#   scripts/bench_growth.sh device=cuda threads=null # the same on a GPU
#
# Then `lra-report` plots time and memory against length (plots/bench_*_attention_*).
set -euo pipefail
cd "$(dirname "$0")/.."
lra-bench mode=attention lengths=[1024,2048,4096,8192,16384] batch_sizes=[1] device=cpu \
  threads=1 warmup=1 repeats=3 timeout_s=600 mem_limit_mb=12000 out=cpu_growth "$@"
