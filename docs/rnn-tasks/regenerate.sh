#!/bin/sh
# Regenerates docs/rnn-tasks (issue 23): HF with structural damping against Adam at the
# two learning rates a short sweep picks, on the pathological RNN tasks, with the
# release binary on both cores. Each stage resumes the study in $OUT: a run that
# finished is reused, so the script can be stopped and started again, and the stages
# can run on different days. About 7 hours of machine time in all (less where runs
# succeed early).
#
#   cargo build --release -p hf-bench --bin hessfree
#   python3 docs/rnn-tasks/seed.py docs/rnn-tasks OUT   # reuse the committed runs
#   sh docs/rnn-tasks/regenerate.sh [OUT]     # then copy OUT's results and plots here
#
# A committed sweep is reused the same way (seed.py docs/rnn-tasks/sweep OUT-sweep).
set -eu
OUT=${1:-rnn-study}
HF=${HF:-target/release/hessfree}
RATES=${RATES:-3e-4,1e-3}
study() { "$HF" experiment rnn-tasks --resume --adam-rates "$RATES" --backend flex --out "$OUT" "$@"; }
# The sweep that picks RATES: Adam alone, 120 s per rate, on the two tasks at T = 50.
"$HF" experiment rnn-tasks --resume --tasks addition,temporal-order2 --lengths 50 --budget 120 \
    --adam-rates 3e-4,1e-3,3e-3,1e-2 --start first-order --backend flex --out "$OUT-sweep"
# HF first where the issue asks what it solves, then Adam on the same cells.
study --tasks addition,temporal-order2 --lengths 50,100 --budget 900 --start hf
study --tasks temporal-order2,addition --lengths 100,50 --budget 900 --start first-order
study --tasks multiplication --lengths 50,100 --budget 900
study --tasks xor,temporal-order3,random-permutation,memorization5 --lengths 50 --budget 600
