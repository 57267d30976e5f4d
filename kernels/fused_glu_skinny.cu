// Fused gated FFN for decode-sized M (1..64) on tensor cores (sm_80+).
// out[m,n] = act(x[m,:]*Wg[:,n] + bg[n]) * (x[m,:]*Wu[:,n] + bu[n])
//
// Kernels: fused_glu_skinny_{kn,nk}_{bf16,f16}_m{16,32,64}(GluParams, GluSkinnySplit)
//          fused_glu_skinny_sk_{kn,nk}_{bf16,f16}_m{16,32,64}(GluParams, GluSkinnyStreamK)
//   The same main loop on two schedules: split-K (below) and stream-K
//   (skinny_streamk_body; the schedule is described in glu_skinny.cuh).
//          fused_glu_skinny_rs_nk_{bf16,f16}_m{8,16}(GluParams, GluSkinnySplit)
//   Register streaming for M <= 16, NK weights (skinny_rs_body, at the end:
//   no shared-memory ring; its own main loop, the same split-K protocol).
//
// Regime: M <= 64 is bound by streaming the 2*N*K weights from HBM, so the
// design maximises weight bytes in flight per SM and wastes nothing else:
//   * block tile: all (padded) rows x GLU_SKINNY_BN = 64 columns of out (64
//     columns of gate AND of up: 2 x 8 KiB of weights per 64-deep k-tile);
//     grid.x = ceil(N/64) column tiles, grid.y = split-K slices.
//   * cp.async ring of STAGES (4..5) k-tiles of BK = 64: x [16*MT][64] +
//     Wg, Wu tiles (16 KiB); (STAGES-1) x 16 KiB of weights in flight per
//     block, 2-3 blocks per SM (smem 72..100 KiB, 128 threads).
//   * warps: WM along M x WK along K. Each warp runs mma.m16n8k16 for its
//     MTW = MT/WM m16 tiles x all 16 n8 tiles (8 gate + 8 up) on the k16
//     steps ks = wk, wk+WK, ... of each stage. Warps along K each hold a full
//     partial tile; they are reduced through shared memory at the end (fixed
//     order, deterministic). This reads every weight byte from smem exactly
//     WM times and every x byte once (no ldmatrix redundancy along N).
//       m16: MT=1, WM=1, WK=4, 4 stages, 3 blocks/SM  (64 f32 accumulators/thread)
//       m32: MT=2, WM=2, WK=2, 5 stages, 2 blocks/SM  (64)
//       m64: MT=4, WM=4, WK=1, 4 stages, 2 blocks/SM  (64)
//     (MTW = 2 variants with 128 accumulators measured 1.3-1.5x slower.)
//   * split-K across blocks (only when ceil(N/64) leaves most of the
//     2 x #SM block slots empty, see glu_skinny_plan): f32 partials go to a
//     workspace, the last block of each column tile (atomic ticket) reduces
//     the slices in order, applies bias + activation and stores: one launch,
//     deterministic, no memset of the workspace.
//   * tiles are 128-byte rows, XOR-swizzled (chunk ^ row & 7): conflict-free
//     cp.async stores and ldmatrix reads. x: [rows][k], NK weight: [n][k]
//     (ldmatrix -> B "col" fragment), KN weight: [k][n] (ldmatrix.trans).
// Preconditions (checked by src/cuda/skinny.rs): bf16/f16, 1 <= M <= 16*MT,
// K % 8 == 0, N % 8 == 0, x / w_gate / w_up / out 16-byte aligned (biases
// read as scalars). Tails: k >= K and n >= N chunks are zero-filled
// (cp.async src-size 0); x rows >= M are zeroed once and never loaded; only
// rows < M and columns < N are stored. All global offsets are int64.
#include "glu_common.cuh"
#include "glu_skinny.cuh"

namespace skinny {

// The production tile: 64 output columns, 64 k per stage (128-byte rows).
// skinny_body and its loaders take (BN, BK) as template parameters so that
// kernels/tests/skinny_selftest.cu can also build NK variants with longer
// per-row runs (BK = 128: 256-byte rows) and check and time them.
constexpr int kBN = GLU_SKINNY_BN;
constexpr int kBK = GLU_SKINNY_BK;
static_assert(kBN == 64 && kBK == 64, "the shipped kernels use 64 x 64 tiles of 128-byte rows");

__host__ __device__ constexpr int ilog2(int v) { return v <= 1 ? 0 : 1 + ilog2(v / 2); }

// Byte offset of 16-byte chunk `c` of row `r` in a tile of RB-byte rows,
// XOR-swizzled on the chunk's low 3 bits (chunk ^ row & 7): the 8 rows an
// ldmatrix phase reads at one chunk column, and the 8 chunks of a cp.async
// row, land in 8 distinct 16-byte bank groups.
template <uint32_t RB = 128>
__device__ __forceinline__ uint32_t swz(uint32_t r, uint32_t c) {
  static_assert(RB >= 128 && RB % 128 == 0, "rows of whole 128-byte lines");
  return r * RB + ((c ^ (r & 7u)) << 4);
}

// cp.async 16 B, L2 only, with a 256-byte L2 prefetch hint (the next k-tile
// of the same weight row is the adjacent 128 bytes). src-size 0 when !pred:
// nothing is read and the destination is zero-filled.
__device__ __forceinline__ void cp_async_16_pf(uint32_t dst, const void* src, bool pred) {
#if defined(GLU_EMU)
  emu::cp_async16(dst, src, pred);
#elif GLU_SM80
  int src_size = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_size)
               : "memory");
