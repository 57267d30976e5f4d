// Host stand-in for <cuda.h> under the kernel emulator (kernels/emu): only
// CUtensorMap, here in the emulator's own encoding (the driver's is an
// opaque 128-byte blob). Fill it with emu::encode_tiled
// (kernels/emu/cuda_emu_hopper.h), the counterpart of cuTensorMapEncodeTiled.
#pragma once
#include <stdint.h>

typedef struct CUtensorMap_st {
  const void* addr;
  uint32_t rank;        // 2 or 3
  uint32_t elem_bytes;  // 2
  uint64_t dims[3];     // elements, innermost first
  uint64_t strides[3];  // bytes of dims 1.. (strides[0] = dim 1's stride)
  uint32_t box[3];      // elements, innermost first
  uint32_t magic;       // kEmuTensorMapMagic once encoded
} CUtensorMap;
static_assert(sizeof(CUtensorMap) <= 128, "a CUtensorMap is 128 bytes");
