// Generic fused GLU on CUDA cores, exact f32 arithmetic (fmaf, no TF32),
// any dtype, any alignment, any M/N/K:
//   out[m,n] = act(x[m,:]*Wg[:,n] + bg[n]) * (x[m,:]*Wu[:,n] + bu[n])
// Kernels: fused_glu_simt_{kn,nk}_{f32,f16,bf16}(GluParams p)
//
// Tiling
//   block tile  GLU_SIMT_BM x GLU_SIMT_BN = 64 x 64 of out, k-block 16
//   grid        x = ceil(N/64), y = ceil(M/64); GLU_SIMT_THREADS = 256 threads
//   thread      tx = tid % 16, ty = tid / 16 computes rows ty + 16*i and
//               cols tx + 16*j (i, j < 4) of both gate and up (32 f32 acc).
//               Strided ownership keeps smem reads conflict-free / broadcast
//               and output stores coalesced.
//   smem        static, f32: xs[16][64+1], gs[16][64+1], us[16][64+1]
//               (k-major, padded), ~12.5 KiB
//   pipeline    the next k-block is loaded into registers (converted to f32)
//               while the current one is consumed from smem.
// Loads are scalar (no alignment assumption) and bounds-checked (out of range
// -> 0, no out-of-bounds address is formed); stores are bounds-checked.
// All global offsets are int64. Summation order: k ascending, one fmaf each.
#include "glu_common.cuh"

static_assert(GLU_SIMT_BM == 64 && GLU_SIMT_BN == 64 && GLU_SIMT_THREADS == 256,
              "fused_glu_simt assumes a 64x64 tile and 256 threads");