#endif
}

template <typename T, int LAYOUT, int MT, int THREADS, int BN = kBN, int BK = kBK>
__device__ __forceinline__ void load_stage(uint32_t s_x, uint32_t s_wg, uint32_t s_wu,
                                           const T* __restrict__ x, const T* __restrict__ wg,
                                           const T* __restrict__ wu, int64_t M, int64_t N,
                                           int64_t K, int64_t n_blk, int64_t k0, int64_t k_end,
                                           int tid) {
  // Rows of x and of NK tiles: BK k = BK / 8 chunks; rows of KN tiles:
  // BN n = BN / 8 chunks (both powers of two, >= 8).
  constexpr int kKC = BK / 8, kNC = BN / 8;
  static_assert((kKC & (kKC - 1)) == 0 && kKC >= 8, "BK: a power of two >= 64");
  static_assert((kNC & (kNC - 1)) == 0 && (LAYOUT == GLU_LAYOUT_NK || kNC >= 8),
                "BN: a power of two (>= 64 for KN tiles)");
  constexpr int kKCShift = ilog2(kKC);
  constexpr int kRowChunks = LAYOUT == GLU_LAYOUT_NK ? kKC : kNC;  // per weight row
  constexpr int kRowShift = ilog2(kRowChunks);
  constexpr uint32_t kXRB = BK * 2, kWRB = kRowChunks * 16;
  // x: rows < M only (padded rows were zeroed once), kKC chunks per row.
  constexpr int kXChunks = 16 * MT * kKC;
#pragma unroll
  for (int j = 0; j < (kXChunks + THREADS - 1) / THREADS; ++j) {
    const int id = tid + j * THREADS;
    const int r = id >> kKCShift, c = id & (kKC - 1);
    if ((kXChunks % THREADS == 0 || id < kXChunks) && r < M) {
      const int64_t gk = k0 + c * 8;
      const bool pred = gk < k_end;
      cp_async_16_zfill(s_x + swz<kXRB>(r, c), pred ? x + ((int64_t)r * K + gk) : x, pred);
    }
  }
  // Weights: BN x BK / 8 chunks per projection (512 for the 64 x 64 tile).
  constexpr int kWChunks = BN * BK / 8;
  static_assert(kWChunks % THREADS == 0, "weight chunks per thread");
#pragma unroll
  for (int j = 0; j < kWChunks / THREADS; ++j) {
    const int id = tid + j * THREADS;
    const int r = id >> kRowShift, c = id & (kRowChunks - 1);
    int64_t off;
    bool pred;
    if (LAYOUT == GLU_LAYOUT_NK) {  // [BN n][BK k]
      const int64_t gn = n_blk + r, gk = k0 + c * 8;
      pred = (gn < N) && (gk < k_end);
      off = gn * K + gk;
    } else {  // [BK k][BN n]
      const int64_t gk = k0 + r, gn = n_blk + c * 8;
      pred = (gk < k_end) && (gn < N);
      off = gk * N + gn;
    }
    off = pred ? off : 0;
    cp_async_16_pf(s_wg + swz<kWRB>(r, c), wg + off, pred);
    cp_async_16_pf(s_wu + swz<kWRB>(r, c), wu + off, pred);
  }
}

// B fragments of n8 tiles 2*nb and 2*nb+1 (columns 16*nb..16*nb+15 of the
// tile), k16 step ks: b[0..1] = tile 2nb (b0, b1), b[2..3] = tile 2nb+1.
template <int LAYOUT, int BN = kBN, int BK = kBK>
__device__ __forceinline__ void load_b(uint32_t (&b)[4], uint32_t tile, uint32_t nb, uint32_t ks,
                                       uint32_t lane) {
  if constexpr (LAYOUT == GLU_LAYOUT_NK) {
    // rows = n: matrices (n0-7,k0-7) (n0-7,k8-15) (n8-15,k0-7) (n8-15,k8-15)
    const uint32_t r = nb * 16u + (lane & 7u) + ((lane >> 4) << 3);
    const uint32_t c = ks * 2u + ((lane >> 3) & 1u);
    ldmatrix_x4(b, tile + swz<BK * 2>(r, c));
  } else {
    // rows = k, transposed: matrices (k0-7,n0-7) (k8-15,n0-7) (k0-7,n8-15) (k8-15,n8-15)
    const uint32_t r = ks * 16u + (lane & 7u) + (((lane >> 3) & 1u) << 3);
    const uint32_t c = nb * 2u + (lane >> 4);
    ldmatrix_x4_trans(b, tile + swz<BN * 2>(r, c));
  }
}

template <typename T>
__device__ __forceinline__ float bias_at(const T* b, int64_t n) {
  return b ? to_f32<T>(b[n]) : 0.0f;
}

template <typename T>
__device__ __forceinline__ void store_pair(T* out, int64_t idx, float v0, float v1) {
  // idx even, out 16-byte aligned: 4-byte aligned pair.
  *reinterpret_cast<uint32_t*>(out + idx) = f32_to_bits16<T>(v0) | (f32_to_bits16<T>(v1) << 16);
}

