#!/usr/bin/env bash
# Issue 21 part 4, a shadow that predicts across the token boundary: writes bench/report/replay-next-token/.
# For each trained model, the Q8_0 shadow of the F16 model speculates the next two tokens (lookahead 2 × the layer count)
# inline; predict-eval measures its recall at width k per distance and records its predictions beside the routing
# (teacher-forced over models/test.txt, 4 chunks of 256 tokens one per step; and greedy decoding, 16 prompts of 32 tokens
# cut from the text, 64 tokens each). Then every eviction policy and Belady replay at 1/4 and 1/3 of the experts on those
# traces and on the perplexity trace of the replay part of make-report.sh: predictive driven by the recorded predictions
# ("recorded") and by the predictor model at the measured recalls (and 1, 0.9), one and two tokens ahead.
# Deterministic (inline shadow): the same files on any machine. About 5 minutes on a busy 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/report/replay-next-token
mkdir -p "$out" target/replay
for m in qwen2moe-tiny-f16 mixtral-tiny-f16; do
  [ -f target/replay/$m.trace.jsonl ] || bin/jmoe perplexity -q -m models/$m.gguf -f models/test.txt -c 256 -b 1 --chunks 4 --trace target/replay/$m.trace.jsonl
  layers=$(head -n 1 target/replay/$m.trace.jsonl | grep -o '"n_layer":[0-9]*' | cut -d: -f2)
  h=$((2 * layers))
  bin/jmoe predict-eval -q -m models/$m.gguf -f models/test.txt -c 256 --max-tokens 1024 --predictor shadow --shadow q8_0 --shadow-margin 0 \
    --lookahead $h --trace target/replay/$m-teacher.trace.jsonl --json $out/recall-$m-teacher.json > $out/recall-$m-teacher.txt
  bin/jmoe predict-eval -q -m models/$m.gguf -f models/test.txt --mode greedy --prompts 16 --prompt-tokens 32 -n 64 --predictor shadow --shadow q8_0 \
    --shadow-margin 0 --lookahead $h --trace target/replay/$m-greedy.trace.jsonl --json $out/recall-$m-greedy.json > $out/recall-$m-greedy.txt
  # the measured recalls at width k, lowest over the distances 1..2L: teacher-forced and greedy
  recalls=$(python3 - "$out/recall-$m-teacher.json" "$out/recall-$m-greedy.json" <<'PY'
import json, sys
r = []
for f in sys.argv[1:]:
    p = json.load(open(f))["predictors"][0]
    r.append(min(d["recall"] for d in p["lookaheads"]))
print(",".join("%.4f" % x for x in r))
PY
)
  for t in ppl teacher greedy; do
    trace=target/replay/$m-$t.trace.jsonl
    [ $t = ppl ] && trace=target/replay/$m.trace.jsonl
    bin/jmoe replay --trace $trace -m models/$m.gguf --expert-memory 1/4,1/3 --lookahead 1,$layers,$h --recall 1,$recalls,0.9 \
      --json $out/replay-$m-$t.json > $out/replay-$m-$t.txt
  done
done