namespace {

constexpr int kSBM = GLU_SIMT_BM, kSBN = GLU_SIMT_BN, kSBK = 16;
constexpr int kPad = 1;
// Elements per thread per k-block: 64*16/256 = 4 for each of x, Wg, Wu.
constexpr int kPer = kSBM * kSBK / GLU_SIMT_THREADS;
static_assert(kPer == 4 && kSBN * kSBK / GLU_SIMT_THREADS == 4, "load mapping");

template <typename T, int LAYOUT>
__device__ __forceinline__ void simt_load(float (&rx)[kPer], float (&rg)[kPer],
                                          float (&ru)[kPer], const T* x, const T* wg,
                                          const T* wu, int64_t M, int64_t N, int64_t K,
                                          int64_t m_blk, int64_t n_blk, int64_t k0, int tid) {
#pragma unroll
  for (int q = 0; q < kPer; ++q) {
    const int e = tid + q * GLU_SIMT_THREADS;
    // x: kk fastest (row-major x is contiguous along k).
    const int kk = e % kSBK, mm = e / kSBK;
    const int64_t gm = m_blk + mm, gk = k0 + kk;
    rx[q] = (gm < M && gk < K) ? to_f32<T>(x[gm * K + gk]) : 0.0f;
  }
#pragma unroll
  for (int q = 0; q < kPer; ++q) {
    const int e = tid + q * GLU_SIMT_THREADS;
    int kk, nn;
    if (LAYOUT == GLU_LAYOUT_KN) {  // w[k*N + n]: n fastest
      nn = e % kSBN; kk = e / kSBN;
    } else {                        // w[n*K + k]: k fastest
      kk = e % kSBK; nn = e / kSBK;
    }
    const int64_t gk = k0 + kk, gn = n_blk + nn;
    const bool ok = gk < K && gn < N;
    const int64_t off = (LAYOUT == GLU_LAYOUT_KN) ? gk * N + gn : gn * K + gk;
    rg[q] = ok ? to_f32<T>(wg[off]) : 0.0f;
    ru[q] = ok ? to_f32<T>(wu[off]) : 0.0f;
  }
}

template <typename T, int LAYOUT>
__device__ __forceinline__ void fused_glu_simt_body(const GluParams& p) {
  __shared__ float xs[kSBK][kSBM + kPad];
  __shared__ float gs[kSBK][kSBN + kPad];
  __shared__ float us[kSBK][kSBN + kPad];

  const T* x = static_cast<const T*>(p.x);
  const T* wg = static_cast<const T*>(p.w_gate);
  const T* wu = static_cast<const T*>(p.w_up);
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t m_blk = (int64_t)blockIdx.y * kSBM;
  const int64_t n_blk = (int64_t)blockIdx.x * kSBN;
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;

  float acc_g[4][4], acc_u[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      acc_g[i][j] = 0.0f;
      acc_u[i][j] = 0.0f;
    }

  const int64_t k_tiles = (K + kSBK - 1) / kSBK;
  float rx[kPer], rg[kPer], ru[kPer];
  if (k_tiles > 0) simt_load<T, LAYOUT>(rx, rg, ru, x, wg, wu, M, N, K, m_blk, n_blk, 0, tid);

  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    __syncthreads();  // previous k-block fully consumed
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
      const int e = tid + q * GLU_SIMT_THREADS;
      xs[e % kSBK][e / kSBK] = rx[q];
      if (LAYOUT == GLU_LAYOUT_KN) {
        gs[e / kSBN][e % kSBN] = rg[q];
        us[e / kSBN][e % kSBN] = ru[q];
      } else {
        gs[e % kSBK][e / kSBK] = rg[q];
        us[e % kSBK][e / kSBK] = ru[q];
      }
    }
    __syncthreads();
    if (kt + 1 < k_tiles)
      simt_load<T, LAYOUT>(rx, rg, ru, x, wg, wu, M, N, K, m_blk, n_blk, (kt + 1) * kSBK, tid);

#pragma unroll
    for (int k = 0; k < kSBK; ++k) {
      float xv[4], gv[4], uv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) xv[i] = xs[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        gv[j] = gs[k][tx + 16 * j];
        uv[j] = us[k][tx + 16 * j];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          acc_g[i][j] = fmaf(xv[i], gv[j], acc_g[i][j]);
          acc_u[i][j] = fmaf(xv[i], uv[j], acc_u[i][j]);
        }
    }
  }

  const T* bgp = static_cast<const T*>(p.b_gate);
  const T* bup = static_cast<const T*>(p.b_up);
  T* out = static_cast<T*>(p.out);
  const int act = p.act;
  const float beta = p.beta;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int64_t col = n_blk + tx + 16 * j;
    if (col >= N) continue;
    const float bg = bgp ? to_f32<T>(bgp[col]) : 0.0f;
    const float bu = bup ? to_f32<T>(bup[col]) : 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t row = m_blk + ty + 16 * i;
      if (row >= M) continue;
      const float v = glu_act(acc_g[i][j] + bg, act, beta) * (acc_u[i][j] + bu);
      out[row * N + col] = from_f32<T>(v);
    }
  }
}

}  // namespace

#define GLU_SIMT_KERNEL(NAME, T, LAYOUT)                                                 \
  extern "C" __global__ void __launch_bounds__(GLU_SIMT_THREADS) NAME(GluParams p) { \
    fused_glu_simt_body<T, LAYOUT>(p);                                                 \
  } \
  GLU_EMU_KERNEL(NAME, false, 1)

GLU_SIMT_KERNEL(fused_glu_simt_kn_f32, float, GLU_LAYOUT_KN)
GLU_SIMT_KERNEL(fused_glu_simt_nk_f32, float, GLU_LAYOUT_NK)
GLU_SIMT_KERNEL(fused_glu_simt_kn_f16, __half, GLU_LAYOUT_KN)
GLU_SIMT_KERNEL(fused_glu_simt_nk_f16, __half, GLU_LAYOUT_NK)
GLU_SIMT_KERNEL(fused_glu_simt_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_SIMT_KERNEL(fused_glu_simt_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
