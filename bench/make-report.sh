#!/usr/bin/env bash
# Regenerates bench/report/ and bench/report/predictive-eviction/ (README.md, bench.json, bench.csv, PNG and SVG plots): timings on the mid shape (random weights,
# made here once, not committed), quality and recall on the trained models. Hours on a busy 2-core machine; run it with nice.
# The eval task was built with: bin/jmoe make-eval-task -f models/test.txt -o bench/eval-continuation.jsonl --items 200 --seed 1
set -euo pipefail
cd "$(dirname "$0")/.."
mid=target/bench-models/qwen3moe-bench-q8_0.gguf
if [ ! -f "$mid" ]; then
  mkdir -p "$(dirname "$mid")"
  bin/jmoe make-model --preset qwen3moe-bench --type Q8_0 -o "$mid"
fi
bin/jmoe bench --config bench/report.json --out bench/report "$@"
# eviction by a shadow's predictions one token ahead, against the other policies with the same predictor
bin/jmoe bench --config bench/predictive-eviction.json --out bench/report/predictive-eviction "$@"
