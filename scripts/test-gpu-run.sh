#!/usr/bin/env bash
# Checks scripts/gpu-run.sh (the GPU bundle's run.sh) on a fake bundle, with
# no GPU: shell scripts stand in for the self-tests, test binaries, example,
# benches and compute-sanitizer. Run by CI (~25 s).
#   1. Every step runs and is recorded; results.tgz is a whole archive.
#   2. With a small SWIGLU_BUDGET_S, a test binary that hangs is stopped
#      at the budget left, and every later step is recorded as skipped.
#   3. A failing cluster smoke test (wgmma_selftest --cluster-smoke) is
#      recorded and SWIGLU_SKIP_CLUSTER=1 reaches every later step; with a
#      failing test binary too, the verdict names both and run.sh exits 1.
#   4. Self-tests that exit 77 (no compute capability 9.0 device), under
#      run.sh and under compute-sanitizer, are recorded as skipped, not as
#      passes; the verdict says so and run.sh exits 0.
# Every run's summary.txt must end with its verdict line.
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
fake wgmma_selftest '[ -z "${SKIP77:-}" ] || { echo "SKIPPED: needs compute capability 9.0"; exit 77; }
[ "${1:-}" != --cluster-smoke ] || [ -z "${FAIL_SMOKE:-}" ] || exit 3
echo "wgmma: skip_cluster=${SWIGLU_SKIP_CLUSTER:-}"'
fake gpu_forward 'echo "test a ... ok"; [ -z "${HANG:-}" ] || sleep 100'
fake gpu_hopper 'echo "test b ... ok skip_cluster=${SWIGLU_SKIP_CLUSTER:-}"; [ -z "${FAIL_TEST:-}" ] || exit 101'
fake train_example 'echo "loss 1.0"'
fake bench_gpu_train 'echo "| 512 | x |" > "$SWIGLU_RESULTS_DIR/bench_gpu_train.md"'
fake bench_gpu 'echo "| 1 | x |" > "$SWIGLU_RESULTS_DIR/bench_gpu.md"'
# compute-sanitizer --tool T --error-exitcode 9 BIN ARGS...: with no errors
# found, the program's own exit status.
printf '#!/usr/bin/env bash\nshift 4; "$@" > /dev/null; rc=$?; echo "========= ERROR SUMMARY: 0 errors"; exit $rc\n' \
  > "$T/san/compute-sanitizer"
chmod +x "$T/san/compute-sanitizer"
export PATH="$T/san:$PATH"
# verdict N PATTERN: the last line of run N's summary.txt matches PATTERN.
verdict() {
  tail -1 "$T/out$1/summary.txt" | grep -qE "^verdict: $2" ||
    { cat "$T/out$1/summary.txt"; fail "run $1: the verdict line does not match '$2'"; }
}

# 1. Everything fits.
bash "$T/bundle/run.sh" "$T/out1" > "$T/log1" 2>&1 || { cat "$T/log1"; fail "run 1 exited $?"; }
for step in "cluster smoke" probe_selftest wgmma_selftest gpu_forward gpu_hopper train_example bench_train bench \
  "memcheck gpu_hopper" "memcheck gpu_forward" "racecheck gpu_forward"; do
  grep -q "^$step: rc=0 " "$T/out1/summary.txt" || { cat "$T/out1/summary.txt"; fail "run 1: no rc=0 line for '$step'"; }
done
verdict 1 "all 12 steps passed$"
# (The listing goes to a file first: `tar … | grep -q` under pipefail fails
# whenever grep exits before tar has written everything.)
tar tzf "$T/out1/results.tgz" > "$T/list1" || fail "run 1: results.tgz is not a whole archive"
grep -q "summary.txt" "$T/list1" || fail "run 1: results.tgz lacks summary.txt"
[ -f "$T/out1/bench_gpu.md" ] || fail "run 1: bench_gpu.md not copied out"
[ ! -e "$T/out1/results-next.tgz" ] || fail "run 1: results-next.tgz left behind"

# 2. A hang under a 30 s budget: gpu_forward gets what is left (30 - 10 s
#    reserve), is stopped (rc 124), and the rest is skipped; run.sh fails.
start=$(date +%s)
rc=0; HANG=1 SWIGLU_BUDGET_S=30 bash "$T/bundle/run.sh" "$T/out2" > "$T/log2" 2>&1 || rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" -eq 1 ] || { cat "$T/log2"; fail "run 2 (a step timed out) exited $rc, not 1"; }
[ "$took" -le 28 ] || fail "run 2 took ${took} s against a 30 s budget"
grep -q "^gpu_forward: rc=124 " "$T/out2/summary.txt" || { cat "$T/out2/summary.txt"; fail "run 2: gpu_forward was not stopped"; }
for step in gpu_hopper train_example bench_train bench "memcheck gpu_hopper"; do
  grep -q "^$step: skipped (budget)" "$T/out2/summary.txt" || { cat "$T/out2/summary.txt"; fail "run 2: '$step' not recorded as skipped"; }
