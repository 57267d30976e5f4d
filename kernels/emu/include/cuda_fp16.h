// Host stand-in for <cuda_fp16.h> under the kernel emulator (kernels/emu):
// the subset the sm_80 kernels use, bit-exact (RNE via the compiler's
// _Float16). Only on the include path of the emulator's host tests.
#pragma once
#include <stdint.h>
#include <string.h>

struct __half {
  uint16_t __x;
};

// f16 -> f32 through a table of all 65536 values (exact: every f16 is an
// f32): the compiler's _Float16 conversion is a libgcc call without F16C,
// and it was the emulator's hottest function.
inline const float* emu_half_table() {
  static const float* const t = [] {
    float* v = new float[65536];
    for (uint32_t i = 0; i < 65536; ++i) {
      const uint16_t b = (uint16_t)i;
      _Float16 f;
      memcpy(&f, &b, 2);
      v[i] = (float)f;
    }
    return v;
  }();
  return t;
}
static inline float __half2float(__half h) { return emu_half_table()[h.__x]; }
static inline __half __float2half_rn(float v) {
  const _Float16 f = (_Float16)v;  // round to nearest even
  __half h;
  memcpy(&h.__x, &f, 2);
  return h;
}
static inline __half __float2half(float v) { return __float2half_rn(v); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
