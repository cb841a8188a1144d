#!/usr/bin/env bash
# Regenerates bench/report/, bench/report/predictive-eviction/ and bench/report/predictive-eviction-mixtral/ (README.md, bench.json, bench.csv, PNG and SVG plots): timings on the mid shape (random weights,
# made here once, not committed), quality and recall on the trained models; then bench/report/replay/ (replays of the trained models' routing
# traces and the Q8_0/Q4_0 shadows' recall in greedy decoding). About 45 minutes on a busy 2-core machine; run it with nice.
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
# the same on mixtral-tiny with 10 rounds, every policy paired with predictive (5 rounds on a loaded machine could not tell them apart)
bin/jmoe bench --config bench/predictive-eviction-mixtral.json --out bench/report/predictive-eviction-mixtral "$@"
# the shadow two tokens ahead (predictions past one token's layers reach the predictive policy only), against the same
# policy one token ahead and the other policies, on both trained models, 15 rounds
bin/jmoe bench --config bench/predictive-eviction-two-tokens.json --out bench/report/predictive-eviction-two-tokens "$@"
# the SVGs draw their text as outlines with 8-decimal coordinates; 2 decimals (1/100 px) halve their size
python3 - bench/report/*.svg bench/report/predictive-eviction*/*.svg <<'PY'
import re, sys
for f in sys.argv[1:]:
    with open(f) as fh: s = fh.read()
    with open(f, "w") as fh: fh.write(re.sub(r"(\d\.\d\d)\d+", r"\1", s))
PY
# replays of the trained models' routing: each model scores models/test.txt one token per step (4 chunks of 256, the
# trace not committed), then every eviction policy and Belady replay at 1/4 and 1/3 of the experts; the predictive
# policy's predictor model sees H = 1, 2, the layer count (one token ahead: what a shadow running one token ahead sees)
# and twice that, with recall 1, 0.997 (the Q8_0 shadow's recall at width k in greedy decoding, measured below:
# 99.7-99.85% at every distance up to one token), 0.9 and 0.5
mkdir -p bench/report/replay target/replay
for m in qwen2moe-tiny-f16 mixtral-tiny-f16; do
  trace=target/replay/$m.trace.jsonl
  bin/jmoe perplexity -q -m models/$m.gguf -f models/test.txt -c 256 -b 1 --chunks 4 --trace "$trace"
  layers=$(head -n 1 "$trace" | grep -o '"n_layer":[0-9]*' | cut -d: -f2)
  bin/jmoe replay --trace "$trace" --expert-memory 1/4,1/3 --lookahead "1,2,$layers,$((2 * layers))" --recall 1,0.997,0.9,0.5 \
    --json "bench/report/replay/$m.json" > "bench/report/replay/$m.txt"
  # the shadows' recall when the main model decodes greedily (the shadow guesses each next token with its own argmax)
  bin/jmoe predict-eval -q -m models/$m.gguf -f models/test.txt --mode greedy --prompts 8 --prompt-tokens 32 -n 64 --predictor shadow \
    --shadow q8_0,q4_0 --shadow-margin 0,0.02 --lookahead "$layers" --json "bench/report/replay/recall-$m.json" > "bench/report/replay/recall-$m.txt"
done
# a shadow predicting across the token boundary (two tokens ahead): its recall, its recorded predictions and the replays they drive
bench/replay-next-token.sh