// The main loop of one (column tile, k range): x rows [0, M) against columns
// [n_blk, n_blk + BN) of Wg and Wu over k in [k_begin, k_end) (k_begin a
// multiple of BK), through the cp.async ring; then the intra-block split-K
// reduction. On return warps wk == 0 hold the sums in acc_g / acc_u
// (C-fragment layout, see below), every cp.async group has completed, and
// the ring's shared memory may be reused (it was used by the reduction, so
// the next call zeroes its padded x rows again).
template <typename T, int LAYOUT, int MTW, int WM, int WK, int STAGES, int BN, int BK>
__device__ __forceinline__ void skinny_accumulate(const GluParams& p, int64_t n_blk,
                                                  int64_t k_begin, int64_t k_end,
                                                  float (&acc_g)[MTW][BN / 8][4],
                                                  float (&acc_u)[MTW][BN / 8][4]) {
  constexpr int MT = MTW * WM;
  constexpr int kMPad = 16 * MT;
  constexpr int THREADS = 32 * WM * WK;
  constexpr uint32_t kXRB = BK * 2;                 // bytes per x row
  constexpr uint32_t kWBytes = BN * BK * 2;         // one projection's tile (8 KiB for 64 x 64)
  constexpr uint32_t kXBytes = kMPad * kXRB;
  constexpr uint32_t kStageBytes = kXBytes + 2 * kWBytes;
  constexpr int kNT = BN / 8;   // n8 tiles per projection (8 for BN = 64)
  constexpr int kKS = BK / 16;  // k16 steps per stage (4 for BK = 64)
  constexpr int kKC = BK / 8;   // 16-byte chunks per x row
  static_assert(kKS % WK == 0, "k16 steps per stage split evenly over WK warps");
  static_assert(kNT % 2 == 0, "B fragments come in pairs of n8 tiles");
  static_assert((WK & (WK - 1)) == 0, "WK power of two (tree reduction)");

  GLU_DYNAMIC_SMEM(skinny_smem, 128);
  const uint32_t smem = smem_u32(skinny_smem);

  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ wg = static_cast<const T*>(p.w_gate);
  const T* __restrict__ wu = static_cast<const T*>(p.w_up);
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t k_tiles = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;

  const int tid = threadIdx.x;
  const uint32_t lane = tid & 31;
  const uint32_t warp = tid >> 5;
  const uint32_t wm = warp / WK, wk = warp % WK;

  // Zero the padded x rows [M, kMPad) of every stage; they are never loaded.
  // (Published by the first __syncthreads of the main loop.)
  {
    const int pad_rows = kMPad - (int)M;
    const int total = STAGES * pad_rows * kKC;
    for (int i = tid; i < total; i += THREADS) {
      const int st = i / (pad_rows * kKC), rem = i % (pad_rows * kKC);
      const int r = (int)M + rem / kKC, c = rem % kKC;
      *reinterpret_cast<uint4*>(skinny_smem + st * kStageBytes + swz<kXRB>(r, c)) =
          make_uint4(0u, 0u, 0u, 0u);
    }
  }

#pragma unroll
  for (int i = 0; i < MTW; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc_g[i][j][e] = 0.0f;
        acc_u[i][j][e] = 0.0f;
      }

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < k_tiles) {
      const uint32_t st = smem + s * kStageBytes;
      load_stage<T, LAYOUT, MT, THREADS, BN, BK>(st, st + kXBytes, st + kXBytes + kWBytes, x, wg,
                                                 wu, M, N, K, n_blk, k_begin + (int64_t)s * BK,
                                                 k_end, tid);
    }
    cp_async_commit();
  }

  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    // Groups committed: (STAGES-1) + kt; <= STAGES-2 pending -> tile kt landed.
    // The barrier also retires all reads of stage (kt-1) % STAGES, refilled below.
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      const int64_t pf = kt + (STAGES - 1);
      if (pf < k_tiles) {
        const uint32_t st = smem + (uint32_t)(pf % STAGES) * kStageBytes;
        load_stage<T, LAYOUT, MT, THREADS, BN, BK>(st, st + kXBytes, st + kXBytes + kWBytes, x,
                                                   wg, wu, M, N, K, n_blk, k_begin + pf * BK,
                                                   k_end, tid);
      }
      cp_async_commit();
    }
    const uint32_t st = smem + (uint32_t)(kt % STAGES) * kStageBytes;
    const uint32_t s_x = st, s_wg = st + kXBytes, s_wu = st + kXBytes + kWBytes;
