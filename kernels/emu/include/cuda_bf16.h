// Host stand-in for <cuda_bf16.h> under the kernel emulator (kernels/emu):
// the subset the sm_80 kernels use, bit-exact (round to nearest even, NaN
// kept quiet).
#pragma once
#include <stdint.h>
#include <string.h>

struct __nv_bfloat16 {
  uint16_t __x;
};

static inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = (uint32_t)h.__x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline __nv_bfloat16 __float2bfloat16_rn(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  __nv_bfloat16 h;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.__x = (uint16_t)((u >> 16) | 0x40u);  // quiet NaN
  } else {
    h.__x = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  return h;
}
static inline __nv_bfloat16 __float2bfloat16(float v) { return __float2bfloat16_rn(v); }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) { return __nv_bfloat16{b}; }
