#!/usr/bin/env bash
# Local inference benchmark, one run: tract (ferry bench local) then onnxruntime on the same model
# files, same protocol (single thread, interleaved FP32/INT8 after warm-up, peak RSS per variant
# in its own process). Needs the Python environment of models/requirements.txt in $PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
ITER=${ITER:-50}
cargo build --release --bin ferry -q
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "== tract"
target/release/ferry bench local --iterations "$ITER" --threads 1
echo "== onnxruntime"
"$PYTHON" models/bench_ort.py --iterations "$ITER" --threads 1