#pragma unroll
    for (uint32_t j = 0; j < (uint32_t)(kKS / WK); ++j) {
      const uint32_t ks = wk + j * WK;
      uint32_t a[MTW][4];
#pragma unroll
      for (int mt = 0; mt < MTW; ++mt) {
        const uint32_t r = (wm * MTW + mt) * 16u + (lane & 15u);
        ldmatrix_x4(a[mt], s_x + swz<kXRB>(r, ks * 2u + (lane >> 4)));
      }
#pragma unroll
      for (uint32_t nb = 0; nb < kNT / 2; ++nb) {
        uint32_t bg[4], bu[4];
        load_b<LAYOUT, BN, BK>(bg, s_wg, nb, ks, lane);
        load_b<LAYOUT, BN, BK>(bu, s_wu, nb, ks, lane);
#pragma unroll
        for (int mt = 0; mt < MTW; ++mt) {
          mma_16816<T>(acc_g[mt][2 * nb], a[mt], bg[0], bg[1]);
          mma_16816<T>(acc_g[mt][2 * nb + 1], a[mt], bg[2], bg[3]);
          mma_16816<T>(acc_u[mt][2 * nb], a[mt], bu[0], bu[1]);
          mma_16816<T>(acc_u[mt][2 * nb + 1], a[mt], bu[2], bu[3]);
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // pipeline smem is reused below

  // Intra-block split-K reduction (tree over wk, fixed order). Slot layout:
  // [slot][wm][q = (mt, proj, j)][lane] float4: conflict-free 16-byte accesses.
  constexpr int kQ = MTW * 2 * kNT;
  constexpr uint32_t kSlotBytes = (uint32_t)WM * kQ * 32 * 16;
  static_assert((WK / 2) * kSlotBytes <= STAGES * kStageBytes, "reduction fits in smem");
#pragma unroll
  for (int half = WK / 2; half >= 1; half /= 2) {
    if (wk >= (uint32_t)half && wk < 2u * half) {
      float4* dst = reinterpret_cast<float4*>(skinny_smem + (wk - half) * kSlotBytes) +
                    (size_t)wm * kQ * 32 + lane;
#pragma unroll
      for (int mt = 0; mt < MTW; ++mt)
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          dst[((mt * 2 + 0) * kNT + j) * 32] =
              make_float4(acc_g[mt][j][0], acc_g[mt][j][1], acc_g[mt][j][2], acc_g[mt][j][3]);
          dst[((mt * 2 + 1) * kNT + j) * 32] =
              make_float4(acc_u[mt][j][0], acc_u[mt][j][1], acc_u[mt][j][2], acc_u[mt][j][3]);
        }
    }
    __syncthreads();
    if (wk < (uint32_t)half) {
      const float4* src = reinterpret_cast<const float4*>(skinny_smem + wk * kSlotBytes) +
                          (size_t)wm * kQ * 32 + lane;
#pragma unroll
      for (int mt = 0; mt < MTW; ++mt)
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          const float4 g = src[((mt * 2 + 0) * kNT + j) * 32];
          const float4 u = src[((mt * 2 + 1) * kNT + j) * 32];
          acc_g[mt][j][0] += g.x; acc_g[mt][j][1] += g.y;
          acc_g[mt][j][2] += g.z; acc_g[mt][j][3] += g.w;
          acc_u[mt][j][0] += u.x; acc_u[mt][j][1] += u.y;
          acc_u[mt][j][2] += u.z; acc_u[mt][j][3] += u.w;
        }
    }
    __syncthreads();
  }
}

// Warps wk == 0 hold a block's sums in C-fragment layout: c0,c1 at
// (g, 2t+{0,1}), c2,c3 at (g+8, 2t+{0,1}) of each (mt, n8 tile j), where
// g = lane / 4, t = lane % 4, row = (wm * MTW + mt) * 16 + g (+ 8),
// column = n_blk + 8 j + 2t (+ 1).

// The epilogue's view of the parameters: out[row, col..col+1] =
// act(gate + bg) * (up + bu), rounded once (col even, both < N).
template <typename T>
struct Epilogue {
  const T* bg;
  const T* bu;
  T* out;
  int64_t m, n;
  int act;
  float beta;
  __device__ __forceinline__ explicit Epilogue(const GluParams& p)
      : bg(static_cast<const T*>(p.b_gate)),
        bu(static_cast<const T*>(p.b_up)),
        out(static_cast<T*>(p.out)),
        m(p.m),
        n(p.n),
        act(p.act),
        beta(p.beta) {}
  // One element (the register-streaming kernels): biases already added.
  __device__ __forceinline__ void store_one(int64_t row, int64_t col, float g, float u) const {
    out[row * n + col] = from_f32<T>(glu_act(g, act, beta) * u);
  }
  __device__ __forceinline__ void store(int64_t row, int64_t col, float g0, float g1, float u0,
                                        float u1, float bg0, float bg1, float bu0,
                                        float bu1) const {
    store_pair<T>(out, row * n + col, glu_act(g0 + bg0, act, beta) * (u0 + bu0),
                  glu_act(g1 + bg1, act, beta) * (u1 + bu1));
  }
};

// Rows < M and columns < N of the tile at n_blk from the block's sums
// (called by warps wk == 0).
template <typename T, int MTW, int kNT>
__device__ __forceinline__ void store_direct(const GluParams& p, int64_t n_blk, uint32_t wm,
                                             uint32_t lane, const float (&acc_g)[MTW][kNT][4],
                                             const float (&acc_u)[MTW][kNT][4]) {
  const Epilogue<T> e(p);
  const uint32_t g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
    const int64_t col = n_blk + j * 8 + t4 * 2;  // even; N % 8 == 0 -> col+1 < N too
    if (col >= e.n) continue;
    const float bg0 = bias_at<T>(e.bg, col), bg1 = bias_at<T>(e.bg, col + 1);
    const float bu0 = bias_at<T>(e.bu, col), bu1 = bias_at<T>(e.bu, col + 1);
#pragma unroll
    for (int mt = 0; mt < MTW; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = (int64_t)(wm * MTW + mt) * 16 + g + h * 8;
        if (row >= e.m) continue;
        e.store(row, col, acc_g[mt][j][2 * h], acc_g[mt][j][2 * h + 1], acc_u[mt][j][2 * h],
                acc_u[mt][j][2 * h + 1], bg0, bg1, bu0, bu1);
      }
  }
}

