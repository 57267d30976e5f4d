// Fused gated feed-forward on tensor cores (sm_80+: mma.sync, cp.async,
// ldmatrix). out[m,n] = act(x[m,:]*Wg[:,n] + bg[n]) * (x[m,:]*Wu[:,n] + bu[n])
//
// Kernels: fused_glu_mma_{kn,nk}_{bf16,f16}(GluParams p)
//
// Tiling
//   block tile   GLU_MMA_BM x GLU_MMA_BN = 128 x 64 of out (same columns of
//                gate and up), k-tile GLU_MMA_BK = 32
//   grid         x = ceil(N/64) column tiles, y = ceil(M/128) row tiles
//   threads      256 = 8 warps in a 4 (m) x 2 (n) grid; each warp owns a
//                32 x 32 sub-tile = 2 (m16) x 4 (n8) mma tiles, with TWO f32
//                accumulator sets (gate, up): 64 accumulators per thread
//   pipeline     GLU_MMA_STAGES = 4 stage cp.async ring (3 k-tiles in flight)
//   smem/stage   x [128][32] (8 KiB) + Wg tile (4 KiB) + Wu tile (4 KiB)
//                NK tile: [64 n][32 k]; KN tile: [32 k][64 n]
//                total 4 x 16 KiB = 64 KiB = GLU_MMA_SMEM_BYTES (dynamic;
//                the launcher must raise cudaFuncAttributeMaxDynamicSharedMemorySize)
//   swizzle      XOR, see glu_swizzle.cuh (conflict-free ldmatrix + cp.async)
//   operands     x: ldmatrix -> A (row); NK tile: ldmatrix -> B (col);
//                KN tile: ldmatrix.trans -> B (col). See glu_mma_frag.cuh.
// Assumptions (checked by the Rust side, which otherwise uses the SIMT kernel)
//   K % 8 == 0, N % 8 == 0, x / w_gate / w_up / out 16-byte aligned
//   (biases: 2-byte aligned, read as scalars). M, N, K any size otherwise;
//   all global offsets are int64. Out-of-range rows / cols / k of a tile are
//   zero-filled in smem (cp.async src-size 0, address clamped to the base);
//   stores are predicated. Zero-filled k contributes 0 to both dot products.
#include "glu_mma_frag.cuh"

static_assert(GLU_MMA_BM == 128 && GLU_MMA_BN == 64 && GLU_MMA_BK == 32,
              "tile loaders and the 4x2 warp grid assume 128x64x32");
static_assert(GLU_MMA_THREADS == 256, "8 warps");
static_assert(GLU_MMA_STAGES >= 2, "pipeline");

namespace {

constexpr int kBM = GLU_MMA_BM, kBN = GLU_MMA_BN, kBK = GLU_MMA_BK;
constexpr int kStages = GLU_MMA_STAGES;
constexpr uint32_t kABytes = kBM * kBK * 2;  // 8192
constexpr uint32_t kBBytes = kBN * kBK * 2;  // 4096 (either layout)
constexpr uint32_t kStageBytes = kABytes + 2 * kBBytes;
static_assert(kStages * kStageBytes == GLU_MMA_SMEM_BYTES, "smem size contract");

// Issue the cp.asyncs of k-tile starting at k0 into one stage (4 x 16 B per
// thread: 2 for x, 1 per weight). Predicated-off chunks are zero-filled.
template <typename T, int LAYOUT>
__device__ __forceinline__ void load_stage(uint32_t s_a, uint32_t s_bg, uint32_t s_bu,
                                           const T* __restrict__ x, const T* __restrict__ wg,
                                           const T* __restrict__ wu, int64_t M, int64_t N,
                                           int64_t K, int64_t m_blk, int64_t n_blk, int64_t k0,
                                           int tid) {
  // x tile: 128 rows x 4 chunks = 512 chunks.
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int id = tid + j * GLU_MMA_THREADS;
    const int r = id >> 2, c = id & 3;
    const int64_t gm = m_blk + r, gk = k0 + c * 8;
    const bool pred = (gm < M) && (gk < K);
    const T* src = pred ? x + (gm * K + gk) : x;
    cp_async_16_zfill(s_a + glu_swz64(r, c), src, pred);
  }
  if (LAYOUT == GLU_LAYOUT_NK) {
    // [64 n][32 k]: 64 rows x 4 chunks = 256 chunks per weight.
    const int r = tid >> 2, c = tid & 3;
    const int64_t gn = n_blk + r, gk = k0 + c * 8;
    const bool pred = (gn < N) && (gk < K);
    const int64_t off = pred ? gn * K + gk : 0;
    cp_async_16_zfill(s_bg + glu_swz64(r, c), wg + off, pred);
    cp_async_16_zfill(s_bu + glu_swz64(r, c), wu + off, pred);
  } else {
    // [32 k][64 n]: 32 rows x 8 chunks = 256 chunks per weight.
    const int r = tid >> 3, c = tid & 7;
    const int64_t gk = k0 + r, gn = n_blk + c * 8;
    const bool pred = (gk < K) && (gn < N);
    const int64_t off = pred ? gk * N + gn : 0;
    cp_async_16_zfill(s_bg + glu_swz128(r, c), wg + off, pred);
    cp_async_16_zfill(s_bu + glu_swz128(r, c), wu + off, pred);
  }
}