done
verdict 2 "FAILED: gpu_forward \(1 of [0-9]+ steps failed; [0-9]+ skipped: gpu_hopper, train_example, "
tar tzf "$T/out2/results.tgz" > "$T/list2" || fail "run 2: results.tgz is not a whole archive"
grep -q "tests.log" "$T/list2" || fail "run 2: results.tgz lacks tests.log"
grep -q "skip_cluster=$" "$T/out1/tests.log" || fail "run 1: SWIGLU_SKIP_CLUSTER set without a failed smoke test"

# 3. The cluster smoke test fails: recorded, and the later steps see
#    SWIGLU_SKIP_CLUSTER=1. gpu_hopper fails too (and so under memcheck):
#    the verdict names all three, run.sh exits 1, and every log and the
#    archive are still written.
rc=0; FAIL_SMOKE=1 FAIL_TEST=1 bash "$T/bundle/run.sh" "$T/out3" > "$T/log3" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { cat "$T/log3"; fail "run 3 (failing steps) exited $rc, not 1"; }
grep -q "^cluster smoke: rc=3: FAILED" "$T/out3/summary.txt" || { cat "$T/out3/summary.txt"; fail "run 3: failed smoke test not recorded"; }
grep -q "^gpu_hopper: rc=101 " "$T/out3/summary.txt" || { cat "$T/out3/summary.txt"; fail "run 3: failed test binary not recorded"; }
verdict 3 "FAILED: cluster smoke, gpu_hopper, memcheck gpu_hopper \(3 of 12 steps failed\)$"
grep -q "^racecheck gpu_forward: rc=0 " "$T/out3/summary.txt" || fail "run 3: the steps after a failure did not run"
[ -f "$T/out3/bench_gpu.md" ] && [ -f "$T/out3/tests.log" ] || fail "run 3: the plain files were not copied out after a failure"
tar tzf "$T/out3/results.tgz" > "$T/list3" || fail "run 3: results.tgz is not a whole archive"
grep -q "summary.txt" "$T/list3" || fail "run 3: results.tgz lacks summary.txt"
tar xzf "$T/out3/results.tgz" -C "$T" ./summary.txt && tail -1 "$T/summary.txt" | grep -q "^verdict: FAILED" ||
  fail "run 3: the archived summary.txt lacks the verdict"
grep -q "^wgmma_selftest: rc=0 " "$T/out3/summary.txt" || fail "run 3: the full self-test did not run"
grep -q "skip_cluster=1" "$T/out3/tests.log" || fail "run 3: SWIGLU_SKIP_CLUSTER did not reach the tests"
tar xzf "$T/out3/results.tgz" -C "$T" ./selftest.log && grep -q "wgmma: skip_cluster=1" "$T/selftest.log" ||
  fail "run 3: SWIGLU_SKIP_CLUSTER did not reach the full self-test"

# 4. Not a compute capability 9.0 device: wgmma_selftest exits 77 for the
#    smoke test, the full run and under racecheck: each is recorded as
#    skipped (rc=77), SWIGLU_SKIP_CLUSTER stays unset, run.sh exits 0.
rc=0; SKIP77=1 bash "$T/bundle/run.sh" "$T/out4" > "$T/log4" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/log4"; fail "run 4 (skipped self-tests only) exited $rc"; }
for step in "cluster smoke" wgmma_selftest "racecheck wgmma_selftest"; do
  grep -q "^$step: skipped (rc=77) " "$T/out4/summary.txt" || { cat "$T/out4/summary.txt"; fail "run 4: '$step' not recorded as skipped (rc=77)"; }
done
grep -q "skip_cluster=$" "$T/out4/tests.log" || fail "run 4: SWIGLU_SKIP_CLUSTER set by a skipped smoke test"
verdict 4 "all 9 steps run passed; 3 skipped: cluster smoke, wgmma_selftest, racecheck wgmma_selftest$"
echo "test-gpu-run: OK (run.sh steps, verdicts and exit status, rc=77 skips, budget cut-off after ${took} s, whole archives)"
