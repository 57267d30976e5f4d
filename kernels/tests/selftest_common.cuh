// Host-side helpers shared by the standalone CUDA self-tests of the 16-bit
// kernels (wgmma_selftest.cu, wgmma_grad_selftest.cu, skinny_selftest.cu):
// error checking, the 16-bit host types, seeded random inputs, a device
// buffer, and the TMA tensor-map builder that mirrors src/cuda/hopper.rs.
// Each self-test is its own program: define SELFTEST_SEED before including.
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#ifndef SELFTEST_SEED
#error "define SELFTEST_SEED before including selftest_common.cuh"
#endif

// Exit status of a self-test that found nothing it can test on this device
// (the automake convention): run.sh records it as "skipped (rc=77)", not as
// a pass (0) or a failure (anything else).
#define SELFTEST_SKIP 77

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); std::exit(2); } } while (0)

// Host conversions, the per-dtype relative tolerance of a rounded output,
// the name printed in the case lines, and the TMA element type.
template <typename T> struct HT;
template <> struct HT<__half> {
  static __half from(float v) { return __float2half_rn(v); }
  static float to(__half v) { return __half2float(v); }
  static constexpr double tol = 2e-3;
  static constexpr const char* name = "f16";
  static constexpr CUtensorMapDataType tma = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
};
template <> struct HT<__nv_bfloat16> {
  static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
  static float to(__nv_bfloat16 v) { return __bfloat162float(v); }
  static constexpr double tol = 1e-2;
  static constexpr const char* name = "bf16";
  static constexpr CUtensorMapDataType tma = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
};

inline std::mt19937 rng(SELFTEST_SEED);
inline float urand(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
// n values uniform in [-scale, scale], rounded to T.
template <typename T>
std::vector<T> rand_vec(size_t n, float scale) {
  std::vector<T> v(n);
  for (auto& e : v) e = HT<T>::from(urand(-scale, scale));
  return v;
}

// A device allocation freed at scope exit (never null: 0 bytes allocate 16).
struct Dev {
  void* p = nullptr;
  explicit Dev(size_t bytes) { CK(cudaMalloc(&p, bytes ? bytes : 16)); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
};

// cuTensorMapEncodeTiled through the runtime's driver entry point (no -lcuda).
inline PFN_cuTensorMapEncodeTiled_v12000 g_encode = nullptr;
inline void load_encode() {
  cudaDriverEntryPointQueryResult q;
  void* fn = nullptr;
  CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
  if (q != cudaDriverEntryPointSuccess || !fn) { std::printf("cuTensorMapEncodeTiled not found\n"); std::exit(2); }
  g_encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
}

// A [rows, inner] block of a row-major 16-bit matrix whose rows are `ld`
// elements apart: box {64, box_rows}, 128B swizzle, out-of-bounds elements
// read as zero. Mirrors encode_map_ld in src/cuda/hopper.rs.
template <typename T>
CUtensorMap map_ld(const void* base, int64_t rows, int64_t inner, int64_t ld, uint32_t box_rows) {
  CUtensorMap m;
  std::memset(&m, 0, sizeof m);
  cuuint64_t dims[2] = {(cuuint64_t)inner, (cuuint64_t)rows};
  cuuint64_t strides[1] = {(cuuint64_t)ld * 2};
  cuuint32_t box[2] = {64, box_rows};
  cuuint32_t estr[2] = {1, 1};
  CUresult r = g_encode(&m, HT<T>::tma, 2, const_cast<void*>(base), dims, strides, box, estr,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    std::printf("cuTensorMapEncodeTiled failed: %d (rows=%lld inner=%lld ld=%lld)\n", (int)r,
                (long long)rows, (long long)inner, (long long)ld);
    std::exit(2);
  }
  return m;
}