template <typename T>
__device__ __forceinline__ float load_bias(const T* b, int64_t n) {
  return b ? to_f32<T>(b[n]) : 0.0f;
}

template <typename T, int LAYOUT>
__device__ __forceinline__ void fused_glu_mma_body(const GluParams& p) {
  extern __shared__ __align__(128) unsigned char glu_mma_smem[];

  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ wg = static_cast<const T*>(p.w_gate);
  const T* __restrict__ wu = static_cast<const T*>(p.w_up);
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t m_blk = (int64_t)blockIdx.y * kBM;
  const int64_t n_blk = (int64_t)blockIdx.x * kBN;

  const int tid = threadIdx.x;
  const uint32_t lane = tid & 31;
  const uint32_t warp = tid >> 5;
  const uint32_t warp_m = warp >> 1;  // 0..3 -> rows warp_m*32
  const uint32_t warp_n = warp & 1;   // 0..1 -> cols warp_n*32

  const uint32_t smem = smem_u32(glu_mma_smem);

  float acc_g[2][4][4];
  float acc_u[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc_g[i][j][e] = 0.0f;
        acc_u[i][j][e] = 0.0f;
      }

  const int64_t k_tiles = (K + kBK - 1) / kBK;

  // Prologue: k-tiles 0 .. kStages-2. One commit group per slot, even when
  // empty, so the wait_group arithmetic below is uniform.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) {
      const uint32_t st = smem + s * kStageBytes;
      load_stage<T, LAYOUT>(st, st + kABytes, st + kABytes + kBBytes, x, wg, wu, M, N, K, m_blk,
                            n_blk, (int64_t)s * kBK, tid);
    }
    cp_async_commit();
  }

  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    // Groups committed so far: (kStages-1) + kt. Allowing kStages-2 pending
    // means groups 0..kt are complete: k-tile kt has landed (for this thread);
    // the barrier publishes every thread's copies and also guarantees that
    // all warps finished reading stage (kt-1) % kStages, refilled below.
    cp_async_wait<kStages - 2>();
    __syncthreads();

    {
      const int64_t pf = kt + (kStages - 1);
      if (pf < k_tiles) {
        const uint32_t st = smem + (uint32_t)(pf % kStages) * kStageBytes;
        load_stage<T, LAYOUT>(st, st + kABytes, st + kABytes + kBBytes, x, wg, wu, M, N, K,
                              m_blk, n_blk, pf * kBK, tid);
      }
      cp_async_commit();
    }

    const uint32_t st = smem + (uint32_t)(kt % kStages) * kStageBytes;
    const uint32_t s_a = st, s_bg = st + kABytes, s_bu = st + kABytes + kBBytes;

