#!/usr/bin/env bash
# tessera's engine against ONNX Runtime on the same forward pass (issue 14): the
# same graph (exported to ONNX from the float64 oracle's parser and loader by
# export_onnx.py), the same padded input bytes, 2 threads each, in the same run.
#
#   make bench-onnx        (or bench/onnx/compare.sh; ROUNDS=N RUNS=N WARMUP=N override every case)
#
# Cases: realesr-animevideov3-x4 on a 276x276 padded input (a 256x256 tile plus
# realesrgan's 10 px) and realesrgan-x4plus on 220x220 (200x200 plus 10 px).
# ONNX Runtime: npm onnxruntime-node, CPU provider, 2 intra-op threads
# (ort_forward.mjs). tessera: GraphExecutor on oneDNN, OMP_NUM_THREADS=2
# (forward_bench), once with oneDNN's default ISA and once under
# ONEDNN_MAX_CPU_ISA=AVX2. Both sides check their output against the exporter's
# reference before timing. The three take turns for ROUNDS rounds, each a fresh
# process with its own warm-up, so that load from other processes on a shared
# machine falls on all of them alike; the table pools every round's runs.
# Exports are cached in BUILD/bench-onnx and redone when the exporter, the
# oracle or the model changes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUT=$BUILD/bench-onnx
THREADS=2
MODEL_DIR=${TESSERA_MODEL_DIR:-$HOME/.cache/tessera/models}
# name, padded size timed, padded size of the float64 oracle check, rounds, timed runs and
# warm-up runs per process (the first warm-up run is the checked one). realesrgan-x4plus at
# 220x220 takes 20-50 s a pass on 2 cores (and minutes in float64): fewer runs, and the
# oracle checks a 44x44 export of the same graph.
CASES=("realesr-animevideov3-x4 276 276 3 3 2" "realesrgan-x4plus 220 44 2 1 1")

"$ROOT/bench/onnx/setup.sh"
[[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target forward_bench -j2 >/dev/null
mkdir -p "$OUT"
# Both sides use 2 threads; anything else running on the machine slows them, and unevenly.
# The 1-minute load average counts the bench's own threads once it has run: above 0.5
# before anything ran, or above THREADS + 0.5 afterwards, something else was running.
LOADED=()
note_load() {  # label, load the bench itself accounts for
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "load average $1: $load" >&2
  if awk -v l="$load" -v own="$2" 'BEGIN { exit !(l > own + 0.5) }'; then LOADED+=("$1: $load"); fi
}
RESULTS=$OUT/results.jsonl
CHECKS=$OUT/checks.jsonl
: >"$RESULTS"
: >"$CHECKS"

own_load=0
for c in "${CASES[@]}"; do
  read -r name size check rounds runs warmup <<<"$c"
  rounds=${ROUNDS:-$rounds}
  runs=${RUNS:-$runs}
  warmup=${WARMUP:-$warmup}
  meta=$OUT/$name-$size.json
  if [[ ! -f "$meta" || "$meta" -ot "$ROOT/bench/onnx/export_onnx.py" || "$meta" -ot "$ROOT/tests/oracle/ncnn_oracle.py" ||
        "$meta" -ot "$MODEL_DIR/$name.bin" ]]; then
    /usr/bin/python3 "$ROOT/bench/onnx/export_onnx.py" -n "$name" --size "$size" --check-size "$check" \
      --model-dir "$MODEL_DIR" --out-dir "$OUT"
  fi
  if [[ "$check" != "$size" ]]; then  # the small export the oracle checked, through both sides
    node "$ROOT/bench/onnx/ort_forward.mjs" "$OUT/$name-$check.json" --runs 1 --warmup 1 >>"$CHECKS"
    OMP_NUM_THREADS=$THREADS TESSERA_MODEL_DIR=$MODEL_DIR "$BUILD/bench/forward_bench" "$OUT/$name-$check.json" \
      --runs 1 --warmup 1 >>"$CHECKS"
  fi
  note_load "before $name" "$own_load"
  own_load=$THREADS
  for ((r = 1; r <= rounds; ++r)); do
    node "$ROOT/bench/onnx/ort_forward.mjs" "$meta" --runs "$runs" --warmup "$warmup" --threads "$THREADS" |
      tee -a "$RESULTS"
    for isa_limit in "" AVX2; do  # oneDNN's default ISA, then AVX2 at most
      env OMP_NUM_THREADS=$THREADS TESSERA_MODEL_DIR="$MODEL_DIR" ${isa_limit:+ONEDNN_MAX_CPU_ISA=$isa_limit} \
        "$BUILD/bench/forward_bench" "$meta" --runs "$runs" --warmup "$warmup" | tee -a "$RESULTS"
    done
    note_load "$name round $r" "$THREADS"
  done
done

echo
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $THREADS threads each side"
node "$ROOT/bench/onnx/table.mjs" "$RESULTS" "$CHECKS"
if ((${#LOADED[@]} > 0)); then
  echo "warning: the machine was busy (load average ${LOADED[*]}): rerun on an idle machine before quoting these figures"
fi
