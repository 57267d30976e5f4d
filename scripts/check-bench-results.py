#!/usr/bin/env python3
"""Checks that a run of the GPU benches produced every table it should.

Usage: scripts/check-bench-results.py RESULTS_DIR STDERR_LOG --cc 90|80
    [--train-stderr LOG] [--k K] [--n N,N...] [--m M,M...] [--f32-m M,...]
    [--train-m M,...]

--k, --n, --m, --f32-m and --train-m are the shapes the benches were asked
for (SWIGLU_BENCH_K, _N, _M, _F32_M, _TRAIN_M): each must be there (a whole
N or M the bench dropped is a problem, and so is one it was not asked for).
Without them the shapes are taken from the rows themselves, which cannot
show a shape missing everywhere.

scripts/emu-bench.sh runs the benches (benches/gpu.rs, benches/gpu_train.rs)
on the host emulator's stand-in driver at small shapes, so that the code
a GPU session will spend its minutes on has run before it gets there. The
emulator's timings mean nothing; this checks the *shape* of the results:

* bench_gpu.json parses and says which shapes it ran: exactly the ones
  asked for, when given;
* every forward path the device can take has a row at every shape it can
  take, Auto and cuBLAS B1 at every shape, and the paths that were left
  out were left out for the two known reasons only (M above the decode
  kernels' limit; the sm_90a kernels on a device below 9.0);
* the event-tracking rows (2 handles x 2 M x 2 paths), the f32 table
  (Auto, SIMT, B1, B2 and B1 with tf32 per M) and exactly one autotuner
  decision per row class (m_class of src/cuda/autotune.rs) of the bf16
  shapes and the f32 Ms are there, and no autotune candidate failed;
* every time is a positive finite number;
* the training table has all 8 configurations per M, each with the bytes
  its mode must keep between the passes (eager: g, u and act(g); the
  others with PreActivations: [M, 2N]; Recompute: nothing), a peak and a
  step time with the memory pool keeping freed memory;
* the stage table (bench_gpu_train_stages.json) has, per M, configuration
  and pool setting, the stages that configuration's step must pass
  through (STAGES_EXPECTED: e.g. eager's activation kernel, the fused
  path's Hopper dX on cc 9.0), each with finite non-negative times.

Exit status 1 with one line per problem, else 0 with a summary.
"""
import argparse
import json
import math
import os
import re
import sys

FORWARD_PATHS = [
    "auto", "fused-wgmma", "fused-wgmma-staged", "fused-wgmma-split", "fused-wgmma-cluster",
    "fused-skinny", "fused-skinny-streamk", "fused-skinny-rs", "fused-mma", "cublas-b1", "cublas-b2",
    "cublas-b3",
]
HOPPER = {p for p in FORWARD_PATHS if p.startswith("fused-wgmma")}
DECODE = {"fused-skinny", "fused-skinny-streamk"}
# The register-streaming decode kernel: M <= 16 (NK weights: the bench's are
# the concatenated [2N, K]).
RS = "fused-skinny-rs"
SKINNY_RS_MAX_M = 16
SKINNY_MAX_M = 64
TRAIN_CONFIGS = [(k, m) for k in ("Eager", "Cublas", "Fused", "FusedStaged")
                 for m in ("PreActivations", "Recompute")]