#pragma unroll
    for (uint32_t ks = 0; ks < kBK / 16; ++ks) {
      uint32_t a[2][4];
#pragma unroll
      for (uint32_t mi = 0; mi < 2; ++mi)
        glu_load_a_frag(a[mi], s_a, warp_m * 32 + mi * 16, ks, lane);

      uint32_t bg[4][2], bu[4][2];
#pragma unroll
      for (uint32_t nj = 0; nj < 2; ++nj) {
        uint32_t t[2][2];
        glu_load_b_frag<LAYOUT>(t, s_bg, warp_n * 32 + nj * 16, ks, lane);
        bg[nj * 2][0] = t[0][0]; bg[nj * 2][1] = t[0][1];
        bg[nj * 2 + 1][0] = t[1][0]; bg[nj * 2 + 1][1] = t[1][1];
        glu_load_b_frag<LAYOUT>(t, s_bu, warp_n * 32 + nj * 16, ks, lane);
        bu[nj * 2][0] = t[0][0]; bu[nj * 2][1] = t[0][1];
        bu[nj * 2 + 1][0] = t[1][0]; bu[nj * 2 + 1][1] = t[1][1];
      }

#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          mma_16816<T>(acc_g[mi][ni], a[mi], bg[ni][0], bg[ni][1]);
          mma_16816<T>(acc_u[mi][ni], a[mi], bu[ni][0], bu[ni][1]);
        }
    }
  }
  cp_async_wait<0>();  // only empty groups can remain; keep the ring clean

  // Epilogue. C fragment: c0,c1 at (g, 2t+{0,1}), c2,c3 at (g+8, 2t+{0,1}).
  const T* bgp = static_cast<const T*>(p.b_gate);
  const T* bup = static_cast<const T*>(p.b_up);
  T* out = static_cast<T*>(p.out);
  const int act = p.act;
  const float beta = p.beta;
  const uint32_t g = lane >> 2, t4 = lane & 3;
  const bool pair_ok = (N & 1) == 0;  // always true under N % 8 == 0

#pragma unroll
  for (int ni = 0; ni < 4; ++ni) {
    const int64_t col = n_blk + warp_n * 32 + ni * 8 + t4 * 2;
    if (col >= N) continue;
    const bool has1 = col + 1 < N;
    const float bg0 = load_bias<T>(bgp, col), bu0 = load_bias<T>(bup, col);
    const float bg1 = has1 ? load_bias<T>(bgp, col + 1) : 0.0f;
    const float bu1 = has1 ? load_bias<T>(bup, col + 1) : 0.0f;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m_blk + warp_m * 32 + mi * 16 + g + h * 8;
        if (row >= M) continue;
        const float v0 = glu_act(acc_g[mi][ni][2 * h] + bg0, act, beta) *
                         (acc_u[mi][ni][2 * h] + bu0);
        const float v1 = glu_act(acc_g[mi][ni][2 * h + 1] + bg1, act, beta) *
                         (acc_u[mi][ni][2 * h + 1] + bu1);
        T* dst = out + (row * N + col);
        if (pair_ok && has1) {
          const uint32_t w = f32_to_bits16<T>(v0) | (f32_to_bits16<T>(v1) << 16);
          *reinterpret_cast<uint32_t*>(dst) = w;  // 4-byte aligned: N, col even
        } else {
          dst[0] = from_f32<T>(v0);
          if (has1) dst[1] = from_f32<T>(v1);
        }
      }
  }
}

}  // namespace

#define GLU_MMA_KERNEL(NAME, T, LAYOUT)                                     \
  extern "C" __global__ void __launch_bounds__(GLU_MMA_THREADS) NAME(GluParams p) { \
    fused_glu_mma_body<T, LAYOUT>(p);                                       \
  }

GLU_MMA_KERNEL(fused_glu_mma_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_MMA_KERNEL(fused_glu_mma_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_MMA_KERNEL(fused_glu_mma_kn_f16, __half, GLU_LAYOUT_KN)
GLU_MMA_KERNEL(fused_glu_mma_nk_f16, __half, GLU_LAYOUT_NK)
