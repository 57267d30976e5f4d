// Fused gated feed-forward for Hopper (sm_90a): TMA + wgmma, warp-specialised.
// out[m,n] = act(x[m,:]*Wg[:,n] + bg[n]) * (x[m,:]*Wu[:,n] + bu[n])
//
// Kernels: fused_glu_wgmma_{nk,kn}_{bf16,f16}(tmap_x, tmap_wg, tmap_wu, GluParams p)
//   nk: w[n*K + k] (nn.Linear / checkpoint layout; a concatenated gate_up
//       [2N,K] tensor is two tensor maps, no copy); B is K-major.
//   kn: w[k*N + n]; B is N-major (wgmma transpose bit, see
//       glu_wgmma_desc_mn_sw128); the same tiling otherwise.
//
// Tiling (constants in glu_hopper_layout.cuh, mirrored by src/cuda/hopper.rs)
//   CTA tile     128 rows x 128 output columns, k-step 64
//   grid         persistent: glu_wgmma_grid() CTAs (<= one per SM), CTA b
//                takes tiles b, b + gridDim.x, ... in grouped order
//                (glu_tile_of: 16 m tiles per group)
//   B tile       128 gate rows then 128 up rows of the NK weights = the n256
//                operand of one wgmma m64n256k16 per k16 and consumer
//   threads      384 = 3 warpgroups:
//                  WG0  producer: setmaxnreg.dec 40, one thread issues TMA
//                  WG1  consumer rows 0..63,  setmaxnreg.inc 232
//                  WG2  consumer rows 64..127
//                each consumer holds 128 f32 accumulators: gate column c in
//                acc[i], up column c in acc[i + 64] (see glu_wgmma_acc_rc)
//   pipeline     kWgStages = 4 stages x 48 KiB, full[]/empty[] mbarriers;
//                consumers keep one wgmma group in flight and release the
//                previous stage when it retires
//   smem         x box [128][64] + Wg box [128][64] + Wu box [128][64], all
//                CU_TENSOR_MAP_SWIZZLE_128B, 1024-aligned (kWgSmemBytes,
//                dynamic; the launcher raises the limit)
//   epilogue     registers: + biases, act(gate)*up in f32, one rounding,
//                4-byte predicated stores; the activation is a template
//                parameter (one kernel body per activation, chosen once)
// Assumptions (checked by the Rust side): cc 9.0; K % 8 == 0 and N % 8 == 0
//   (TMA global strides are multiples of 16 B); x, w_gate, w_up, out 16-byte
//   aligned; biases 2-byte aligned, read as scalars. M, N, K tails: TMA
//   zero-fills out-of-range box elements (zero k contributes nothing, zero
//   rows/columns are never stored); stores are predicated. Tensor maps
//   (inner dimension first; 16-bit, swizzle 128B, OOB zero fill): x {K, M}
//   box {64, 128}; nk: Wg, Wu {K, N} box {64, 128}; kn: Wg, Wu {N, K} box
//   {64, 64}.
#include "glu_hopper.cuh"

