#!/bin/sh
# Data-parallel HF on the MNIST autoencoder (784-1000-500-250-30, Fashion-MNIST images),
# flex, f32, 1000 cases per worker in both batches: 1 worker, 2 workers in one process,
# 2 processes with an orchestrator (and 1 worker on 2000 cases, the same total work).
# Usage: HF=target/release/hessfree sh docs/bench-data-parallel/run.sh OUT_DIR
set -eu
OUT=${1:?output directory}
HF=${HF:-target/release/hessfree}
mkdir -p "$OUT"
common="--preset fashion-mnist --backend flex --quiet --iterations 4 --set hf.cg.max_iterations=10"
batch() { echo "--set batches.gradient=$1 --set batches.curvature=$1"; }
$HF train $common $(batch 1000) --out "$OUT/one" --overwrite
$HF train $common $(batch 2000) --out "$OUT/one-2000" --overwrite
$HF train $common $(batch 2000) --devices 2 --out "$OUT/devices-2" --overwrite
$HF orchestrator --port 39300 2>/dev/null &
ORCH=$!
sleep 1
node() {
    rank=$1
    shift
    $HF train $common $(batch 2000) --nodes 2 --rank "$rank" --orchestrator ws://127.0.0.1:39300 \
        --node-address "ws://127.0.0.1:$((39301 + rank))" "$@"
}
rm -rf "$OUT/nodes-2"
node 1 > "$OUT/nodes-2-rank1.log" 2>&1 &
RANK1=$!
node 0 --out "$OUT/nodes-2"
wait $RANK1
kill $ORCH
