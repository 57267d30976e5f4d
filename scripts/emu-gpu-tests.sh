#!/usr/bin/env bash
# The crate's own GPU tests (tests/gpu_*.rs) on the host emulator, without a
# GPU: kernels/emu/standin builds a stand-in libcuda (every kernel family
# compiled for the emulator, kernels/emu/cuda_emu.h) and libcublas, and the
# loader finds them instead of a GPU's libraries. The Rust launchers,
# dispatch, tensor maps, workspaces, autotuner, graph capture and training
# path then run against the kernels' own source; SWIGLU_REQUIRE_GPU=1, so a
# test cannot pass by skipping. The tests leave out problems above
# SWIGLU_EMU_MAX_MACS multiply-adds (tests/common/gpu.rs runs_here; each is
# printed) and shrink the graph test's shapes.
#
# Two devices: compute capability 9.0 (the Hopper kernels) and 8.0 (the
# sm_80 dispatch: fused-mma, skinny, simt; the Hopper paths refused).
# Needs nvcc for the embedded fatbins (build.rs; the stand-in checks only
# that a fatbin is loaded) and a C++17 compiler.
#
# usage: scripts/emu-gpu-tests.sh [extra cargo test args, e.g. --release]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(pwd)/target/emu-standin"
bash kernels/emu/standin/build.sh "$out" > /dev/null
export LD_LIBRARY_PATH="$out${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SWIGLU_REQUIRE_GPU=1 SWIGLU_REQUIRE_KERNELS=1
# Not modelled: the fragment probe reads the hardware's mma layout through
# static shared memory (kernels/probe.cu); the emulator's layout tables are
# what the other tests check against.
skip=(--skip mma_fragment_layouts_match)
tests=(--test gpu_forward --test gpu_hopper --test gpu_skinny --test gpu_train --test gpu_graph)
echo "=== emulated sm_90 device ($(date -u +%T))"
echo "SKIPPED on the emulator: mma_fragment_layouts_match (static shared memory is not modelled)"
SWIGLU_EMU_CC=90 cargo test "$@" "${tests[@]}" -- --nocapture "${skip[@]}"
echo "=== emulated sm_80 device ($(date -u +%T))"
SWIGLU_EMU_CC=80 cargo test "$@" "${tests[@]}" -- --nocapture "${skip[@]}"
echo "=== emu-gpu-tests: OK ($(date -u +%T))"