namespace {

constexpr int kProducerRegs = 40;
constexpr int kConsumerRegs = 232;
static_assert(kProducerRegs * 128 + 2 * kConsumerRegs * 128 <= 65536, "register file");

template <typename T>
__device__ __forceinline__ float wg_bias(const T* b, int64_t n) {
  return b ? to_f32<T>(b[n]) : 0.0f;
}

// ACT is a template parameter: with the activation a run-time switch the
// 64 inlined copies per thread made the epilogue code far larger than the
// instruction cache and cost as much time as the main loop.
template <typename T, int LAYOUT, int ACT>
__device__ __forceinline__ void fused_glu_wgmma_body(const CUtensorMap* tm_x, const CUtensorMap* tm_g,
                                                     const CUtensorMap* tm_u, const GluParams& p) {
#if GLU_HOPPER
  extern __shared__ __align__(1024) unsigned char glu_wg_smem[];
  // Dynamic smem is only guaranteed 16-byte aligned: align the ring to 1024.
  const uint32_t raw = smem_u32(glu_wg_smem);
  const uint32_t ring = (raw + 1023u) & ~1023u;
  const uint32_t bars = ring + kWgStages * kWgStageBytes;
  auto full_bar = [&](int s) { return bars + 8u * (uint32_t)s; };
  auto empty_bar = [&](int s) { return bars + 8u * (uint32_t)(kWgStages + s); };
  auto stage_a = [&](int s) { return ring + (uint32_t)s * kWgStageBytes; };
  auto stage_b = [&](int s) { return ring + (uint32_t)s * kWgStageBytes + kWgABytes; };

  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t m_tiles = (M + kWgBM - 1) / kWgBM, n_tiles = (N + kWgBN - 1) / kWgBN;
  const int64_t num_tiles = m_tiles * n_tiles;
  const int k_tiles = (int)((K + kWgBK - 1) / kWgBK);

  const int tid = threadIdx.x;
  const int wg = tid / 128;

  if (tid == 0) {
    for (int s = 0; s < kWgStages; ++s) {
      mbar_init(full_bar(s), 1);       // the producer's arrive.expect_tx
      mbar_init(empty_bar(s), 8);      // one arrive per consumer warp
    }
    mbar_init_fence();
  }
  __syncthreads();

  // Both roles walk the same tiles (t = blockIdx.x, += gridDim.x) and the
  // same global k-tile counter `it`: stage it % kWgStages, phase parity
  // (it / kWgStages) & 1. The producer runs up to kWgStages k-tiles ahead,
  // also across tiles, so the next tile's loads overlap this tile's epilogue.
  if (wg == 0) {
    // ---- Producer -----------------------------------------------------------
    setmaxnreg_dec<kProducerRegs>();
    if (tid == 0) {
      tma_prefetch_desc(tm_x);
      tma_prefetch_desc(tm_g);
      tma_prefetch_desc(tm_u);
      int it = 0;
      for (int64_t t = blockIdx.x; t < num_tiles; t += gridDim.x) {
        const GluTile tile = glu_tile_of(t, m_tiles, n_tiles);
        const int32_t m0 = (int32_t)(tile.m * kWgBM), n0 = (int32_t)(tile.n * kWgBN);
        for (int kt = 0; kt < k_tiles; ++kt, ++it) {
          const int s = it % kWgStages;
          const int round = it / kWgStages;
          // Wait until the consumers released this stage's previous use.
          if (round > 0) mbar_wait(empty_bar(s), (uint32_t)(round - 1) & 1u);
          mbar_arrive_expect_tx(full_bar(s), kWgStageBytes);
          const int32_t k0 = kt * kWgBK;
          tma_load_2d(stage_a(s), tm_x, full_bar(s), k0, m0);
          if (LAYOUT == GLU_LAYOUT_NK) {  // boxes {64 k, 128 n}
            tma_load_2d(stage_b(s), tm_g, full_bar(s), k0, n0);
            tma_load_2d(stage_b(s) + kWgBHalfBytes, tm_u, full_bar(s), k0, n0);
          } else {  // KN: boxes {64 n, 64 k}, two per weight
            tma_load_2d(stage_b(s), tm_g, full_bar(s), n0, k0);
            tma_load_2d(stage_b(s) + kWgKnBoxBytes, tm_g, full_bar(s), n0 + 64, k0);
            tma_load_2d(stage_b(s) + 2 * kWgKnBoxBytes, tm_u, full_bar(s), n0, k0);
            tma_load_2d(stage_b(s) + 3 * kWgKnBoxBytes, tm_u, full_bar(s), n0 + 64, k0);
          }
        }
      }
    }
  } else {
    // ---- Consumers ----------------------------------------------------------
    setmaxnreg_inc<kConsumerRegs>();
    const int cw = wg - 1;                 // 0/1: rows 64*cw .. 64*cw+63 of the tile
    const uint32_t warp = (tid / 32) % 4;  // warp within the warpgroup
    const uint32_t lane = tid % 32;
    const T* bgp = static_cast<const T*>(p.b_gate);
    const T* bup = static_cast<const T*>(p.b_up);
    T* out = static_cast<T*>(p.out);
    const float beta = p.beta;

    int it = 0;
    for (int64_t t = blockIdx.x; t < num_tiles; t += gridDim.x) {
      const GluTile tile = glu_tile_of(t, m_tiles, n_tiles);
      const int64_t m0 = tile.m * kWgBM, n0 = tile.n * kWgBN;

      float acc[kWgAccRegs];
#pragma unroll
      for (int i = 0; i < kWgAccRegs; ++i) acc[i] = 0.0f;

      for (int kt = 0; kt < k_tiles; ++kt, ++it) {
        const int s = it % kWgStages;
        mbar_wait(full_bar(s), (uint32_t)(it / kWgStages) & 1u);
        const uint32_t a = stage_a(s) + (uint32_t)cw * (64u * 128u);
        const uint32_t b = stage_b(s);
        wgmma_fence();
#pragma unroll
        for (uint32_t kk = 0; kk < kWgBK / 16; ++kk)
          if (LAYOUT == GLU_LAYOUT_NK)
            wgmma_m64n256k16<T, 0>(acc, glu_wgmma_desc_k(a, kk), glu_wgmma_desc_k(b, kk));
          else
            wgmma_m64n256k16<T, 1>(acc, glu_wgmma_desc_k(a, kk), glu_wgmma_desc_mn_k(b, kk));
        wgmma_commit();
        // Keep this k-tile's group in flight; the previous one has retired,
        // so its stage can be refilled.
        wgmma_wait<1>();
        wgmma_fence_acc(acc);
        if (kt > 0 && lane == 0) mbar_arrive(empty_bar((it - 1) % kWgStages));
      }
      wgmma_wait<0>();
      wgmma_fence_acc(acc);
      if (lane == 0) mbar_arrive(empty_bar((it - 1) % kWgStages));  // this tile's last stage

      // ---- Epilogue ---------------------------------------------------------
      const int64_t row_base = m0 + 64 * cw;
#pragma unroll
      for (int j = 0; j < kWgBN / 8; ++j) {
        const GluRC rc = glu_wgmma_acc_rc(warp, lane, (uint32_t)(4 * j));
        const int64_t col = n0 + rc.col;  // even; col + 1 < N whenever col < N (N % 8 == 0)
        if (col >= N) continue;
        const float bg0 = wg_bias<T>(bgp, col), bg1 = wg_bias<T>(bgp, col + 1);
        const float bu0 = wg_bias<T>(bup, col), bu1 = wg_bias<T>(bup, col + 1);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t row = row_base + rc.row + 8 * h;
          if (row >= M) continue;
          const int i = 4 * j + 2 * h;
          const float v0 = wg_act<ACT>(acc[i] + bg0, beta) * (acc[i + kWgUpRegOffset] + bu0);
          const float v1 =
              wg_act<ACT>(acc[i + 1] + bg1, beta) * (acc[i + 1 + kWgUpRegOffset] + bu1);
          const uint32_t w = f32_to_bits16<T>(v0) | (f32_to_bits16<T>(v1) << 16);
          *reinterpret_cast<uint32_t*>(out + (row * N + col)) = w;
        }
      }
    }
  }
#else
  // Built for a target without wgmma/TMA: the launcher never selects this.
  __trap();
#endif
}