// Where a block's f32 partial sums of one tile go: gate (row, col) of
// contributor slot s at at(s, row, col), up at at(s, row, col) + up_off.
//   split-K:  ws[s][M][2N] by global column:  {ws, 2N, 0, N, M}
//   stream-K: ws[slot][M][2BN] by tile column: {ws, 2BN, n_blk, BN, M}
struct PartialMap {
  float* ws;
  int64_t row_stride, col0, up_off, m;
  __device__ __forceinline__ float* at(int64_t s, int64_t row, int64_t col) const {
    return ws + (s * m + row) * row_stride + (col - col0);
  }
};

// Warps wk == 0: the block's partial sums of the tile at n_blk into slot s.
template <int MTW, int kNT>
__device__ __forceinline__ void store_partial(const PartialMap& map, int64_t s, int64_t n_blk,
                                              int64_t N, uint32_t wm, uint32_t lane,
                                              const float (&acc_g)[MTW][kNT][4],
                                              const float (&acc_u)[MTW][kNT][4]) {
  const uint32_t g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
    const int64_t col = n_blk + j * 8 + t4 * 2;
    if (col >= N) continue;
#pragma unroll
    for (int mt = 0; mt < MTW; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = (int64_t)(wm * MTW + mt) * 16 + g + h * 8;
        if (row >= map.m) continue;
        float* base = map.at(s, row, col);
        __stcg(reinterpret_cast<float2*>(base),
               make_float2(acc_g[mt][j][2 * h], acc_g[mt][j][2 * h + 1]));
        __stcg(reinterpret_cast<float2*>(base + map.up_off),
               make_float2(acc_u[mt][j][2 * h], acc_u[mt][j][2 * h + 1]));
      }
  }
}

// After store_partial (all threads): publish, take a ticket on *counter;
// true in every thread of the block that arrives `contributors`-th, after an
// acquire fence, so that every contributor's partial is visible to it.
__device__ __forceinline__ bool take_ticket(unsigned int* counter, unsigned int contributors) {
  __threadfence();
  __syncthreads();
  __shared__ unsigned int s_last;
  if (threadIdx.x == 0) {
    const unsigned int prev = atomicAdd(counter, 1u);
    s_last = (prev == contributors - 1u) ? 1u : 0u;
  }
  __syncthreads();
  if (s_last == 0u) return false;
  __threadfence();  // acquire: every contributor's partial is visible
  return true;
}

// The last contributor of the tile at n_blk: adds slots slot_of(0..count-1)
// in that order, applies bias and activation, stores, resets *counter.
template <typename T, int BN, int THREADS, typename SlotOf>
__device__ __forceinline__ void reduce_store(const GluParams& p, const PartialMap& map,
                                             int64_t n_blk, int64_t count, SlotOf slot_of,
                                             unsigned int* counter) {
  const Epilogue<T> e(p);
  const int64_t cols = min((int64_t)BN, e.n - n_blk);  // multiple of 8
  const int64_t pairs = e.m * (cols / 2);
  for (int64_t q = threadIdx.x; q < pairs; q += THREADS) {
    const int64_t row = q / (cols / 2);
    const int64_t col = n_blk + 2 * (q % (cols / 2));
    float g0 = 0.f, g1 = 0.f, u0 = 0.f, u1 = 0.f;
    for (int64_t s = 0; s < count; ++s) {
      const float* base = map.at(slot_of(s), row, col);
      const float2 gv = __ldcg(reinterpret_cast<const float2*>(base));
      const float2 uv = __ldcg(reinterpret_cast<const float2*>(base + map.up_off));
      g0 += gv.x; g1 += gv.y; u0 += uv.x; u1 += uv.y;
    }
    e.store(row, col, g0, g1, u0, u1, bias_at<T>(e.bg, col), bias_at<T>(e.bg, col + 1),
            bias_at<T>(e.bu, col), bias_at<T>(e.bu, col + 1));
  }
  if (threadIdx.x == 0) *counter = 0u;  // ready for the next launch
}

// Split-K plan (glu_skinny_plan): block (x, y) = column tile x, K slice y.
template <typename T, int LAYOUT, int MTW, int WM, int WK, int STAGES, int BN = kBN,
          int BK = kBK>
__device__ __forceinline__ void skinny_body(const GluParams& p, const GluSkinnySplit& sp) {
  constexpr int THREADS = 32 * WM * WK;
  constexpr int kNT = BN / 8;  // n8 tiles per projection (8 for BN = 64)
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t n_blk = (int64_t)blockIdx.x * BN;
  const int64_t k_begin = (int64_t)blockIdx.y * sp.k_per_split;
  const int64_t k_end = min(K, k_begin + sp.k_per_split);
  float acc_g[MTW][kNT][4];
  float acc_u[MTW][kNT][4];
  skinny_accumulate<T, LAYOUT, MTW, WM, WK, STAGES, BN, BK>(p, n_blk, k_begin, k_end, acc_g,
                                                            acc_u);
  const int tid = threadIdx.x;
  const uint32_t lane = tid & 31;
  const uint32_t warp = tid >> 5;
  const uint32_t wm = warp / WK, wk = warp % WK;
  if (sp.splits <= 1) {
    if (wk == 0) store_direct<T, MTW, kNT>(p, n_blk, wm, lane, acc_g, acc_u);
    return;
  }
  // Split-K across blocks: publish this slice's partial, take a ticket; the
  // last block of the column tile reduces slices 0..splits-1 in order.
  const PartialMap map{sp.ws, 2 * N, 0, N, M};
  if (wk == 0) store_partial<MTW, kNT>(map, blockIdx.y, n_blk, N, wm, lane, acc_g, acc_u);
  if (!take_ticket(sp.counters + blockIdx.x, (unsigned int)sp.splits)) return;
  reduce_store<T, BN, THREADS>(p, map, n_blk, sp.splits, [](int64_t s) { return s; },
                               sp.counters + blockIdx.x);
}

