#!/usr/bin/env bash
# Builds, on a machine with nvcc but no GPU, everything a GPU host without a
# Rust toolchain needs to validate and benchmark swiglu, into one folder:
#
#   gpu-bundle/
#     run.sh            runs it all: ./run.sh OUTDIR (unpacks bin.tar.xz first)
#     bin.tar.xz        bin/, packed (xz; run.sh falls back to Python's lzma):
#       bin/gpu_*         release test executables (kernels embedded)
#       bin/bench_gpu*    the criterion benchmark executables (forward; training step)
#       bin/train_example the training example (examples/train), run with --device cuda
#       bin/*selftest     standalone CUDA C++ kernel self-tests (no Rust involved)
#     MANIFEST          commit, date, unpacked sizes
#
# Usage: scripts/gpu-bundle.sh [DEST]   (default: gpu-bundle/ in the repo root)
#        SWIGLU_BUNDLE=candle scripts/gpu-bundle.sh [DEST]: the candle-cuda
#        tests alone (see below), for a second device call
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEST="${1:-$ROOT/gpu-bundle}"
VENV_NVCC=/root/.cache/swiglu-cuda-venv/lib/python3.11/site-packages/nvidia/cu13/bin/nvcc
export NVCC="${NVCC:-$VENV_NVCC}"
export SWIGLU_REQUIRE_KERNELS=1
# The test, bench and example builds use different profiles, so build.rs runs
# once for each; the cache (keyed by the kernel sources, flags and nvcc) lets
# nvcc compile each family once. Old entries are never read again; delete
# target/kernel-cache to reclaim them.
export SWIGLU_KERNEL_CACHE="${SWIGLU_KERNEL_CACHE:-$ROOT/target/kernel-cache}"
[ -x "$NVCC" ] || { echo "nvcc not found at $NVCC (run .ci/run once, or set NVCC)" >&2; exit 1; }

rm -rf "$DEST"
mkdir -p "$DEST/bin"

# The executables travel as one bin.tar.xz (run.sh unpacks it): each embeds
# all the kernels, and uncompressed they no longer fit the device tool's
# 64 MiB (72 MB at d3c6241). The fatbins are compressed already (xz -6
# only reaches 43 MB), but they repeat in every executable: one xz stream
# (single-threaded, so no block boundaries) with a 128 MiB dictionary finds
# the repeats and gives ~10 MB. Unpacking needs 128 MiB of memory.
pack_bin() {
  tar -C "$DEST" -cf - bin | xz -T1 --lzma2=preset=6,dict=128MiB > "$DEST/bin.tar.xz"
  rm -rf "$DEST/bin"
}

# SWIGLU_BUNDLE=candle: a second, separate bundle with only the candle-cuda
# tests (tests/candle.rs with feature candle-cuda, as bin/gpu_candle, which
# run.sh runs like the other gpu_* tests). Every binary embeds all kernels,
# so it does not fit beside the main bundle in the device tool's 64 MiB.
# candle links the CUDA libraries dynamically; they are absent here, so the
# link uses the stand-ins of scripts/cuda-link-stubs.sh (the GPU host's real
# libraries are loaded at run time).
if [ "${SWIGLU_BUNDLE:-}" = candle ]; then
  stubs="$(bash scripts/cuda-link-stubs.sh)"
  exe=$(CUDA_PATH="$stubs" CUDA_COMPUTE_CAP=90 PATH="$(dirname "$NVCC"):$PATH" \
    cargo test --release --features candle-cuda --test candle --no-run --message-format=json \
      2>"$ROOT/target/candle-build.log" |
    python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except Exception: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "candle":
        print(m["executable"])
')
  [ -n "$exe" ] || { tail -40 "$ROOT/target/candle-build.log" >&2;
                     echo "the candle-cuda test did not build or link (log: target/candle-build.log)" >&2; exit 1; }
  cp "$exe" "$DEST/bin/gpu_candle"
  # It must load on the GPU host: every CUDA library it calls into needed
  # under its CUDA 13 soname, no name unresolved.
  bash scripts/check-candle-link.sh "$DEST/bin/gpu_candle" "$stubs"
  cp scripts/gpu-run.sh "$DEST/run.sh"
  chmod +x "$DEST/run.sh" "$DEST"/bin/*
  strip --strip-all "$DEST"/bin/* 2>/dev/null || true
  { echo "commit: $(git rev-parse HEAD)$(git diff --quiet || echo ' (+uncommitted changes)')"
    echo "built: $(date -u +%FT%TZ) (candle-cuda bundle)"; (cd "$DEST" && du -ab bin); } > "$DEST/MANIFEST"
  pack_bin
  du -sh "$DEST"
  exit 0
fi

# Release test executables: every integration test whose name starts with gpu_.
cargo test --release --no-run --message-format=json 2>/dev/null \
  | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except Exception: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        name = m["target"]["name"]
        if name.startswith("gpu_"):
            print(name, m["executable"])
' > "$DEST/.tests"
[ -s "$DEST/.tests" ] || { echo "no gpu_* test executables were built" >&2; exit 1; }
while read -r name exe; do cp "$exe" "$DEST/bin/$name"; done < "$DEST/.tests"
rm "$DEST/.tests"

bench_exe=$(cargo bench --bench gpu --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except Exception: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])
')
cp "$bench_exe" "$DEST/bin/bench_gpu"
train_exe=$(cargo bench --bench gpu_train --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except Exception: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu_train":
        print(m["executable"])
')
cp "$train_exe" "$DEST/bin/bench_gpu_train"

# The CLI (bin/swiglu) stays out: run.sh does not use it, and every binary
# embeds all kernels (~4 MB), so each one counts against the 64 MiB.
cargo build --release --example train
cp target/release/examples/train "$DEST/bin/train_example"

# The ptxas/SASS checks and the self-tests; not the host-emulator tests
# and mutants (CI's whole kernel-check step, which runs them, takes ~9 min), which CI runs on every commit
# (SWIGLU_REQUIRE_EMU, exported by .ci/run, would contradict the skip).
SWIGLU_SKIP_EMU=1 SWIGLU_REQUIRE_EMU=0 BUILD_SELFTEST=1 OUTDIR="$ROOT/target/kcheck" bash scripts/check-kernels.sh > "$ROOT/target/kcheck.log" 2>&1 \
  || { tail -30 "$ROOT/target/kcheck.log" >&2; echo "kernel checks failed" >&2; exit 1; }
for st in "$ROOT"/target/kcheck/*selftest; do cp "$st" "$DEST/bin/"; done

cp scripts/gpu-run.sh "$DEST/run.sh"
cp scripts/targets.py "$DEST/targets.py"
chmod +x "$DEST/run.sh" "$DEST"/bin/*
# Symbols too: panics still print their messages, and the bundle must fit.
strip --strip-all "$DEST"/bin/* 2>/dev/null || true
{
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (+uncommitted changes)')"
  echo "built: $(date -u +%FT%TZ) on $(uname -m)"
  echo "nvcc: $("$NVCC" --version | tail -1)"
  (cd "$DEST" && du -ab bin | sort -k2)
} > "$DEST/MANIFEST"
pack_bin
du -sh "$DEST"
size_mb=$(du -sm "$DEST" | cut -f1)
if [ "$size_mb" -gt 60 ]; then
  echo "warning: the packed bundle is ${size_mb} MB; the device tool carries at most 64 MiB with the working tree" >&2
fi
