// Host stand-in for <cuda_fp16.h> under the kernel emulator (kernels/emu):
// the subset the sm_80 kernels use, bit-exact (RNE via the compiler's
// _Float16). Only on the include path of the emulator's host tests.
#pragma once
#include <stdint.h>
#include <string.h>

struct __half {
  uint16_t __x;
};

static inline float __half2float(__half h) {
  _Float16 f;
  memcpy(&f, &h.__x, 2);
  return (float)f;
}
static inline __half __float2half_rn(float v) {
  const _Float16 f = (_Float16)v;  // round to nearest even
  __half h;
  memcpy(&h.__x, &f, 2);
  return h;
}
static inline __half __float2half(float v) { return __float2half_rn(v); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
