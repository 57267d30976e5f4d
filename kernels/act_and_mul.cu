// Elementwise GLU kernels on GluEltParams (semantics in glu_params.cuh):
//   act_and_mul_{f32,f16,bf16} : out0 = act(a + bias_a) * (b + bias_b)
//   act_inplace_{f32,f16,bf16} : out0 = act(a + bias_a)       (out0 may == a)
//   mul_bias_{f32,f16,bf16}    : out0 = a * (b + bias_b)      (out0 may == a or b)
//   glu_bwd_{f32,f16,bf16}     : g = a, u = b, d = c (biases ignored: g and u
//                                already include them)
//                                out0 = d * u * act'(g)  (dGate, dtype T)
//                                out1 = d * act(g)       (dUp,   dtype T)
//   act_bwd_{f32,f16,bf16}     : out0 = b * act'(a)   (biases ignored: the
//                                backward of act alone, as an eager
//                                framework runs it; TrainingKernels::Eager)
//   narrow_{f16,bf16}          : out0 (T) = round(a), a is **f32** (the one
//                                rounding of a sum accumulated in f32, e.g.
//                                dX = dG·Wgᵀ + dU·Wuᵀ in 16-bit gradients)
// Element (r, c) of operand X lives at X[r * ld_X + c]; null biases mean 0.
// Launch: GLU_ELT_THREADS threads per block, any 1-D grid (grid-stride loop).
// Arithmetic in f32, one rounding per output. In-place use is fine as long
// as an aliased output has the same ld as the input it aliases (each element
// is read and written by the same thread), so no __restrict__ here.
// Vector path (16-byte loads/stores) is chosen once per launch when n, every
// used ld and every used pointer allow it; otherwise the scalar path runs.
#include "glu_common.cuh"

namespace {

enum EltOp {
  OP_ACT_AND_MUL = 0,
  OP_ACT_INPLACE = 1,
  OP_MUL_BIAS = 2,
  OP_GLU_BWD = 3,
  OP_ACT_BWD = 4
};

template <int OP> struct EltUses {
  static constexpr bool b = OP != OP_ACT_INPLACE;
  static constexpr bool c = OP == OP_GLU_BWD;
  static constexpr bool bias_a = OP == OP_ACT_AND_MUL || OP == OP_ACT_INPLACE;
  static constexpr bool bias_b = OP == OP_ACT_AND_MUL || OP == OP_MUL_BIAS;
  static constexpr bool out1 = OP == OP_GLU_BWD;
};

template <int OP>
__device__ __forceinline__ void elt_compute(float a, float b, float c, float ba, float bb,
                                            int act, float beta, float& o0, float& o1) {
  if (OP == OP_ACT_AND_MUL) {
    o0 = glu_act(a + ba, act, beta) * (b + bb);
  } else if (OP == OP_ACT_INPLACE) {
    o0 = glu_act(a + ba, act, beta);
  } else if (OP == OP_MUL_BIAS) {
    o0 = a * (b + bb);
  } else if (OP == OP_GLU_BWD) {
    o0 = c * b * glu_act_grad(a, act, beta);
    o1 = c * glu_act(a, act, beta);
  } else {
    o0 = b * glu_act_grad(a, act, beta);
  }
}

template <typename T, int OP>
__device__ __forceinline__ bool elt_can_vectorize(const GluEltParams& p) {
  using U = EltUses<OP>;
  constexpr int V = GluVec<T>::N;
  bool ok = (p.n % V == 0) && (p.ld_a % V == 0) && (p.ld_out0 % V == 0) && glu_aligned16(p.a) &&
            glu_aligned16(p.out0);
  if (U::b) ok = ok && (p.ld_b % V == 0) && glu_aligned16(p.b);
  if (U::c) ok = ok && (p.ld_c % V == 0) && glu_aligned16(p.c);
  if (U::out1) ok = ok && (p.ld_out1 % V == 0) && glu_aligned16(p.out1);
  if (U::bias_a && p.bias_a) ok = ok && glu_aligned16(p.bias_a);
  if (U::bias_b && p.bias_b) ok = ok && glu_aligned16(p.bias_b);
  return ok;
}

template <typename T, int OP>
__device__ __forceinline__ void elt_body(const GluEltParams& p) {
  using U = EltUses<OP>;
  constexpr int V = GluVec<T>::N;
  const T* A = static_cast<const T*>(p.a);
  const T* B = static_cast<const T*>(p.b);
  const T* C = static_cast<const T*>(p.c);
  const T* BA = static_cast<const T*>(p.bias_a);
  const T* BB = static_cast<const T*>(p.bias_b);
  T* O0 = static_cast<T*>(p.out0);
  T* O1 = static_cast<T*>(p.out1);
  const int64_t rows = p.rows, n = p.n;
  const int act = p.act;
  const float beta = p.beta;
  if (rows <= 0 || n <= 0) return;

  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;

  if (elt_can_vectorize<T, OP>(p)) {
    const int64_t nv = n / V;
    const int64_t total = rows * nv;
    for (; i < total; i += stride) {
      const int64_t r = i / nv;
      const int64_t c = (i - r * nv) * V;
      float a[V], b[V], cc[V], ba[V], bb[V], o0[V], o1[V];
      load16_f32<T>(A + (r * p.ld_a + c), a);
#pragma unroll
      for (int e = 0; e < V; ++e) { b[e] = 0.f; cc[e] = 0.f; ba[e] = 0.f; bb[e] = 0.f; o1[e] = 0.f; }
      if (U::b) load16_f32<T>(B + (r * p.ld_b + c), b);
      if (U::c) load16_f32<T>(C + (r * p.ld_c + c), cc);
      if (U::bias_a && BA) load16_f32<T>(BA + c, ba);
      if (U::bias_b && BB) load16_f32<T>(BB + c, bb);
#pragma unroll
      for (int e = 0; e < V; ++e)
        elt_compute<OP>(a[e], b[e], cc[e], ba[e], bb[e], act, beta, o0[e], o1[e]);
      store16_f32<T>(O0 + (r * p.ld_out0 + c), o0);
      if (U::out1) store16_f32<T>(O1 + (r * p.ld_out1 + c), o1);
    }
  } else {
    const int64_t total = rows * n;
    for (; i < total; i += stride) {
      const int64_t r = i / n;
      const int64_t c = i - r * n;
      const float a = to_f32<T>(A[r * p.ld_a + c]);
      const float b = U::b ? to_f32<T>(B[r * p.ld_b + c]) : 0.f;
      const float cc = U::c ? to_f32<T>(C[r * p.ld_c + c]) : 0.f;
      const float ba = (U::bias_a && BA) ? to_f32<T>(BA[c]) : 0.f;
      const float bb = (U::bias_b && BB) ? to_f32<T>(BB[c]) : 0.f;
      float o0, o1 = 0.f;
      elt_compute<OP>(a, b, cc, ba, bb, act, beta, o0, o1);
      O0[r * p.ld_out0 + c] = from_f32<T>(o0);
      if (U::out1) O1[r * p.ld_out1 + c] = from_f32<T>(o1);
    }
  }
}

// narrow: out0[r, c] (T) = a[r, c] (f32), rounded to nearest even once.
template <typename T>
__device__ __forceinline__ void narrow_body(const GluEltParams& p) {
  const float* A = static_cast<const float*>(p.a);
  T* O0 = static_cast<T*>(p.out0);
  const int64_t rows = p.rows, n = p.n;
  if (rows <= 0 || n <= 0) return;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  const int64_t total = rows * n;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / n;
    const int64_t c = i - r * n;
    O0[r * p.ld_out0 + c] = from_f32<T>(A[r * p.ld_a + c]);
  }
}

}  // namespace