// Stream-K schedule (see GluSkinnyStreamK in glu_skinny.cuh): block b walks
// iterations [glu_sk_begin(b), glu_sk_begin(b + 1)) segment by segment.
template <typename T, int LAYOUT, int MTW, int WM, int WK, int STAGES, int BN = kBN,
          int BK = kBK>
__device__ __forceinline__ void skinny_streamk_body(const GluParams& p,
                                                    const GluSkinnyStreamK& sk) {
  constexpr int THREADS = 32 * WM * WK;
  constexpr int kNT = BN / 8;
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t k_tiles = (K + BK - 1) / BK;
  const int64_t iters = ((N + BN - 1) / BN) * k_tiles;
  const int64_t blocks = gridDim.x, b = blockIdx.x;
  const int tid = threadIdx.x;
  const uint32_t lane = tid & 31;
  const uint32_t warp = tid >> 5;
  const uint32_t wm = warp / WK, wk = warp % WK;

  const int64_t i_end = glu_sk_begin(b + 1, blocks, iters);
  for (int64_t i = glu_sk_begin(b, blocks, iters); i < i_end;) {
    const GluSkSegment seg = glu_sk_segment(i, i_end, k_tiles);
    const int64_t tile = seg.tile, kt0 = seg.kt0, kt1 = seg.kt1;
    const int64_t n_blk = tile * BN;
    float acc_g[MTW][kNT][4];
    float acc_u[MTW][kNT][4];
    skinny_accumulate<T, LAYOUT, MTW, WM, WK, STAGES, BN, BK>(p, n_blk, kt0 * BK,
                                                              min(K, kt1 * BK), acc_g, acc_u);
    if (kt0 == 0 && kt1 == k_tiles) {  // the whole tile: no other block holds part of it
      if (wk == 0) store_direct<T, MTW, kNT>(p, n_blk, wm, lane, acc_g, acc_u);
    } else {
      const int64_t first = glu_sk_first_block(tile, k_tiles, blocks, iters);
      const int64_t last = glu_sk_last_block(tile, k_tiles, blocks, iters);
      const PartialMap tmap{sk.ws, 2 * BN, n_blk, BN, M};
      if (wk == 0)
        store_partial<MTW, kNT>(tmap, glu_sk_slot(b, tile, k_tiles, blocks, iters), n_blk, N, wm,
                                lane, acc_g, acc_u);
      if (take_ticket(sk.counters + tile, (unsigned int)(last - first + 1))) {
        const int64_t slot0 = glu_sk_slot(first, tile, k_tiles, blocks, iters);
        reduce_store<T, BN, THREADS>(
            p, tmap, n_blk, last - first + 1,
            [=](int64_t s) { return glu_sk_contributor_slot(s, first, slot0); },
            sk.counters + tile);
      }
    }
    i += kt1 - kt0;
    // Not needed today (the reduction's reads and take_ticket's read of
    // s_last are behind barriers the next segment's smem writes follow), kept
    // so that a change to the code above cannot race the next segment's
    // zeroing of the padded x rows. One barrier per segment.
    __syncthreads();
  }
}

// ---------------------------------------------------------------------------
// Register-streaming decode kernels fused_glu_skinny_rs_nk_{bf16,f16}_m{8,16}
// (GluParams, GluSkinnySplit): M <= 8 / 16, NK weights ([N, K] each, or the
// concatenated [2N, K]) only. Session 17, compiled, unverified on a GPU.
//
// Why: the H200's "bw" probes (kernels/tests/bw_probe.cuh, session 16) read
// the decode kernel's weight tiles at 49-67% of 4.8 TB/s through a cp.async
// ring and at 84-86% with plain 16-byte loads into registers from enough
// blocks; the ring kernel above reaches 56-72%. Issue #4 asks for 80%.
//
// How: the mma roles are swapped. A = 16 weight rows (16 output columns) x
// k16, B = x^T (k16 x 8 rows of x), C = [16 columns][8 rows]: 4 f32
// accumulators per projection and 8 rows of x, where the ring kernel holds
// 64; the registers go to loads in flight instead. Fragments come straight
// from global memory in 16-byte loads: thread (g = lane / 4, t = lane % 4)
// loads k [8t, 8t + 8) of a 32-deep chunk of weight rows g and g + 8 and of
// x rows g (and g + 8). Inside a chunk the k order is permuted the same way
// for A and B (a sum over k does not depend on its order): mma step s (0, 1)
// takes words 2s and 2s + 1 of each load as its k pairs (2t, 2t + 1) and
// (2t + 8, 2t + 9), so the two steps cover all 32 k of the chunk.
//
// Blocks: 4 warps, each owning 16 columns (16 gate and 16 up rows): a block
// covers GLU_SKINNY_BN = 64 columns, grid.x = ceil(N / 64), grid.y = K
// slices, so the split-K workspace protocol (PartialMap, take_ticket,
// reduce_store) is the ring kernel's, with its plan's fields. Each warp
// walks its slice in chunks of 32 k, DEPTH chunks of loads issued before
// their math. No shared memory but the ticket flag.
//
// Preconditions (the ring kernel's, NK only): bf16/f16, 1 <= M <= 8 * MB,
// K % 8 == 0, N % 8 == 0, x / w_gate / w_up / out 16-byte aligned; the
// slice length k_per_split a multiple of 32 (glu_skinny_rs_plan gives
// multiples of GLU_SKINNY_BK). Rows n >= N, x rows >= M and k >= K are read
// as zeros without a load; only rows < M and columns < N are stored.

