#!/usr/bin/env bash
# Runs the swiglu GPU bundle on a host with the NVIDIA driver and CUDA
# libraries but no Rust toolchain. Usage: ./run.sh OUTDIR
# Everything (logs, per-check error tables, bench JSON/markdown) goes into
# OUTDIR/results.tgz; OUTDIR also gets summary.txt, tests.log and the bench
# tables (bench_gpu.md, bench_gpu_train.md) and the targets check
# (targets.md) as plain files: 6 files at most.
# summary.txt ends with a verdict line ("verdict: all N steps passed", or
# "verdict: FAILED: <steps>", naming any skipped steps too); run.sh exits 1
# when a step failed (after writing every log and the archive), else 0. A
# step whose binary exits 77 (a self-test with nothing to test on this
# device, the automake convention) is recorded as "skipped (rc=77)". A run
# stopped before its end leaves a summary.txt without the verdict line.
set -uo pipefail
T0=$(date +%s)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FINAL="${1:-$HERE/results}"
mkdir -p "$FINAL"
FINAL="$(cd "$FINAL" && pwd)"
OUT="$(mktemp -d -t swiglu-results.XXXXXX)"
BIN="$HERE/bin"
# The bundle ships its executables as bin.tar.xz (every one embeds all the
# kernels, ~70 MB in all, over the device tool's 64 MiB): unpack them once.
if [ ! -d "$BIN" ] && [ -f "$HERE/bin.tar.xz" ]; then
  unpack="$(mktemp -d -t swiglu-bin.XXXXXX)"
  if ! tar -C "$unpack" -xJf "$HERE/bin.tar.xz" 2>/dev/null; then
    # No xz on this host: Python's lzma module does the same.
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$HERE/bin.tar.xz" "$unpack" || { echo "cannot unpack $HERE/bin.tar.xz" >&2; exit 2; }
  fi
  BIN="$unpack/bin"
  chmod +x "$BIN"/*
fi
export SWIGLU_REQUIRE_GPU=1 SWIGLU_RESULTS_DIR="$OUT" CRITERION_HOME=/tmp/swiglu-criterion
# The bench JSON records the commit the bundle was built from.
SWIGLU_COMMIT="$(sed -n 's/^commit: //p' "$HERE/MANIFEST" 2>/dev/null | head -1)"
export SWIGLU_COMMIT="${SWIGLU_COMMIT:-unknown}"
QUICK_BENCH="${SWIGLU_BENCH_QUICK:-1}"
# Which steps run (a second device call after a fix can skip what passed):
# any of selftest tests train bench sanitizer; all by default. SWIGLU_TESTS
# narrows the tests step to the named binaries.
STEPS=" ${SWIGLU_STEPS:-selftest tests train bench sanitizer} "
want() { [[ "$STEPS" == *" $1 "* ]]; }
# Seconds one test binary may take (run 3's took 2-40 s; a hang, e.g. a TMA
# byte count that never completes, must not eat the device session).
TEST_TIMEOUT="${SWIGLU_TEST_TIMEOUT:-180}"
# Seconds the whole run may take, counted from the start of this script
# (unpacking included). The device tool stops a command at its timeout and
# one call is usually all a session gets, so every step's own limit is cut
# to what is left of this budget, less a reserve for packing the results;
# a step that would get under 15 s is skipped and recorded as such. Set it
# a little under the call's timeout (two bundles in one call: split it).
BUDGET="${SWIGLU_BUDGET_S:-540}"
RESERVE=10
# limit SECONDS: prints SECONDS cut to the budget left, or nothing (and
# fails) when under 15 s are left.
limit() {
  local left=$(( T0 + BUDGET - RESERVE - $(date +%s) ))
  [ "$left" -ge 15 ] || return 1
  echo $(( $1 < left ? $1 : left ))
}

# --- find the CUDA libraries (cuBLAS) ---------------------------------------
libdirs=()
add() { [ -d "$1" ] && ls "$1"/libcublas.so* >/dev/null 2>&1 && libdirs+=("$1"); }
for d in "${CUDA_HOME:-}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64; do add "$d"; done
for py in python3 /opt/torch/.venv/bin/python3; do
  command -v "$py" >/dev/null 2>&1 || continue
  for d in $("$py" -c 'import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
for s in dirs:
    for lib in glob.glob(os.path.join(s, "nvidia", "**", "libcublas.so*"), recursive=True):
        print(os.path.dirname(lib))' 2>/dev/null | sort -u); do add "$d"; done
done
LD_EXTRA="$(IFS=:; echo "${libdirs[*]:-}")"
export LD_LIBRARY_PATH="${LD_EXTRA}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
  echo "date: $(date -u +%FT%TZ)"
  cat "$HERE/MANIFEST" 2>/dev/null
  echo "--- nvidia-smi"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  echo "--- cuBLAS found in: ${LD_EXTRA:-<nowhere; relying on ldconfig>}"
  ldconfig -p 2>/dev/null | grep -E "libcuda.so|libcublas" | head
  command -v compute-sanitizer || echo "compute-sanitizer: not on PATH"
} > "$OUT/env.log" 2>&1
cat "$OUT/env.log"

status=() failed=() skips=()
# Each step's result line carries the seconds since the start; after each
# step the results so far are packed, so a run cut short still returns them.
# record NAME RESULT: RESULT "rc=0..." is a pass, "skipped..." or "not
# available" a skip, anything else a failure (for the verdict).
record() {
  status+=("$1: $2 (t=$(( $(date +%s) - T0 ))s)")
  case "$2" in
    rc=0|"rc=0 "*) ;;
    skipped*|"not available"*) skips+=("$1") ;;
    *) failed+=("$1") ;;
  esac
  printf '%s\n' "${status[@]}" > "$OUT/summary.txt"
  pack
  cp "$OUT/summary.txt" "$FINAL/" 2>/dev/null
}
# Writes results.tgz whole or not at all: a run killed while packing keeps
# the previous step's archive instead of a truncated one.
pack() {
  tar czf "$FINAL/results-next.tgz" -C "$OUT" . 2>/dev/null &&
    mv -f "$FINAL/results-next.tgz" "$FINAL/results.tgz"
}
# result RC: how a step's exit status is recorded (77: the binary skipped
# itself, e.g. a Hopper self-test on another device).
result() {
  if [ "$1" -eq 77 ]; then echo "skipped (rc=77)"; else echo "rc=$1"; fi
}
# skipped NAME: records a step left out for lack of budget.
skipped() {
  echo "=== $1: skipped, under 15 s of the ${BUDGET} s budget left"
  record "$1" "skipped (budget)"
}

# --- 1. standalone kernel self-test (CUDA C++, no Rust) ----------------------
: > "$OUT/selftest.log"
# 1a. The Hopper cluster kernel (never run before session 10's bundle) on a
# few small cases first, under a short limit: if it fails, traps or hangs,
# SWIGLU_SKIP_CLUSTER=1 leaves it out of everything after (a trap would
# leave a test binary's CUDA context unusable for its later tests), and the
# failure stands in the summary.
if [ -x "$BIN/wgmma_selftest" ] && want selftest && [ -z "${SWIGLU_SKIP_CLUSTER:-}" ]; then
  if lim=$(limit 60); then
    echo "=== wgmma_selftest --cluster-smoke" >> "$OUT/selftest.log"
    timeout "$lim" "$BIN/wgmma_selftest" --cluster-smoke >> "$OUT/selftest.log" 2>&1; rc=$?
    echo "rc=$rc" >> "$OUT/selftest.log"
    if [ "$rc" -eq 77 ]; then
      # Not a compute capability 9.0 device: nothing ran, nothing to leave out.
      record "cluster smoke" "$(result "$rc")"
    elif [ "$rc" -ne 0 ]; then
      export SWIGLU_SKIP_CLUSTER=1
      record "cluster smoke" "rc=$rc: FAILED, fused-wgmma-cluster left out of the rest of the run"
    else
      record "cluster smoke" "rc=0"
    fi
    echo "=== cluster smoke rc=$rc"; grep -E "cluster smoke|clusters of 2" "$OUT/selftest.log" | tail -6
  else
    skipped "cluster smoke"
  fi
fi
for st in "$BIN"/*selftest; do
  [ -x "$st" ] && want selftest || continue
  name="$(basename "$st")"
  lim=$(limit 120) || { skipped "$name"; continue; }
  echo "=== $name" >> "$OUT/selftest.log"
  timeout "$lim" "$st" >> "$OUT/selftest.log" 2>&1; rc=$?
  echo "rc=$rc" >> "$OUT/selftest.log"
  echo "=== $name rc=$rc"; grep -E "FAIL|SKIP|passed|checks" "$OUT/selftest.log" | tail -4
  record "$name" "$(result "$rc")"
done

# --- 2. every GPU test, GPU required ------------------------------------------
: > "$OUT/tests.log"
for t in "$BIN"/gpu_*; do
  want tests || break
  name="$(basename "$t")"; case "$name" in *selftest) continue;; esac
  # SWIGLU_TESTS="gpu_hopper gpu_train": only these binaries.
  [ -z "${SWIGLU_TESTS:-}" ] || [[ " $SWIGLU_TESTS " == *" $name "* ]] || continue
  lim=$(limit "$TEST_TIMEOUT") || { skipped "$name"; continue; }
  echo "=== $name" | tee -a "$OUT/tests.log"
  # A library the binary needs but the loader cannot find or bind (the
  # candle binary links the CUDA libraries directly) fails before any test:
  # say which.
  command -v ldd >/dev/null && ldd -r "$t" 2>&1 | grep -E 'not found|undefined symbol' | head -5 | tee -a "$OUT/tests.log"
  timeout "$lim" "$t" --test-threads=1 --nocapture 2>&1 | tee -a "$OUT/tests.log" | grep -E "^test |worst|test result|FAIL|panicked" ; rc=${PIPESTATUS[0]}
  record "$name" "rc=$rc"
done

# --- 3. the training example on the GPU --------------------------------------
if [ -x "$BIN/train_example" ] && want train && { lim=$(limit 120) || { skipped train_example; false; }; }; then
  (cd /tmp && timeout "$lim" "$BIN/train_example" --device cuda --out "$OUT/train" > "$OUT/train_example.log" 2>&1); rc=$?
  record train_example "rc=$rc"
  grep -E "device|gradient check|loss|target|tokens/s" "$OUT/train_example.log" | tr '\r' '\n' | grep -v "^\[" | head -12
fi

# --- 4. benchmark tables --------------------------------------------------------
if [ -x "$BIN/bench_gpu_train" ] && want bench && { lim=$(limit 240) || { skipped bench_train; false; }; }; then
  (cd /tmp && SWIGLU_BENCH_QUICK="$QUICK_BENCH" timeout "$lim" "$BIN/bench_gpu_train" --bench > "$OUT/bench_train.log" 2>&1); rc=$?
  record bench_train "rc=$rc"
  [ -f "$OUT/bench_gpu_train.md" ] && cat "$OUT/bench_gpu_train.md"
fi

if [ -x "$BIN/bench_gpu" ] && want bench && { lim=$(limit 300) || { skipped bench; false; }; }; then
  (cd /tmp && SWIGLU_BENCH_QUICK="$QUICK_BENCH" timeout "$lim" "$BIN/bench_gpu" --bench > "$OUT/bench.log" 2>&1); rc=$?
  record bench "rc=$rc"
  [ -f "$OUT/bench_gpu.md" ] && cat "$OUT/bench_gpu.md"
fi
# The issues' targets against these numbers (scripts/targets.py).
if [ -f "$OUT/bench_gpu.json" ] && [ -f "$HERE/targets.py" ]; then
  python3 "$HERE/targets.py" "$OUT" > "$OUT/targets.md" 2>&1; rc=$?
  record targets "rc=$rc"
  grep -E "^- \*\*#" "$OUT/targets.md"
fi

# --- 5. compute-sanitizer ------------------------------------------------------
# Small tests per binary (the full sweeps are too slow under it), except
# gpu_train, whose sweep is short. One step at a time, each recorded.
SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
: > "$OUT/sanitizer.log"
san() {  # san TOOL TIMEOUT BINARY [ARGS...]
  local tool=$1 want_s=$2 bin=$3 lim; shift 3
  [ -x "$BIN/$bin" ] || return 0
  lim=$(limit "$want_s") || { skipped "$tool $bin"; return 0; }
  echo "=== $tool $bin $*" >> "$OUT/sanitizer.log"
  timeout "$lim" "$SAN" --tool "$tool" --error-exitcode 9 "$BIN/$bin" "$@" 2>&1 | tail -30 >> "$OUT/sanitizer.log"
  local rc=${PIPESTATUS[0]}
  printf '\nrc=%s\n' "$rc" >> "$OUT/sanitizer.log"
  echo "=== $tool $bin $*: rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer.log" | tail -1)"
  record "$tool $bin" "$(result "$rc")"
}
if ! want sanitizer; then
  echo "sanitizer step not selected (SWIGLU_STEPS)" > "$OUT/sanitizer.log"
elif [ -n "$SAN" ]; then
  san memcheck 200 gpu_train --test-threads=1
  san memcheck 150 gpu_hopper --test-threads=1 wgmma_rejects wgmma_matches
  san memcheck 240 gpu_forward --test-threads=1 misaligned_buffers nan_in_x gate_grads leading_batch params_reach mma_fragment tf32_is_opt_in
  san memcheck 150 gpu_skinny --test-threads=1 skinny_rejects skinny_repeat
  san racecheck 120 wgmma_selftest --small
  san racecheck 150 wgmma_grad_selftest --small
  san racecheck 180 gpu_forward --test-threads=1 nan_in_x mma_fragment
  san racecheck 100 gpu_skinny --test-threads=1 skinny_repeat
  san racecheck 150 gpu_train --test-threads=1 staged_kernels_sanitizer_case
else
  echo "compute-sanitizer not available" > "$OUT/sanitizer.log"; record sanitizer "not available"
fi

# The verdict: the last line of summary.txt.
join() { local IFS=,; local s="$*"; echo "${s//,/, }"; }
n=${#status[@]}
skipnote=""
[ ${#skips[@]} -eq 0 ] || skipnote="${#skips[@]} skipped: $(join "${skips[@]}")"
if [ ${#failed[@]} -gt 0 ]; then
  verdict="verdict: FAILED: $(join "${failed[@]}") (${#failed[@]} of $n steps failed${skipnote:+; $skipnote})"
elif [ "$n" -eq 0 ]; then
  failed=("none ran")
  verdict="verdict: FAILED: no step ran (no executables in $BIN? SWIGLU_STEPS=\"${SWIGLU_STEPS:-}\")"
elif [ ${#skips[@]} -eq "$n" ]; then
  verdict="verdict: none failed, none passed: $skipnote"
elif [ ${#skips[@]} -gt 0 ]; then
  verdict="verdict: all $(( n - ${#skips[@]} )) steps run passed; $skipnote"
else
  verdict="verdict: all $n steps passed"
fi
echo "=== summary"
printf '%s\n' ${status[@]+"${status[@]}"} "$verdict" | tee "$OUT/summary.txt"
pack
for f in summary.txt tests.log bench_gpu.md bench_gpu_train.md targets.md; do
  [ -f "$OUT/$f" ] && cp "$OUT/$f" "$FINAL/"
done
ls -la "$FINAL"
[ ${#failed[@]} -eq 0 ]
