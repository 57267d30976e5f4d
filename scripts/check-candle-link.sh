#!/usr/bin/env bash
# Checks that a binary linked with the `candle-cuda` feature against the
# stand-ins of scripts/cuda-link-stubs.sh will load on a GPU host: it must
# list every CUDA library candle calls into, each under its CUDA 13 soname,
# and leave no name unresolved against the stand-ins under those sonames
# (`ldd -r`). The stand-ins hold every name cudarc declares, so a name the
# host's real library lacks is not caught here.
# Usage: scripts/check-candle-link.sh BINARY STUBS_DIR
# (SWIGLU_CANDLE_LIBS overrides the list of sonames that must be needed.)
set -euo pipefail
bin="$1" stubs="$(cd "$2" && pwd)"
sonames="$stubs/sonames"
mkdir -p "$sonames"
for f in "$stubs"/lib64/*.so; do
  ln -sf "$f" "$sonames/$(readelf -d "$f" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
done
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in ${SWIGLU_CANDLE_LIBS:-libcuda.so.1 libcudart.so.13 libcublas.so.13 libcurand.so.10}; do
  grep -qx "$lib" <<<"$needed" ||
    { echo "$bin does not list $lib as needed (it needs: $(echo $needed));" \
        "a binary linked before the stand-ins changed is not relinked by cargo: remove it and build again" >&2; exit 1; }
done
if LD_LIBRARY_PATH="$sonames" ldd -r "$bin" 2>&1 | grep -E 'undefined symbol|not found' >&2; then
  echo "$bin would not load on the GPU host (unresolved names above)" >&2
  echo "(a binary linked before the stand-ins changed is not relinked by cargo: remove it and build again)" >&2
  exit 1
fi
echo "$(basename "$bin") needs: $(echo $needed)"
