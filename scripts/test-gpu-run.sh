#!/usr/bin/env bash
# Checks scripts/gpu-run.sh (the GPU bundle's run.sh) on a fake bundle, with
# no GPU: shell scripts stand in for the self-tests, test binaries, example,
# benches and compute-sanitizer. Run by CI (~25 s).
#   1. Every step runs and is recorded; results.tgz is a whole archive.
#   2. With a small SWIGLU_BUDGET_S, a test binary that hangs is stopped
#      at the budget left, and every later step is recorded as skipped.
#   3. A failing cluster smoke test (wgmma_selftest --cluster-smoke) is
#      recorded and SWIGLU_SKIP_CLUSTER=1 reaches every later step.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
T="$(mktemp -d -t swiglu-runsh.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "test-gpu-run: FAIL: $*" >&2; exit 1; }

mkdir -p "$T/bundle/bin" "$T/san"
cp "$ROOT/scripts/gpu-run.sh" "$T/bundle/run.sh"
echo "commit: 0000000" > "$T/bundle/MANIFEST"
fake() {  # fake NAME BODY
  printf '#!/usr/bin/env bash\n%s\n' "$2" > "$T/bundle/bin/$1"
  chmod +x "$T/bundle/bin/$1"
}
fake probe_selftest 'echo "all checks passed"'
fake wgmma_selftest '[ "${1:-}" != --cluster-smoke ] || [ -z "${FAIL_SMOKE:-}" ] || exit 3
echo "wgmma: skip_cluster=${SWIGLU_SKIP_CLUSTER:-}"'
fake gpu_forward 'echo "test a ... ok"; [ -z "${HANG:-}" ] || sleep 100'
fake gpu_hopper 'echo "test b ... ok skip_cluster=${SWIGLU_SKIP_CLUSTER:-}"'
fake train_example 'echo "loss 1.0"'
fake bench_gpu_train 'echo "| 512 | x |" > "$SWIGLU_RESULTS_DIR/bench_gpu_train.md"'
fake bench_gpu 'echo "| 1 | x |" > "$SWIGLU_RESULTS_DIR/bench_gpu.md"'
# compute-sanitizer --tool T --error-exitcode 9 BIN ARGS...
printf '#!/usr/bin/env bash\nshift 4; "$@" > /dev/null; echo "========= ERROR SUMMARY: 0 errors"\n' \
  > "$T/san/compute-sanitizer"
chmod +x "$T/san/compute-sanitizer"
export PATH="$T/san:$PATH"

# 1. Everything fits.
bash "$T/bundle/run.sh" "$T/out1" > "$T/log1" 2>&1 || { cat "$T/log1"; fail "run 1 exited $?"; }
for step in "cluster smoke" probe_selftest wgmma_selftest gpu_forward gpu_hopper train_example bench_train bench \
  "memcheck gpu_hopper" "memcheck gpu_forward" "racecheck gpu_forward"; do
  grep -q "^$step: rc=0 " "$T/out1/summary.txt" || { cat "$T/out1/summary.txt"; fail "run 1: no rc=0 line for '$step'"; }
done
# (The listing goes to a file first: `tar … | grep -q` under pipefail fails
# whenever grep exits before tar has written everything.)
tar tzf "$T/out1/results.tgz" > "$T/list1" || fail "run 1: results.tgz is not a whole archive"
grep -q "summary.txt" "$T/list1" || fail "run 1: results.tgz lacks summary.txt"
[ -f "$T/out1/bench_gpu.md" ] || fail "run 1: bench_gpu.md not copied out"
[ ! -e "$T/out1/results-next.tgz" ] || fail "run 1: results-next.tgz left behind"

# 2. A hang under a 30 s budget: gpu_forward gets what is left (30 - 10 s
#    reserve), is stopped (rc 124), and the rest is skipped.
start=$(date +%s)
HANG=1 SWIGLU_BUDGET_S=30 bash "$T/bundle/run.sh" "$T/out2" > "$T/log2" 2>&1 || { cat "$T/log2"; fail "run 2 exited $?"; }
took=$(( $(date +%s) - start ))
[ "$took" -le 28 ] || fail "run 2 took ${took} s against a 30 s budget"
grep -q "^gpu_forward: rc=124 " "$T/out2/summary.txt" || { cat "$T/out2/summary.txt"; fail "run 2: gpu_forward was not stopped"; }
for step in gpu_hopper train_example bench_train bench "memcheck gpu_hopper"; do
  grep -q "^$step: skipped (budget)" "$T/out2/summary.txt" || { cat "$T/out2/summary.txt"; fail "run 2: '$step' not recorded as skipped"; }
done
tar tzf "$T/out2/results.tgz" > "$T/list2" || fail "run 2: results.tgz is not a whole archive"
grep -q "tests.log" "$T/list2" || fail "run 2: results.tgz lacks tests.log"
grep -q "skip_cluster=$" "$T/out1/tests.log" || fail "run 1: SWIGLU_SKIP_CLUSTER set without a failed smoke test"

# 3. The cluster smoke test fails: recorded, and the later steps see
#    SWIGLU_SKIP_CLUSTER=1.
FAIL_SMOKE=1 bash "$T/bundle/run.sh" "$T/out3" > "$T/log3" 2>&1 || { cat "$T/log3"; fail "run 3 exited $?"; }
grep -q "^cluster smoke: rc=3: FAILED" "$T/out3/summary.txt" || { cat "$T/out3/summary.txt"; fail "run 3: failed smoke test not recorded"; }
grep -q "^wgmma_selftest: rc=0 " "$T/out3/summary.txt" || fail "run 3: the full self-test did not run"
grep -q "skip_cluster=1" "$T/out3/tests.log" || fail "run 3: SWIGLU_SKIP_CLUSTER did not reach the tests"
tar xzf "$T/out3/results.tgz" -C "$T" ./selftest.log && grep -q "wgmma: skip_cluster=1" "$T/selftest.log" ||
  fail "run 3: SWIGLU_SKIP_CLUSTER did not reach the full self-test"
echo "test-gpu-run: OK (run.sh steps, budget cut-off after ${took} s, whole archives)"