# Stages each configuration's step must list (CudaGlu::set_stage_timing),
# by (kernels, mode); the Hopper ones only on cc 9.0 (`hopper`), where the
# emulated M (64, 130) exceeds the fused training kernels' M > 32, and the
# Hopper dX / dW kernels only where K is a multiple of 16 with K / 2 one of 8
# (wgmma_dx_eligible, wgmma_dw_eligible; the emulated K = 264 is not: its
# fused steps run cuBLAS there).
def stages_expected(kern, mode, hopper, k):
    want = ["bwd: allocate dG|dU [M,2N]", "(between calls)"]
    fused = hopper and kern in ("Fused", "FusedStaged")
    grad_kernels = fused and k % 16 == 0 and (k // 2) % 8 == 0
    if mode == "Recompute":
        want.append("fwd: inference forward (Recompute)")
    elif kern == "Eager":
        want += ["allocate [M,2N] pre-activations", "pre-activation GEMMs (cuBLAS)",
                 "allocate act(g) [M,N] (eager)", "activation kernel (eager)",
                 "fwd: multiply kernel (eager)"]
    elif fused:
        want += ["allocate [M,2N] pre-activations",
                 "fwd: fused forward, out + pre-activations (Hopper)"]
    else:
        want += ["allocate [M,2N] pre-activations", "pre-activation GEMMs (cuBLAS)",
                 "fwd: act_and_mul kernel"]
    if kern == "Eager":
        want += ["bwd: allocate t [M,N] (eager)", "bwd: three gradient kernels (eager)"]
    elif fused and mode == "Recompute":
        want.append("bwd: dG|dU from a recomputing forward (Hopper)")
    else:
        want.append("bwd: glu_bwd kernel (dG|dU)")
    if grad_kernels:
        return want + ["bwd: dX (Hopper kernel)", "bwd: dW (Hopper kernel)"]
    # cuBLAS per projection: eager's dX and dW; the others' dW (their dX is
    # one GEMM over the bench's concatenated weights). The bench has no
    # biases, so no bias-gradient stages.
    want += ["bwd: gate dW GEMM (cuBLAS)", "bwd: up dW GEMM (cuBLAS)"]
    if kern == "Eager":
        want += ["bwd: gate dX GEMM (cuBLAS)", "bwd: up dX GEMM (cuBLAS)"]
    else:
        want.append("bwd: dX (one cuBLAS GEMM over K=2N)")
    return want


problems = []


def bad(msg):
    problems.append(msg)


def m_class(m):
    """src/cuda/autotune.rs m_class (mirrored): the rows one tuning decision
    covers. Powers of two up to 64, the 128-row tile count to 2048, powers
    of two above."""
    if m <= 64:
        hi = 1 << (max(m, 1) - 1).bit_length()
        return (hi // 2 + 1, hi)
    if m <= 2048:
        hi = -(-m // 128) * 128
        return (max(hi - 128 + 1, 65), hi)
    hi = 1 << (m - 1).bit_length()
    return (hi // 2 + 1, hi)


def int_list(text):
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not vals:
        raise argparse.ArgumentTypeError("empty list")
    return vals


def positive(v):
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def load(d, name):
    """A results file, which must say that its shapes were set by hand."""
    with open(os.path.join(d, name)) as f:
        j = json.load(f)
    if j.get("issue_shapes", True):
        bad(f"{name}: issue_shapes is not false, yet the shapes were set")
    return j


def check_forward(d, stderr, cc, want_k=None, want_ns=None, want_ms=None, want_f32_ms=None):
    j = load(d, "bench_gpu.json")
    k = j["k"]
    if want_k is not None and k != want_k:
        bad(f"bench_gpu.json: K = {k}, the bench was asked for K = {want_k}")
    rows = j["results"]
    shapes = sorted({(r["n"], r["m"]) for r in rows})
    if not shapes:
        bad("bench_gpu.json: no forward rows")
    # The N and M lists the bench was asked for (else the ones it ran).
    ns = want_ns or sorted({n for (n, _) in shapes})
    ms = want_ms or sorted({m for (_, m) in shapes})
    asked = {(n, m) for n in ns for m in ms}
    for (n, m) in sorted(asked - set(shapes)):
        bad(f"forward N={n} M={m}: no rows at all, yet the bench was asked for it")
    for (n, m) in sorted(set(shapes) - asked):
        bad(f"forward N={n} M={m}: rows at a shape the bench was not asked for")
    for r in rows:
        if not positive(r["median_s"]) or not positive(r["queued_s"]) or not positive(r["host_enqueue_s"]):
            bad(f"forward N={r['n']} M={r['m']} {r['path']}: time not positive {r}")
        if r["path"] != "auto" and r["ran"] != r["path"]:
            bad(f"forward N={r['n']} M={r['m']}: forced {r['path']} ran {r['ran']}")
    have = {(r["n"], r["m"], r["path"]) for r in rows}
    left_out = {}
    for line in stderr:
        m = re.match(r"bf16 N=\s*(\d+) M=\s*(\d+) (\S+) left out: (.*)", line)
        if m:
            left_out[(int(m[1]), int(m[2]), m[3])] = m[4]
    for (n, m) in shapes:
        for p in FORWARD_PATHS:
            expect_out = ((p in HOPPER and cc < 90) or (p in DECODE and m > SKINNY_MAX_M)
                          or (p == RS and m > SKINNY_RS_MAX_M))
            # B2 needs one [2N, K] tensor: the bench always passes one.
            if (n, m, p) in have:
                if expect_out:
                    bad(f"forward N={n} M={m}: {p} ran, but it should have been refused here")
            elif not expect_out:
                why = left_out.get((n, m, p), "no row and no reason printed")
                bad(f"forward N={n} M={m}: {p} missing ({why})")
            elif (n, m, p) not in left_out:
                bad(f"forward N={n} M={m}: {p} left out without a printed reason")
    for key, why in left_out.items():
        n, m, p = key
        ok = ("needs compute capability 9.0" in why and p in HOPPER and cc < 90) or (
            f"takes M <= {SKINNY_MAX_M}" in why and p in DECODE and m > SKINNY_MAX_M) or (
            f"takes M <= {SKINNY_RS_MAX_M} and NK weights" in why and p == RS and m > SKINNY_RS_MAX_M)
        if not ok:
            bad(f"forward N={n} M={m}: {p} left out for an unexpected reason: {why}")

    et = j.get("event_tracking", [])
    handles = {r["handle"] for r in et}
    if len(et) != 8 or len(handles) != 2:
        bad(f"event_tracking: {len(et)} rows over {len(handles)} handles, expected 8 over 2")
    for r in et:
        if not (positive(r["median_s"]) and positive(r["queued_s"]) and positive(r["host_enqueue_s"])):
            bad(f"event_tracking row not positive: {r}")

    f32 = j.get("f32", [])
    f32_ms = sorted({r["m"] for r in f32})
    if want_f32_ms is not None:
        for m in sorted(set(want_f32_ms) - set(f32_ms)):
            bad(f"f32 M={m}: no rows, yet the bench was asked for it")
        for m in sorted(set(f32_ms) - set(want_f32_ms)):
            bad(f"f32 M={m}: rows at an M the bench was not asked for")
    # The f32 table (and its autotuning) runs at the first N of the list.
    f32_ns = sorted({r["n"] for r in f32})
    if len(f32_ns) > 1 or (want_ns and f32_ns and f32_ns != [want_ns[0]]):
        bad(f"f32 table at N = {f32_ns}, expected the first N of the list only ({ns[0]})")
    f32_n = want_ns[0] if want_ns else (f32_ns[0] if f32_ns else None)
    for m in f32_ms:
        got = {r["path"] for r in f32 if r["m"] == m}
        for want in ("fused-simt", "cublas-b1", "cublas-b2", "cublas-b1 tf32 (timed after)"):
            if want not in got:
                bad(f"f32 M={m}: row {want!r} missing (have {sorted(got)})")
        # Auto keeps f32 exact: cuBLAS's SGEMM (since session 16) or the
        # SIMT kernel, never a tf32 path.
        autos = sorted(p for p in got if p.startswith("auto ("))
        if len(autos) != 1 or autos[0] not in ("auto (cublas-b2)", "auto (cublas-b1)", "auto (fused-simt)"):
            bad(f"f32 M={m}: want one exact-f32 auto row, have {autos}")
    if not f32_ms:
        bad("f32 table empty")
    for r in f32:
        if not positive(r["median_s"]):
            bad(f"f32 row not positive: {r}")

    # One decision per row class (shapes whose M share a class are tuned
    # once, at the first such M the bench ran), each at an M the bench ran.
    tuned = j.get("autotune", [])
    want_m = {"bf16": {(n, m) for n in ns for m in ms},
              "f32": {(f32_n, m) for m in (want_f32_ms or f32_ms)} if f32_n is not None else set()}
    want_classes = {(dt, n, m_class(m)) for dt, nm in want_m.items() for (n, m) in nm}
    got = {}
    for t in tuned:
        key = (t["dtype"], t["n"], m_class(t["m"]))
        got.setdefault(key, []).append(t["m"])
        if (t["n"], t["m"]) not in want_m.get(t["dtype"], set()):
            bad(f"autotune {t['dtype']} N={t['n']} M={t['m']}: not a shape the bench ran")
    for key in sorted(want_classes - set(got)):
        dt, n, (lo, hi) = key
        bad(f"autotune {dt} N={n}: no decision for the rows {lo}..{hi} "
            f"(M = {sorted(m for (n2, m) in want_m[dt] if n2 == n and lo <= m <= hi)})")
    for key, mlist in sorted(got.items()):
        if len(mlist) > 1:
            bad(f"autotune {key[0]} N={key[1]}: {len(mlist)} decisions for the rows {key[2][0]}..{key[2][1]} (M = {mlist})")
    if not tuned:
        bad("autotune: no decisions")
    for t in tuned:
        if t["kept"] not in [c["path"] for c in t["candidates"]]:
            bad(f"autotune {t}: kept path is not among its candidates")
    for line in stderr:
        if "autotune failed" in line or re.search(r"autotune .*: \S+ failed", line):
            bad(f"stderr: {line.strip()}")
    return j, shapes, k


def check_train(d, stderr, cc, want_ms=None, want_n=None, want_k=None):
    j = load(d, "bench_gpu_train.json")
    n = j["n"]
    rows = j["results"]
    ms = sorted({r["m"] for r in rows})
    if not ms:
        bad("training table empty")
    if want_n is not None and n != want_n:
        bad(f"training: N = {n}, expected the first N of the list, {want_n}")
    if want_k is not None and j["k"] != want_k:
        bad(f"training: K = {j['k']}, the bench was asked for K = {want_k}")
    if want_ms is not None:
        for m in sorted(set(want_ms) - set(ms)):
            bad(f"training M={m}: no rows, yet the bench was asked for it")
        for m in sorted(set(ms) - set(want_ms)):
            bad(f"training M={m}: rows at an M the bench was not asked for")
    for m in ms:
        got = {(r["kernels"], r["mode"]): r for r in rows if r["m"] == m}
        for cfg in TRAIN_CONFIGS:
            r = got.get(cfg)
            if r is None:
                bad(f"training M={m}: {cfg} missing")
                continue
            if not (positive(r["step_ms"]) and positive(r["backward_ms"])):
                bad(f"training M={m} {cfg}: times not positive")
            if r["peak_mb"] is None:
                bad(f"training M={m} {cfg}: no peak memory (the pool attributes failed)")
            if not positive(r.get("step_ms_pool_kept")):
                bad(f"training M={m} {cfg}: no step time with the pool keeping memory")
            kern, mode = cfg
            want = 0 if mode == "Recompute" else (3 if kern == "Eager" else 2) * m * n * 2
            if abs(r["saved_mb"] * 1e6 - want) > 1e3:
                bad(f"training M={m} {cfg}: keeps {r['saved_mb']} MB between the passes, expected {want / 1e6:.3f}")
    st = load(d, "bench_gpu_train_stages.json")["stages"]
    for m in ms:
        for cfg in TRAIN_CONFIGS:
            for kept in (False, True):
                rows = [r for r in st if r["m"] == m and (r["kernels"], r["mode"]) == cfg
                        and r["pool_kept"] == kept]
                where = f"stages M={m} {cfg} pool_kept={kept}"
                names = [r["stage"] for r in rows]
                for want in stages_expected(*cfg, cc >= 90, j["k"]):
                    if want not in names:
                        bad(f"{where}: no stage {want!r} (got {names})")
                for r in rows:
                    for key in ("device_ms", "host_us"):
                        v = r[key]
                        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                            bad(f"{where}: {r['stage']} {key} = {v}")
    for line in stderr:
        if "panicked" in line:
            bad(f"training stderr: {line.strip()}")
    return ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("stderr")
    ap.add_argument("--cc", type=int, required=True)
    ap.add_argument("--train-stderr")
    ap.add_argument("--k", type=int, help="the K the benches were asked for (SWIGLU_BENCH_K)")
    ap.add_argument("--n", type=int_list, help="the forward N list, in order (SWIGLU_BENCH_N)")
    ap.add_argument("--m", type=int_list, help="the forward M list (SWIGLU_BENCH_M)")
    ap.add_argument("--f32-m", type=int_list, help="the f32 table's M list (SWIGLU_BENCH_F32_M)")
    ap.add_argument("--train-m", type=int_list, help="the training bench's M list (SWIGLU_BENCH_TRAIN_M)")
    a = ap.parse_args()
    if a.train_m and not a.train_stderr:
        ap.error("--train-m needs --train-stderr (the training results are checked only with it)")
    stderr = open(a.stderr, errors="replace").readlines()
    j, shapes, k = check_forward(a.dir, stderr, a.cc, a.k, a.n, a.m, a.f32_m)
    ms = []
    if a.train_stderr:
        ms = check_train(a.dir, open(a.train_stderr, errors="replace").readlines(), a.cc,
                         a.train_m, a.n[0] if a.n else None, a.k)
    if problems:
        for p in problems:
            print(f"PROBLEM: {p}")
        sys.exit(1)
    print(f"bench results OK on {j['device']} (cc {a.cc / 10:.1f}): {len(j['results'])} forward rows over "
          f"{len(shapes)} shapes (K = {k}), {len(j['event_tracking'])} event-tracking rows, "
          f"{len(j['f32'])} f32 rows, {len(j['autotune'])} autotuned classes"
          + (f", training at M = {ms}" if ms else ""))


if __name__ == "__main__":
    main()
