#!/usr/bin/env bash
# The GPU benches, the CLI and the examples on the host emulator, without a
# GPU: the stand-in driver and cuBLAS of kernels/emu/standin (see
# scripts/emu-gpu-tests.sh) run them at small shapes, on an emulated
# compute capability 9.0 device and then 8.0, so that every table, column
# and JSON field the GPU bundle's run.sh will ask a GPU for has been
# produced once before a GPU session spends its minutes on it.
#
#   * benches/gpu.rs and benches/gpu_train.rs with SWIGLU_BENCH_* shapes
#     (benches/common/shapes.rs) and one timing round; their results are
#     checked by scripts/check-bench-results.py (every path at every shape
#     it can take, the left-out ones for known reasons only, the event
#     tracking, f32 and autotuner tables, the training configurations with
#     the bytes each keeps and a peak) and read by scripts/targets.py;
#   * the CLI (`swiglu --device cuda`) over dtypes, layouts, biases,
#     activations and --autotune: it fails itself when its error against
#     the f64 reference is over the dtype's tolerance;
#   * examples/llama_ffn (GPU against CPU) and examples/train with
#     --device cuda on a short run (its finite-difference check, and a loss
#     that must fall below 3.2 from ln 32 = 3.47).
#
# The emulator's times are its own cost: nothing here measures speed.
# Needs nvcc (the crate embeds its fatbins) and a C++17 compiler.
# SWIGLU_EMU_PROFILE (default test: CI has built the crate with it) is the
# cargo profile of the executables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
standin="$root/target/emu-standin"
# The stand-in, unless one at least as new as its sources is there
# (scripts/emu-gpu-tests.sh builds the same one just before in CI).
if [ ! -f "$standin/libcublas.so.13" ] || [ -n "$(find kernels -newer "$standin/libcublas.so.13" -type f | head -1)" ]; then
  bash kernels/emu/standin/build.sh "$standin" > /dev/null
fi
export LD_LIBRARY_PATH="$standin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SWIGLU_REQUIRE_KERNELS=1
profile="${SWIGLU_EMU_PROFILE:-test}"

# cargo's JSON messages name the executables it built.
exes() {
  python3 -c '
import json, sys
want = sys.argv[1:]
found = {}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in want:
        found[m["target"]["name"]] = m["executable"]
missing = [w for w in want if w not in found]
if missing:
    sys.exit(f"not built: {missing}")
print(" ".join(found[w] for w in want))
' "$@"
}
echo "=== building the benches, the CLI and the examples (profile $profile, $(date -u +%T))"
read -r bench_fwd bench_train < <(cargo bench --profile "$profile" --bench gpu --bench gpu_train --no-run \
  --message-format=json-render-diagnostics | exes gpu gpu_train)
read -r cli train_ex llama_ex < <(cargo build --profile "$profile" --bin swiglu --example train \
  --example llama_ffn --message-format=json-render-diagnostics | exes swiglu train llama_ffn)

logs="$root/target/emu-bench"
rm -rf "$logs"
mkdir -p "$logs"
fail() { echo "FAILED: $*"; exit 1; }

for cc in 90 80; do
  r="$logs/cc$cc"
  mkdir -p "$r"
  echo "=== emulated sm_$cc device: forward bench ($(date -u +%T))"
  # K and N with tails of every tile (64-wide k-tiles, 64/128-wide column
  # tiles), M on both sides of the decode limit (64) and of one 128-row tile.
  export SWIGLU_EMU_CC=$cc
  # The shapes asked for; check-bench-results.py requires each of them.
  K=264 NS=264,136 MS=1,16,33,64,130 F32_MS=1,7 TRAIN_MS=64,130
  bench_env=(SWIGLU_BENCH_QUICK=1 SWIGLU_RESULTS_DIR="$r" SWIGLU_BENCH_ROUNDS=1 SWIGLU_BENCH_K=$K
    SWIGLU_BENCH_N=$NS SWIGLU_BENCH_M=$MS SWIGLU_BENCH_F32_M=$F32_MS SWIGLU_BENCH_TRAIN_M=$TRAIN_MS)
  (cd "$r" && env "${bench_env[@]}" "$bench_fwd" --bench > fwd.out 2> fwd.err) || { tail -20 "$r/fwd.err"; fail "forward bench on sm_$cc"; }
  echo "=== emulated sm_$cc device: training-step bench ($(date -u +%T))"
  (cd "$r" && env "${bench_env[@]}" "$bench_train" --bench > train.out 2> train.err) || { tail -20 "$r/train.err"; fail "training bench on sm_$cc"; }
  python3 scripts/check-bench-results.py "$r" "$r/fwd.err" --cc "$cc" --train-stderr "$r/train.err" \
    --k "$K" --n "$NS" --m "$MS" --f32-m "$F32_MS" --train-m "$TRAIN_MS" || fail "bench results on sm_$cc"
  python3 scripts/targets.py "$r" > "$r/targets.md" || fail "scripts/targets.py on the sm_$cc results"
  grep -q "not the issues' shapes" "$r/targets.md" || fail "targets.md does not say the shapes are not the issues'"

  echo "=== emulated sm_$cc device: the CLI ($(date -u +%T))"
  i=0
  for args in "--dtype bf16 -m 130" "--dtype bf16 -m 33 --layout concat --bias --act gelu" \
      "--dtype f16 -m 1 --layout kn --act swish --beta 1.5" "--dtype f32 -m 7 --act sigmoid" \
      "--dtype bf16 -m 64 --autotune --act relu"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    "$cli" --device cuda -k 264 -n 264 --iters 1 $args > "$r/cli$i.log" 2>&1 \
      || { cat "$r/cli$i.log"; fail "swiglu $args on sm_$cc"; }
    echo "swiglu $args: $(grep -m1 -E '^\| (fused|auto)' "$r/cli$i.log")"
  done

  echo "=== emulated sm_$cc device: examples ($(date -u +%T))"
  "$llama_ex" > "$r/llama_ffn.log" 2>&1 || { cat "$r/llama_ffn.log"; fail "llama_ffn on sm_$cc"; }
  grep -q "^gpu (" "$r/llama_ffn.log" || { cat "$r/llama_ffn.log"; fail "llama_ffn did not run on the device"; }
  grep "^gpu (" "$r/llama_ffn.log"
  "$train_ex" --device cuda --steps 20 --batch 4 --seq 32 --target 3.2 --out "$r/train" > "$r/train_example.log" 2>&1 \
    || { tr '\r' '\n' < "$r/train_example.log" | tail -12; fail "train example on sm_$cc"; }
  tr '\r' '\n' < "$r/train_example.log" | grep -E "gradient check|initial loss|final loss|target"
done
echo "=== emu-bench: OK ($(date -u +%T)); logs and results in $logs"
