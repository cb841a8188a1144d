#!/usr/bin/env bash
# Regenerates bench/report/ (README.md, bench.json, PNG plots) on the trained models; ~15-25 min on 2 cores.
# The eval task was built with: bin/jmoe make-eval-task -f models/test.txt -o bench/eval-continuation.jsonl --items 200 --seed 1
set -euo pipefail
cd "$(dirname "$0")/.."
exec bin/jmoe bench --config bench/report.json --out bench/report "$@"
