#!/usr/bin/env bash
# Builds the stand-in CUDA driver and cuBLAS (kernels/emu/standin) into
# $1 (default target/emu-standin): libcuda.so(.1) with every kernel family
# compiled for the host emulator, libcublas.so(.13). Point the loader at it
# (LD_LIBRARY_PATH=$1) and cudarc finds them instead of a GPU's libraries.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$root/target/emu-standin}"
mkdir -p "$out/obj"
CXX="${CXX:-g++}"
flags=(-std=c++17 -O2 -g0 -fPIC -fvisibility=hidden -U_FORTIFY_SOURCE -Wall -Wno-unused-function
       -Wno-unused-variable -Wno-unknown-pragmas -I "$root/kernels/emu/include" -I "$root/kernels/emu" -I "$root/kernels")
families=(act_and_mul fused_glu_simt fused_glu_mma fused_glu_skinny fused_glu_wgmma
          fused_glu_wgmma_staged fused_glu_wgmma_train probe)
pids=()
for f in "${families[@]}"; do
  "$CXX" "${flags[@]}" -DGLU_EMU_FAMILY="\"$f.cu\"" -c "$here/kernels.cpp" -o "$out/obj/$f.o" &
  pids+=($!)
done
"$CXX" "${flags[@]}" -c "$here/driver.cpp" -o "$out/obj/driver.o" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
objs=("$out/obj/driver.o")
for f in "${families[@]}"; do objs+=("$out/obj/$f.o"); done
"$CXX" -shared -o "$out/libcuda.so.1" -Wl,-soname,libcuda.so.1 "${objs[@]}"
ln -sf libcuda.so.1 "$out/libcuda.so"
"$CXX" -std=c++17 -O2 -fPIC -fvisibility=hidden -I "$root/kernels/emu/include" -shared -o "$out/libcublas.so.13" \
  -Wl,-soname,libcublas.so.13 "$here/cublas.cpp" -L "$out" -lcuda -Wl,-rpath,'$ORIGIN'
ln -sf libcublas.so.13 "$out/libcublas.so"
echo "stand-in CUDA driver and cuBLAS in $out"