#define GLU_NARROW_KERNEL(NAME, T)                                                    \
  extern "C" __global__ void __launch_bounds__(GLU_ELT_THREADS) NAME(GluEltParams p) { \
    narrow_body<T>(p);                                                                \
  } \
  GLU_EMU_KERNEL(NAME, false, 1)
GLU_NARROW_KERNEL(narrow_f16, __half)
GLU_NARROW_KERNEL(narrow_bf16, __nv_bfloat16)

#define GLU_ELT_KERNEL(NAME, T, OP)                                                   \
  extern "C" __global__ void __launch_bounds__(GLU_ELT_THREADS) NAME(GluEltParams p) { \
    elt_body<T, OP>(p);                                                               \
  } \
  GLU_EMU_KERNEL(NAME, false, 1)

GLU_ELT_KERNEL(act_and_mul_f32, float, OP_ACT_AND_MUL)
GLU_ELT_KERNEL(act_and_mul_f16, __half, OP_ACT_AND_MUL)
GLU_ELT_KERNEL(act_and_mul_bf16, __nv_bfloat16, OP_ACT_AND_MUL)
GLU_ELT_KERNEL(act_inplace_f32, float, OP_ACT_INPLACE)
GLU_ELT_KERNEL(act_inplace_f16, __half, OP_ACT_INPLACE)
GLU_ELT_KERNEL(act_inplace_bf16, __nv_bfloat16, OP_ACT_INPLACE)
GLU_ELT_KERNEL(mul_bias_f32, float, OP_MUL_BIAS)
GLU_ELT_KERNEL(mul_bias_f16, __half, OP_MUL_BIAS)
GLU_ELT_KERNEL(mul_bias_bf16, __nv_bfloat16, OP_MUL_BIAS)
GLU_ELT_KERNEL(glu_bwd_f32, float, OP_GLU_BWD)
GLU_ELT_KERNEL(glu_bwd_f16, __half, OP_GLU_BWD)
GLU_ELT_KERNEL(glu_bwd_bf16, __nv_bfloat16, OP_GLU_BWD)
GLU_ELT_KERNEL(act_bwd_f32, float, OP_ACT_BWD)
GLU_ELT_KERNEL(act_bwd_f16, __half, OP_ACT_BWD)
GLU_ELT_KERNEL(act_bwd_bf16, __nv_bfloat16, OP_ACT_BWD)
