// A stand-in for cuBLAS (libcublas.so) on the host emulator: cublasGemmEx,
// column-major, f32 / f16 / bf16 storage, f32 compute (or its tf32 mode:
// inputs rounded to 10 mantissa bits), on the stand-in driver's device
// memory and streams (driver.cpp: swiglu_emu_in_device, swiglu_emu_enqueue,
// so a captured stream records the GEMM into its graph). Products are
// summed in double and rounded once to the output type: inside cuBLAS's own
// error (f32 accumulation), which the crate's tests bound. Test tooling only.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>

#include <cuda_fp16.h>  // the emulator's stand-in (kernels/emu/include)

#define API extern "C" __attribute__((visibility("default")))

extern "C" int swiglu_emu_in_device(unsigned long long p, size_t n);
extern "C" int swiglu_emu_enqueue(void* stream, void (*fn)(void*), void* ctx, void (*drop)(void*));

enum : int {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum : int { R_32F = 0, R_16F = 2, R_16BF = 14 };
enum : int { COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77 };

namespace {
struct Handle {
  void* stream = nullptr;
};
std::set<Handle*> g_handles;

float load(const void* p, int t, size_t i) {
  if (t == R_32F) return ((const float*)p)[i];
  uint16_t h = ((const uint16_t*)p)[i];
  if (t == R_16BF) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  return __half2float(__ushort_as_half(h));  // the emulator's f16 table (cuda_fp16.h)
}
void store(void* p, int t, size_t i, float v) {
  if (t == R_32F) {
    ((float*)p)[i] = v;
  } else if (t == R_16BF) {
    uint32_t u;
    memcpy(&u, &v, 4);
    uint16_t h;
    if (v != v)
      h = 0x7fc0;
    else
      h = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);  // round to nearest even
    ((uint16_t*)p)[i] = h;
  } else {
    _Float16 x = (_Float16)v;
    memcpy((uint16_t*)p + i, &x, 2);
  }
}
float tf32(float v) {  // round to nearest, 10 mantissa bits; NaN and Inf kept
  if (!std::isfinite(v)) return v;
  uint32_t u;
  memcpy(&u, &v, 4);
  u = (u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u;
  memcpy(&v, &u, 4);
  return v;
}
size_t elem(int t) { return t == R_32F ? 4 : 2; }

struct Gemm {
  bool ta, tb, fast;
  int m, n, k, lda, ldb, ldc, at, bt, ct;
  float alpha, beta;
  const void *a, *b;
  void* c;
};
void run(void* ctx) {
  const Gemm& g = *(const Gemm*)ctx;
  for (int j = 0; j < g.n; ++j)
    for (int i = 0; i < g.m; ++i) {
      double acc = 0;
      for (int l = 0; l < g.k; ++l) {
        // op(A)[i, l], op(B)[l, j], column-major.
        float av = g.ta ? load(g.a, g.at, (size_t)i * g.lda + l) : load(g.a, g.at, (size_t)l * g.lda + i);
        float bv = g.tb ? load(g.b, g.bt, (size_t)l * g.ldb + j) : load(g.b, g.bt, (size_t)j * g.ldb + l);
        if (g.fast) {
          av = tf32(av);
          bv = tf32(bv);
        }
        acc += (double)av * (double)bv;
      }
      const size_t ci = (size_t)j * g.ldc + i;
      // beta == 0: C is not read (it may hold NaN), as cuBLAS specifies.
      const double prev = g.beta == 0.0f ? 0.0 : (double)g.beta * load(g.c, g.ct, ci);
      store(g.c, g.ct, ci, (float)(g.alpha * acc + prev));
    }
}
void drop(void* ctx) { delete (Gemm*)ctx; }
}  // namespace

API int cublasCreate_v2(void** h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  Handle* x = new Handle;
  g_handles.insert(x);
  *h = x;
  return CUBLAS_STATUS_SUCCESS;
}
API int cublasDestroy_v2(void* h) {
  if (!g_handles.erase((Handle*)h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete (Handle*)h;
  return CUBLAS_STATUS_SUCCESS;
}
API int cublasSetStream_v2(void* h, void* s) {
  if (!g_handles.count((Handle*)h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  ((Handle*)h)->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
API int cublasGetStream_v2(void* h, void** s) {
  if (!g_handles.count((Handle*)h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  *s = ((Handle*)h)->stream;
  return CUBLAS_STATUS_SUCCESS;
}
API int cublasSetMathMode(void* h, int) {
  return g_handles.count((Handle*)h) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
API int cublasSetWorkspace_v2(void* h, void*, size_t) {
  return g_handles.count((Handle*)h) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
API int cublasGemmEx(void* h, int transa, int transb, int m, int n, int k, const void* alpha,
                     const void* A, int atype, int lda, const void* B, int btype, int ldb,
                     const void* beta, void* C, int ctype, int ldc, int compute, int algo) {
  (void)algo;
  if (!g_handles.count((Handle*)h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || transa < 0 || transa > 1 || transb < 0 || transb > 1)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (compute != COMPUTE_32F && compute != COMPUTE_32F_FAST_TF32) return CUBLAS_STATUS_NOT_SUPPORTED;
  for (int t : {atype, btype, ctype})
    if (t != R_32F && t != R_16F && t != R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (atype != btype) return CUBLAS_STATUS_NOT_SUPPORTED;
  const int arows = transa ? k : m, brows = transb ? n : k;
  if (lda < std::max(1, arows) || ldb < std::max(1, brows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  // Every element the GEMM touches must lie in device memory.
  auto span = [](int rows, int cols, int ld, int t) {
    return ((size_t)(cols - 1) * ld + rows) * elem(t);
  };
  if (k > 0 && (!swiglu_emu_in_device((unsigned long long)A, span(arows, transa ? m : k, lda, atype)) ||
                !swiglu_emu_in_device((unsigned long long)B, span(brows, transb ? k : n, ldb, btype)))) {
    fprintf(stderr, "swiglu emulator cuBLAS: an operand lies outside device memory\n");
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  if (!swiglu_emu_in_device((unsigned long long)C, span(m, n, ldc, ctype))) {
    fprintf(stderr, "swiglu emulator cuBLAS: C lies outside device memory\n");
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  Gemm* g = new Gemm{transa == 1, transb == 1, compute == COMPUTE_32F_FAST_TF32 && atype == R_32F,
                     m, n, k, lda, ldb, ldc, atype, btype, ctype,
                     *(const float*)alpha, *(const float*)beta, A, B, C};
  return swiglu_emu_enqueue(((Handle*)h)->stream, run, g, drop) == 0
             ? CUBLAS_STATUS_SUCCESS
             : CUBLAS_STATUS_EXECUTION_FAILED;
}