// 16 bytes of a weight row, read once: not kept in L1, 256-byte L2 prefetch.
__device__ __forceinline__ uint4 ld_stream16(const void* p) {
  uint4 v;
#if defined(GLU_EMU)
  emu::check_global(p, 16, "ld_stream16");
  memcpy(&v, p, 16);
#elif GLU_SM80
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
#else
  v = __ldg(reinterpret_cast<const uint4*>(p));
#endif
  return v;
}

// 16 bytes of x (read by every block: cached).
__device__ __forceinline__ uint4 ld_x16(const void* p) {
  uint4 v;
#if defined(GLU_EMU)
  emu::check_global(p, 16, "ld_x16");
  memcpy(&v, p, 16);
#else
  v = __ldg(reinterpret_cast<const uint4*>(p));
#endif
  return v;
}

__device__ __forceinline__ uint32_t word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

constexpr int kRsThreads = GLU_SKINNY_RS_THREADS;
static_assert(kRsThreads == 32 * (GLU_SKINNY_BN / 16), "one warp per 16 columns of the tile");

// MB: 8-row blocks of x (1: M <= 8, 2: M <= 16); DEPTH: 32-k chunks whose
// loads are issued before their math.
template <typename T, int MB, int DEPTH>
__device__ __forceinline__ void skinny_rs_body(const GluParams& p, const GluSkinnySplit& sp) {
  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ wg = static_cast<const T*>(p.w_gate);
  const T* __restrict__ wu = static_cast<const T*>(p.w_up);
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t n_blk = (int64_t)blockIdx.x * kBN;
  const int64_t k_begin = (int64_t)blockIdx.y * sp.k_per_split;
  const int64_t k_end = min(K, k_begin + sp.k_per_split);
  const uint32_t lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const uint32_t g = lane >> 2, t = lane & 3u;
  // This thread's weight rows (output columns) and x rows.
  const int64_t col0 = n_blk + warp * 16 + g, col1 = col0 + 8;
  const bool ok0 = col0 < N, ok1 = col1 < N;
  const int64_t kt = 8 * (int64_t)t;  // this thread's k offset in a chunk
  const T* const g0 = wg + (ok0 ? col0 : 0) * K + kt;
  const T* const g1 = wg + (ok1 ? col1 : 0) * K + kt;
  const T* const u0 = wu + (ok0 ? col0 : 0) * K + kt;
  const T* const u1 = wu + (ok1 ? col1 : 0) * K + kt;
  const T* xr[MB];
  bool okx[MB];
#pragma unroll
  for (int mb = 0; mb < MB; ++mb) {
    const int64_t r = 8 * mb + g;
    okx[mb] = r < M;
    xr[mb] = x + (okx[mb] ? r : 0) * K + kt;
  }
  float acc_g[MB][4], acc_u[MB][4];
#pragma unroll
  for (int mb = 0; mb < MB; ++mb)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_g[mb][e] = acc_u[mb][e] = 0.0f;

  const uint4 z = make_uint4(0u, 0u, 0u, 0u);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += 32 * DEPTH) {
    uint4 a_g0[DEPTH], a_g1[DEPTH], a_u0[DEPTH], a_u1[DEPTH], b[DEPTH][MB];
#pragma unroll
    for (int d = 0; d < DEPTH; ++d) {
      const int64_t k = k0 + 32 * d;  // chunk start; this thread reads k + kt
      const bool kin = k + kt < k_end;  // k_end % 8 == 0: the 8 k all in or all out
      a_g0[d] = kin && ok0 ? ld_stream16(g0 + k) : z;
      a_g1[d] = kin && ok1 ? ld_stream16(g1 + k) : z;
      a_u0[d] = kin && ok0 ? ld_stream16(u0 + k) : z;
      a_u1[d] = kin && ok1 ? ld_stream16(u1 + k) : z;
#pragma unroll
      for (int mb = 0; mb < MB; ++mb) b[d][mb] = kin && okx[mb] ? ld_x16(xr[mb] + k) : z;
    }
#pragma unroll
    for (int d = 0; d < DEPTH; ++d)
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        const uint32_t ag[4] = {word(a_g0[d], 2 * s), word(a_g1[d], 2 * s),
                                word(a_g0[d], 2 * s + 1), word(a_g1[d], 2 * s + 1)};
        const uint32_t au[4] = {word(a_u0[d], 2 * s), word(a_u1[d], 2 * s),
                                word(a_u0[d], 2 * s + 1), word(a_u1[d], 2 * s + 1)};
#pragma unroll
        for (int mb = 0; mb < MB; ++mb) {
          mma_16816<T>(acc_g[mb], ag, word(b[d][mb], 2 * s), word(b[d][mb], 2 * s + 1));
          mma_16816<T>(acc_u[mb], au, word(b[d][mb], 2 * s), word(b[d][mb], 2 * s + 1));
        }
      }
  }
  // acc[mb][e]: column (e < 2 ? col0 : col1), x row 8 mb + 2t + (e & 1).
  if (sp.splits <= 1) {
    const Epilogue<T> ep(p);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t col = e < 2 ? col0 : col1;
      if (col >= N) continue;
      const float bg = bias_at<T>(ep.bg, col), bu = bias_at<T>(ep.bu, col);
#pragma unroll
      for (int mb = 0; mb < MB; ++mb) {
        const int64_t row = 8 * mb + 2 * t + (e & 1);
        if (row < M) ep.store_one(row, col, acc_g[mb][e] + bg, acc_u[mb][e] + bu);
      }
    }
    return;
  }
  const PartialMap map{sp.ws, 2 * N, 0, N, M};
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int64_t col = e < 2 ? col0 : col1;
    if (col >= N) continue;