template <typename T, int LAYOUT>
__device__ __forceinline__ void fused_glu_wgmma_dispatch(const CUtensorMap* tm_x, const CUtensorMap* tm_g,
                                                         const CUtensorMap* tm_u, const GluParams& p) {
  switch (p.act) {  // uniform over the grid
    case GLU_ACT_SILU: fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_SILU>(tm_x, tm_g, tm_u, p); break;
    case GLU_ACT_SWISH: fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_SWISH>(tm_x, tm_g, tm_u, p); break;
    case GLU_ACT_SIGMOID: fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_SIGMOID>(tm_x, tm_g, tm_u, p); break;
    case GLU_ACT_GELU_ERF: fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_GELU_ERF>(tm_x, tm_g, tm_u, p); break;
    case GLU_ACT_GELU_TANH: fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_GELU_TANH>(tm_x, tm_g, tm_u, p); break;
    case GLU_ACT_RELU: fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_RELU>(tm_x, tm_g, tm_u, p); break;
    default: fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_IDENTITY>(tm_x, tm_g, tm_u, p); break;
  }
}

}  // namespace

#define GLU_WGMMA_KERNEL(NAME, T, LAYOUT)                                                          \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                              \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, GluParams p) {                      \
    fused_glu_wgmma_dispatch<T, LAYOUT>(&tmap_x, &tmap_wg, &tmap_wu, p);                           \
  }

GLU_WGMMA_KERNEL(fused_glu_wgmma_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_WGMMA_KERNEL(fused_glu_wgmma_nk_f16, __half, GLU_LAYOUT_NK)
GLU_WGMMA_KERNEL(fused_glu_wgmma_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_WGMMA_KERNEL(fused_glu_wgmma_kn_f16, __half, GLU_LAYOUT_KN)