#pragma unroll
    for (int mb = 0; mb < MB; ++mb) {
      const int64_t row = 8 * mb + 2 * t + (e & 1);
      if (row >= M) continue;
      float* base = map.at(blockIdx.y, row, col);
      __stcg(base, acc_g[mb][e]);
      __stcg(base + map.up_off, acc_u[mb][e]);
    }
  }
  if (!take_ticket(sp.counters + blockIdx.x, (unsigned int)sp.splits)) return;
  reduce_store<T, kBN, kRsThreads>(p, map, n_blk, sp.splits, [](int64_t s) { return s; },
                                   sp.counters + blockIdx.x);
}

}  // namespace skinny

// Per configuration: the split-K kernel and the stream-K one (_sk_).
#define GLU_SKINNY_KERNEL(LAY, LAYOUT, TN, T, MP, MTW, WM, WK, STAGES, MINB)                  \
  extern "C" __global__ void __launch_bounds__(32 * WM * WK, MINB)                             \
      fused_glu_skinny_##LAY##_##TN##_m##MP(GluParams p, GluSkinnySplit s) {                   \
    skinny::skinny_body<T, LAYOUT, MTW, WM, WK, STAGES>(p, s);                                 \
  }                                                                                            \
  GLU_EMU_KERNEL(fused_glu_skinny_##LAY##_##TN##_m##MP, false, 1)                           \
  extern "C" __global__ void __launch_bounds__(32 * WM * WK, MINB)                             \
      fused_glu_skinny_sk_##LAY##_##TN##_m##MP(GluParams p, GluSkinnyStreamK s) {              \
    skinny::skinny_streamk_body<T, LAYOUT, MTW, WM, WK, STAGES>(p, s);                         \
  } \
  GLU_EMU_KERNEL(fused_glu_skinny_sk_##LAY##_##TN##_m##MP, false, 1)

#define GLU_SKINNY_ALL_M(LAY, LAYOUT, TN, T)                                                   \
  GLU_SKINNY_KERNEL(LAY, LAYOUT, TN, T, 16, 1, GLU_SKINNY_M16_WM, GLU_SKINNY_M16_WK,          \
                    GLU_SKINNY_M16_STAGES, GLU_SKINNY_M16_MINB)                                \
  GLU_SKINNY_KERNEL(LAY, LAYOUT, TN, T, 32, 1, GLU_SKINNY_M32_WM, GLU_SKINNY_M32_WK,          \
                    GLU_SKINNY_M32_STAGES, GLU_SKINNY_M32_MINB)                                \
  GLU_SKINNY_KERNEL(LAY, LAYOUT, TN, T, 64, 1, GLU_SKINNY_M64_WM, GLU_SKINNY_M64_WK,          \
                    GLU_SKINNY_M64_STAGES, GLU_SKINNY_M64_MINB)

GLU_SKINNY_ALL_M(kn, GLU_LAYOUT_KN, bf16, __nv_bfloat16)
GLU_SKINNY_ALL_M(nk, GLU_LAYOUT_NK, bf16, __nv_bfloat16)
GLU_SKINNY_ALL_M(kn, GLU_LAYOUT_KN, f16, __half)
GLU_SKINNY_ALL_M(nk, GLU_LAYOUT_NK, f16, __half)

// Register-streaming decode kernels (NK only, M <= 8 / 16): see skinny_rs_body.
#define GLU_SKINNY_RS_KERNEL(TN, T, MP, MB)                                                    \
  extern "C" __global__ void __launch_bounds__(GLU_SKINNY_RS_THREADS, GLU_SKINNY_RS_MINB)      \
      fused_glu_skinny_rs_nk_##TN##_m##MP(GluParams p, GluSkinnySplit s) {                     \
    skinny::skinny_rs_body<T, MB, GLU_SKINNY_RS_M##MP##_DEPTH>(p, s);                          \
  }                                                                                            \
  GLU_EMU_KERNEL(fused_glu_skinny_rs_nk_##TN##_m##MP, false, 1)

GLU_SKINNY_RS_KERNEL(bf16, __nv_bfloat16, 8, 1)
GLU_SKINNY_RS_KERNEL(bf16, __nv_bfloat16, 16, 2)
GLU_SKINNY_RS_KERNEL(f16, __half, 8, 1)
GLU_SKINNY_RS_KERNEL(f16, __half, 16, 2)
