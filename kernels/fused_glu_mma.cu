// Fused gated feed-forward on tensor cores (sm_80+: mma.sync, cp.async,
// ldmatrix). out[m,n] = act(x[m,:]*Wg[:,n] + bg[n]) * (x[m,:]*Wu[:,n] + bu[n])
//
// Kernels: fused_glu_mma_{kn,nk}_{bf16,f16}(GluParams p)
//          fused_glu_mma_{kn,nk}_tf32(GluParams p): f32 inputs on the tf32
//          tensor cores (mma.m16n8k8.tf32; the tensor core reads the top 19
//          bits of each f32 input, i.e. 10 mantissa bits, so each product
//          carries a relative error up to ~2^-9); f32 accumulation and
//          output. Opt-in only (Path::FusedMmaTf32, CudaGlu::set_allow_tf32).
//
// tf32 variant: every tile has the same BYTES as the 16-bit one: a k-tile is
// 64 bytes of k per row (32 bf16/f16 or 16 f32), one mma k-step 32 bytes
// (k16 or k8), so the x and NK tiles, their swizzle, cp.async chunk maps and
// ldmatrix addressing are unchanged (ldmatrix of 8x8 b16 = 8 rows x 4 f32
// gives thread t row t/4, f32 element t%4: exactly the tf32 A fragment
// (g, t) / (g+8, t) / (g, t+4) / (g+8, t+4) and the B fragment (k = t, n = g)
// / (k = t+4, n = g) of an NK tile). The KN tile is [16 k][128 n] f32
// (512-byte rows, glu_swz512) and is read with 32-bit ld.shared (ldmatrix
// .trans cannot split 32-bit elements), conflict-free (glu_swizzle.cuh).
//
// Tiling (design notes and performance model: kernels/NOTES-mma.md)
//   block tile   GLU_MMA_BM x GLU_MMA_BN = 128 x 128 of out, i.e. the same
//                128 columns of gate AND up: an effective 128 x 256 GEMM tile
//                against [Wg | Wu]; k-tile GLU_MMA_BK = 32
//   grid         2-D, x = ceil(N/128) column tiles, y = ceil(M/128) row
//                tiles, exactly as before; the block remaps its linear id
//                (y * gridDim.x + x) with glu_grouped_tile (groups of
//                kGroupM = 8 row tiles) for L2 reuse of the weight tiles.
//   threads      512 = 16 warps in a 4 (m) x 4 (n) grid (GLU_MMA_THREADS,
//                since session 16); each warp owns a 32 x 32 sub-tile of out
//                = 2 (m16) x 4 (n8) mma tiles, with TWO f32 accumulator sets
//                (gate, up): 64 accumulators per thread. (Before: 8 warps
//                of 64 x 32, 128 accumulators and a fragment double buffer;
//                still built as the P5 probe; 297 against 375 TFLOP/s on an
//                H200.)
//   per k16      2 ldmatrix.x4 (A) + 2 + 2 ldmatrix.x4 (Wg, Wu) feed 16 mma,
//                loaded just before them (one fragment buffer: the other
//                warps of the sub-partition cover the ldmatrix latency)
//   pipeline     GLU_MMA_STAGES = 4 stage cp.async ring (3 k-tiles in flight),
//                ONE __syncthreads per k-tile; the cp.asyncs of k-tile kt+3
//                (x, Wg, Wu) are issued between the four mma groups of kt's
//                first k16 step, from per-thread cursors set up once per
//                block (StageLoader): the loop body is one basic block in
//                which no stretch is without mma
//   smem/stage   x [128][32] (8 KiB) + Wg tile (8 KiB) + Wu tile (8 KiB)
//                NK tile: [128 n][32 k] (64-byte rows);
//                KN tile: [32 k][128 n] (256-byte rows)
//                total 4 x 24 KiB = 96 KiB = GLU_MMA_SMEM_BYTES (dynamic; the
//                launcher must raise cudaFuncAttributeMaxDynamicSharedMemorySize).
//                96 KiB fits every sm_80+ part (sm_86/89 allow 99 KiB).
//   occupancy    __launch_bounds__(512, 1): 1 block (16 warps) per SM, up to
//                128 registers per thread
//   swizzle      XOR, see glu_swizzle.cuh (conflict-free ldmatrix + cp.async)
//   operands     x: ldmatrix -> A (row); NK tile: ldmatrix -> B (col);
//                KN tile: ldmatrix.trans -> B (col). See glu_mma_frag.cuh.
// Assumptions (checked by the Rust side, which otherwise uses the SIMT kernel)
//   K % 8 == 0, N % 8 == 0 (tf32: K % 4 == 0, N % 4 == 0: 16-byte chunks),
//   x / w_gate / w_up / out 16-byte aligned
//   (biases: 2-byte aligned, read as scalars). M, N, K >= 1 any size otherwise;
//   all global offsets are int64. Out-of-range rows / cols / k of a tile are
//   zero-filled in smem (cp.async src-size 0, address clamped to the base);
//   stores are predicated. Zero-filled k contributes 0 to both dot products.
// Summation order per output: k-tiles ascending, each k16 step one mma
// (f32 accumulation inside the tensor core), then + bias, act, multiply,
// one rounding to T.
#include "glu_mma_frag.cuh"

static_assert(GLU_MMA_BM == 128 && GLU_MMA_BN == 128 && GLU_MMA_BK == 32,
              "tile loaders and the warp grids assume 128x128x32");
static_assert(GLU_MMA_THREADS == 512, "16 warps (4 x 4), see WarpGrid");
static_assert(GLU_MMA_STAGES >= 3, "pipeline (one barrier per k-tile needs >= 3 stages)");

namespace {

constexpr int kBM = GLU_MMA_BM, kBN = GLU_MMA_BN, kBK = GLU_MMA_BK;  // kBK in 16-bit elements
constexpr int kStages = GLU_MMA_STAGES;
constexpr int kKS = kBK / 16;  // k16 steps per k-tile (2)
constexpr int kNI = 4;         // n8 tiles per warp and projection (32 cols)
// The warp grid is WM (m) x 4 (n) warps of (64 / (WM / 2)) x 32 output
// elements. The production kernels use WM = 4 (16 warps, 32 x 32 each, half
// the accumulators, one fragment buffer): on an H200 (session 16) they ran
// at 375 TFLOP/s against 297 for WM = 2 (8 warps, 64 x 32 each, two
// fragment buffers), which the probes of mma_perf_probe.cuh still build to
// keep the comparison measurable on each GPU. Block tile, smem ring,
// swizzles and chunk maps are the same for both.
template <int WM>
struct WarpGrid {
  static_assert(WM == 2 || WM == 4, "2 x 4 or 4 x 4 warps");
  static constexpr int kThreads = 32 * 4 * WM;
  static constexpr int kMI = (kBM / 16) / WM;  // m16 tiles per warp
};
constexpr uint64_t kGroupM = 8;  // row tiles per block-order group
constexpr uint32_t kABytes = kBM * kBK * 2;  // 8192
constexpr uint32_t kBBytes = kBN * kBK * 2;  // 8192 (either layout)
constexpr uint32_t kStageBytes = kABytes + 2 * kBBytes;
static_assert(kKS == 2, "fragment double buffer indexing below assumes 2 k16 steps");

// Per element type: elements per 16-byte chunk, k elements per k-tile (64
// bytes), and the KN tile shape [kKnRows k][kBN n] (kKnChunks chunks/row).
template <typename T>
struct MmaElem {
  static constexpr int kChunk = 16 / (int)sizeof(T);  // 8 (16-bit) or 4 (f32)
  static constexpr int kTileK = 4 * kChunk;           // 32 or 16
  static constexpr int kKnChunks = kBN / kChunk;      // 16 or 32
  static constexpr int kKnRows = 512 / kKnChunks;     // 32 or 16 (= kTileK)
};
static_assert(MmaElem<__nv_bfloat16>::kTileK == kBK, "16-bit k-tile is GLU_MMA_BK");
static_assert(MmaElem<float>::kKnRows == MmaElem<float>::kTileK, "KN tile rows = k-tile");

// The cp.asyncs of one k-tile into one stage: 6 x 16 B per thread with 256
// threads (2 chunks per operand), 3 with 512. Chunk maps, cursors and
// predicates come from glu_mma_src_rowk / glu_mma_src_kn / glu_mma_k_left
// (glu_swizzle.cuh; kernels/tests/swizzle_test.cpp emulates the kernel with
// them): everything but the k-tile's "k left" is computed once per block, so
// a k-tile costs per chunk one compare, one select and one pointer step. The
// three operands are issued separately so that the main loop can spread
// them between its mma groups. Every call copies one k-tile and advances
// the cursors by one; k-tiles past the end are zero-filled (k_left = 0).
template <typename T, int LAYOUT, int THREADS = GLU_MMA_THREADS>
struct StageLoader {
  using E = MmaElem<T>;
  static_assert(THREADS == 256 || THREADS == 512, "512 chunks per operand and k-tile");
  static constexpr int kJ = 512 / THREADS;
  static_assert(E::kKnRows * E::kKnChunks == 512 && E::kKnRows == E::kTileK,
                "KN tile: 512 chunks in rows of one k each (glu_mma_src_kn)");
  static_assert(E::kChunk == 4 || E::kChunk == 8, "glu_mma_src_*: f32 or 16-bit elements");
  const T* x0;
  const T* g0;
  const T* u0;
  const T* px[kJ];
  const T* pg[kJ];
  const T* pu[kJ];
  uint32_t sx[kJ], sb[kJ];
  uint32_t kx[kJ], kb[kJ];
  bool okx[kJ], okb[kJ];
  int64_t step_x, step_b;

  __device__ __forceinline__ StageLoader(const T* x, const T* wg, const T* wu, int64_t M,
                                         int64_t N, int64_t K, int64_t m_blk, int64_t n_blk,
                                         int tid)
      : x0(x), g0(wg), u0(wu) {
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
      const uint32_t id = (uint32_t)tid + THREADS * j;
      const GluMmaChunkSrc a = glu_mma_src_rowk(id, m_blk, M, K, E::kChunk);
      const GluMmaChunkSrc b = LAYOUT == GLU_LAYOUT_NK
                                   ? glu_mma_src_rowk(id, n_blk, N, K, E::kChunk)
                                   : glu_mma_src_kn(id, n_blk, N, E::kChunk);
      px[j] = x + a.off;
      pg[j] = wg + b.off;
      pu[j] = wu + b.off;
      sx[j] = a.smem;
      sb[j] = b.smem;
      kx[j] = a.kin;
      kb[j] = b.kin;
      okx[j] = a.row_ok;
      okb[j] = b.row_ok;
      step_x = a.step;
      step_b = b.step;
    }
  }

  // x tile [128 m][64 bytes of k] of the k-tile with `k_left` valid k.
  __device__ __forceinline__ void issue_x(uint32_t st, uint32_t k_left) {
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
      const bool pred = glu_mma_chunk_valid(okx[j], kx[j], k_left);
      cp_async_16_zfill(st + sx[j], pred ? px[j] : x0, pred);
      px[j] += step_x;
    }
  }
  // Wg tile (NK: [128 n][64 bytes of k]; KN: [kKnRows k][128 n]).
  __device__ __forceinline__ void issue_g(uint32_t st, uint32_t k_left) {
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
      const bool pred = glu_mma_chunk_valid(okb[j], kb[j], k_left);
      cp_async_16_zfill(st + kABytes + sb[j], pred ? pg[j] : g0, pred);
      pg[j] += step_b;
    }
  }
  // Wu tile, same map as Wg.
  __device__ __forceinline__ void issue_u(uint32_t st, uint32_t k_left) {
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
      const bool pred = glu_mma_chunk_valid(okb[j], kb[j], k_left);
      cp_async_16_zfill(st + kABytes + kBBytes + sb[j], pred ? pu[j] : u0, pred);
      pu[j] += step_b;
    }
  }
  __device__ __forceinline__ void issue(uint32_t st, uint32_t k_left) {
    issue_x(st, k_left);
    issue_g(st, k_left);
    issue_u(st, k_left);
  }
};

// Fragments of one k16 step for one warp: A for MI m16 tiles, B for 4 n8
// tiles of each projection.
template <int MI>
struct Frags {
  uint32_t a[MI][4];
  uint32_t bg[kNI][2];
  uint32_t bu[kNI][2];
};

// tf32 B fragments of one n8 tile from the f32 KN tile (rows k, 512-byte
// rows of n): b0 = (k = 8 ks + t, n = n0 + g), b1 = (k = 8 ks + t + 4, n).
__device__ __forceinline__ void load_b_frag_kn_tf32(uint32_t (&b)[2], uint32_t tile, uint32_t n0,
                                                    uint32_t ks, uint32_t lane) {
  const uint32_t g = lane >> 2, t = lane & 3;
  const uint32_t col = n0 + g;
  const uint32_t word = (col & 3u) << 2;
  b[0] = ld_shared_u32(tile + glu_swz512(ks * 8u + t, col >> 2) + word);
  b[1] = ld_shared_u32(tile + glu_swz512(ks * 8u + t + 4u, col >> 2) + word);
}

template <typename T, int LAYOUT, int MI>
__device__ __forceinline__ void load_frags(Frags<MI>& f, uint32_t st, uint32_t ks,
                                           uint32_t warp_m, uint32_t warp_n, uint32_t lane) {
  const uint32_t s_a = st, s_bg = st + kABytes, s_bu = st + kABytes + kBBytes;
#pragma unroll
  for (uint32_t mi = 0; mi < (uint32_t)MI; ++mi)
    glu_load_a_frag(f.a[mi], s_a, warp_m * (16 * MI) + mi * 16, ks, lane);
  if constexpr (sizeof(T) == 4 && LAYOUT == GLU_LAYOUT_KN) {
#pragma unroll
    for (uint32_t ni = 0; ni < kNI; ++ni) {
      load_b_frag_kn_tf32(f.bg[ni], s_bg, warp_n * 32 + ni * 8, ks, lane);
      load_b_frag_kn_tf32(f.bu[ni], s_bu, warp_n * 32 + ni * 8, ks, lane);
    }
  } else {
#pragma unroll
    for (uint32_t nj = 0; nj < kNI / 2; ++nj) {
      uint32_t t[2][2];
      glu_load_b_frag_wide<LAYOUT>(t, s_bg, warp_n * 32 + nj * 16, ks, lane);
      f.bg[nj * 2][0] = t[0][0]; f.bg[nj * 2][1] = t[0][1];
      f.bg[nj * 2 + 1][0] = t[1][0]; f.bg[nj * 2 + 1][1] = t[1][1];
      glu_load_b_frag_wide<LAYOUT>(t, s_bu, warp_n * 32 + nj * 16, ks, lane);
      f.bu[nj * 2][0] = t[0][0]; f.bu[nj * 2][1] = t[0][1];
      f.bu[nj * 2 + 1][0] = t[1][0]; f.bu[nj * 2 + 1][1] = t[1][1];
    }
  }
}

// One mma over a 32-byte k-step: m16n8k16 for 16-bit types, m16n8k8 tf32
// for f32.
template <typename T>
__device__ __forceinline__ void mma_k32b(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (sizeof(T) == 4)
    mma_1688_tf32(d, a, b0, b1);
  else
    mma_16816<T>(d, a, b0, b1);
}

// The 8 mma of m16 tile `mi` (4 n8 tiles x gate, up).
template <typename T, int MI>
__device__ __forceinline__ void mma_frags_mi(float (&acc_g)[MI][kNI][4],
                                             float (&acc_u)[MI][kNI][4], const Frags<MI>& f,
                                             int mi) {
#pragma unroll
  for (int ni = 0; ni < kNI; ++ni) {
    mma_k32b<T>(acc_g[mi][ni], f.a[mi], f.bg[ni][0], f.bg[ni][1]);
    mma_k32b<T>(acc_u[mi][ni], f.a[mi], f.bu[ni][0], f.bu[ni][1]);
  }
}

template <typename T, int MI>
__device__ __forceinline__ void mma_frags(float (&acc_g)[MI][kNI][4], float (&acc_u)[MI][kNI][4],
                                          const Frags<MI>& f) {
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) mma_frags_mi<T, MI>(acc_g, acc_u, f, mi);
}

template <typename T>
__device__ __forceinline__ float load_bias(const T* b, int64_t n) {
  return b ? to_f32<T>(b[n]) : 0.0f;
}

constexpr int kWM = GLU_MMA_THREADS / 128;  // production warp grid: kWM x 4
static_assert(WarpGrid<kWM>::kThreads == GLU_MMA_THREADS, "launch size");

// Dynamic shared memory of a variant of the body below: S stages of the ring
// and, with MBAR, a full and an empty mbarrier per stage after it. The
// production kernels (S = kStages, no MBAR) need GLU_MMA_SMEM_BYTES.
constexpr uint32_t glu_mma_smem_bytes(int S, bool MBAR) {
  return (uint32_t)S * kStageBytes + (MBAR ? 16u * (uint32_t)S : 0u);
}
static_assert(glu_mma_smem_bytes(kStages, false) == GLU_MMA_SMEM_BYTES, "smem size contract");

// The main loops without __syncthreads (the MBAR probes of
// mma_perf_probe.cuh; kernels/NOTES-mma.md "Session 18"). Stage s has two
// mbarriers: full[s] (one arrival per thread, by cp.async.mbarrier.arrive
// once that thread's copies of the stage have landed) and empty[s] (one
// arrival per warp, after its last ldmatrix of the stage). Iteration kt
// waits for full[kt % S], and refills k-tile kt + S - LAG into the stage of
// k-tile kt - LAG once empty says every warp has read that one. So warps
// are never held in step by a block barrier: each runs up to LAG k-tiles
// ahead of the slowest, and the ldmatrix bursts that follow every
// __syncthreads of the production loop (all 16 warps load their fragments
// at once, ~48 KiB of shared memory, while no warp has an mma to issue)
// spread out, as does the wait for a stage that lands late. Phases: stage
// s holds k-tiles s, s + S, ...; the j-th of them completes phase j of both
// barriers, waited for with parity j & 1 (no barrier can run two phases
// ahead of a waiter: each phase needs the waiter's own arrival on the other
// barrier first).
template <int S, int LAG>
struct MbarRing {
  static_assert(LAG >= 1 && LAG < S, "refill distance S - LAG >= 1");
  uint32_t smem = 0, bars = 0;   // ring; full[s] at bars + 16 s, empty[s] at + 8
  uint32_t rs = 0, rphase = 0;   // stage and phase parity of the k-tile read
  uint32_t ws = S - LAG, wphase = 0;  // of the k-tile refilled (S - LAG ahead)

  // Initialises the barriers and issues k-tiles 0 .. S-LAG-1 (those that
  // exist) into stages 0 .. S-LAG-1.
  template <typename T, int THREADS, typename Loader>
  static __device__ __forceinline__ MbarRing make(uint32_t smem, Loader& loader, int64_t K,
                                                  int64_t k_tiles, int tid) {
    constexpr int kTK = MmaElem<T>::kTileK;
    MbarRing r;
    r.smem = smem;
    r.bars = smem + (uint32_t)S * kStageBytes;
    if (tid == 0)
      for (int s = 0; s < S; ++s) {
        mbar80_init(r.full(s), THREADS);
        mbar80_init(r.empty(s), THREADS / 32);
      }
    __syncthreads();  // the barriers are initialised before anyone uses them
    for (int s = 0; s < S - LAG; ++s)
      if (s < k_tiles) {
        loader.issue(smem + s * kStageBytes, glu_mma_k_left(K, (int64_t)s * kTK, kTK));
        cp_async_mbar_arrive(r.full(s));
      }
    return r;
  }
  __device__ __forceinline__ uint32_t full(uint32_t s) const { return bars + 16u * s; }
  __device__ __forceinline__ uint32_t empty(uint32_t s) const { return bars + 16u * s + 8u; }
  // The stage of the k-tile read, once its copies have landed.
  __device__ __forceinline__ uint32_t acquire() const {
    mbar80_wait(full(rs), rphase);
    return smem + rs * kStageBytes;
  }
  // This warp has loaded its last fragments of the stage read.
  __device__ __forceinline__ void release(uint32_t lane) const {
    __syncwarp();
    if (lane == 0) mbar80_arrive(empty(rs));
  }
  // Before refilling k-tile kr = kt + S - LAG: every warp has read k-tile
  // kr - S of its stage (for kr < S the stage was never used).
  __device__ __forceinline__ uint32_t refill_stage(int64_t kr) const {
    if (kr >= S) mbar80_wait(empty(ws), wphase ^ 1u);
    return smem + ws * kStageBytes;
  }
  // After the refill's last copies were issued.
  __device__ __forceinline__ void refilled() const { cp_async_mbar_arrive(full(ws)); }
  __device__ __forceinline__ void advance() {
    if (++rs == (uint32_t)S) { rs = 0; rphase ^= 1u; }
    if (++ws == (uint32_t)S) { ws = 0; wphase ^= 1u; }
  }
};

// 16 warps on MbarRing: the production loop's order, with the barrier
// replaced by the ring's waits and arrivals.
template <typename T, int LAYOUT, int MI, int S, int LAG, int THREADS, typename Loader>
__device__ __forceinline__ void mma_mainloop_mbar(float (&acc_g)[MI][kNI][4],
                                                  float (&acc_u)[MI][kNI][4], Loader& loader,
                                                  uint32_t smem, int64_t K, int64_t k_tiles,
                                                  uint32_t warp_m, uint32_t warp_n, uint32_t lane,
                                                  int tid) {
  constexpr int kTK = MmaElem<T>::kTileK;
  MbarRing<S, LAG> ring =
      MbarRing<S, LAG>::template make<T, THREADS>(smem, loader, K, k_tiles, tid);
  if constexpr (MI == 2) {
    // 16 warps, one fragment buffer.
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      const uint32_t st = ring.acquire();
      Frags<MI> f0;
      load_frags<T, LAYOUT, MI>(f0, st, 0, warp_m, warp_n, lane);
      const int64_t kr = kt + (S - LAG);
      const bool refill = kr < k_tiles;  // uniform
      const uint32_t k_left = glu_mma_k_left(K, kr * kTK, kTK);
      uint32_t wst = 0;
      mma_frags_mi<T, MI>(acc_g, acc_u, f0, 0);
      if (refill) {
        wst = ring.refill_stage(kr);
        loader.issue_x(wst, k_left);
        loader.issue_g(wst, k_left);
      }
      mma_frags_mi<T, MI>(acc_g, acc_u, f0, 1);
      if (refill) {
        loader.issue_u(wst, k_left);
        ring.refilled();
      }
      Frags<MI> f1;
      load_frags<T, LAYOUT, MI>(f1, st, 1, warp_m, warp_n, lane);
      ring.release(lane);
      mma_frags<T, MI>(acc_g, acc_u, f1);
      ring.advance();
    }
  } else {
    // 8 warps, fragments double-buffered: step 0 of k-tile kt+1 is loaded
    // before step 1 of kt is multiplied, and a warp releases a stage right
    // after loading its step-1 fragments, a whole k16 step of mma before
    // the production loop's barrier would let it go.
    static_assert(MI == 4, "8 warps: 4 m16 tiles per warp");
    Frags<MI> fr[2];
    if (k_tiles > 0) load_frags<T, LAYOUT, MI>(fr[0], ring.acquire(), 0, warp_m, warp_n, lane);
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      load_frags<T, LAYOUT, MI>(fr[1], smem + ring.rs * kStageBytes, 1, warp_m, warp_n, lane);
      ring.release(lane);
      const int64_t kr = kt + (S - LAG);
      const bool refill = kr < k_tiles;  // uniform
      const uint32_t k_left = glu_mma_k_left(K, kr * kTK, kTK);
      uint32_t wst = 0;
      mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 0);
      if (refill) {
        wst = ring.refill_stage(kr);
        loader.issue_x(wst, k_left);
      }
      mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 1);
      if (refill) loader.issue_g(wst, k_left);
      mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 2);
      if (refill) {
        loader.issue_u(wst, k_left);
        ring.refilled();
      }
      mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 3);
      ring.advance();
      if (kt + 1 < k_tiles)
        load_frags<T, LAYOUT, MI>(fr[0], ring.acquire(), 0, warp_m, warp_n, lane);
      mma_frags<T, MI>(acc_g, acc_u, fr[1]);
    }
  }
}

template <typename T, int LAYOUT, int WM = kWM, int S = kStages, bool MBAR = false>
__device__ __forceinline__ void fused_glu_mma_body(const GluParams& p) {
  constexpr int kThreads = WarpGrid<WM>::kThreads;
  constexpr int MI = WarpGrid<WM>::kMI;
  static_assert(S >= 3, "pipeline (one barrier per k-tile needs >= 3 stages)");
  GLU_DYNAMIC_SMEM(glu_mma_smem, 128);

  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ wg = static_cast<const T*>(p.w_gate);
  const T* __restrict__ wu = static_cast<const T*>(p.w_up);
  const int64_t M = p.m, N = p.n, K = p.k;

  // Grouped tile order (grid: x = column tiles, y = row tiles).
  uint64_t tile_m, tile_n;
  glu_grouped_tile((uint64_t)blockIdx.y * gridDim.x + blockIdx.x, gridDim.y, gridDim.x, kGroupM,
                   &tile_m, &tile_n);
  const int64_t m_blk = (int64_t)tile_m * kBM;
  const int64_t n_blk = (int64_t)tile_n * kBN;

  const int tid = threadIdx.x;
  const uint32_t lane = tid & 31;
  const uint32_t warp = tid >> 5;
  const uint32_t warp_m = warp >> 2;  // 0..WM-1 -> rows warp_m*16*MI
  const uint32_t warp_n = warp & 3;   // 0..3 -> cols warp_n*32

  const uint32_t smem = smem_u32(glu_mma_smem);

  float acc_g[MI][kNI][4];
  float acc_u[MI][kNI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < kNI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc_g[i][j][e] = 0.0f;
        acc_u[i][j][e] = 0.0f;
      }

  constexpr int kTK = MmaElem<T>::kTileK;  // k elements per k-tile
  const int64_t k_tiles = (K + kTK - 1) / kTK;

  // Prologue: k-tiles 0 .. kStages-2, one commit group each, so that group j
  // always holds k-tile j and the wait arithmetic is uniform. k-tiles past
  // the end (here and in the loop) are zero-filled, not skipped: the
  // loader's cursors advance once per issued k-tile, and the last
  // iteration's unused fragment load below reads a stage whose copy is
  // complete.
  StageLoader<T, LAYOUT, kThreads> loader(x, wg, wu, M, N, K, m_blk, n_blk, tid);
  if constexpr (MBAR) {
    mma_mainloop_mbar<T, LAYOUT, MI, S, (S >= 6 ? 2 : 1), kThreads>(
        acc_g, acc_u, loader, smem, K, k_tiles, warp_m, warp_n, lane, tid);
  } else {
  constexpr int kStages = S;  // the ring depth of this instantiation
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    loader.issue(smem + s * kStageBytes, glu_mma_k_left(K, (int64_t)s * kTK, kTK));
    cp_async_commit();
  }
  // Groups committed: kStages-1; allowing kStages-2 pending -> group 0
  // (k-tile 0) complete for this thread; the barrier publishes everyone's.
  cp_async_wait<kStages - 2>();
  __syncthreads();

  if constexpr (WM != 2) {
    // 16 warps (the production kernels): registers allow no second fragment buffer, so
    // each k16 step's fragments are loaded just before its mma; the other
    // warps of the sub-partition cover the ldmatrix latency. Same ring, same
    // barrier rule as below: the barrier at the end of iteration kt follows
    // every fragment load of k-tile kt and certifies k-tile kt+1 landed.
    uint32_t read_stage = 0, write_stage = kStages - 1;
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      Frags<MI> f0;
      load_frags<T, LAYOUT, MI>(f0, smem + read_stage * kStageBytes, 0, warp_m, warp_n, lane);
      {
        // The refill spread over the step's two mma groups, as below.
        static_assert(MI == 2, "16 warps: 2 m16 tiles per warp");
        const uint32_t ws = smem + write_stage * kStageBytes;
        const uint32_t k_left = glu_mma_k_left(K, (kt + (kStages - 1)) * kTK, kTK);
        mma_frags_mi<T, MI>(acc_g, acc_u, f0, 0);
        loader.issue_x(ws, k_left);
        loader.issue_g(ws, k_left);
        mma_frags_mi<T, MI>(acc_g, acc_u, f0, 1);
        loader.issue_u(ws, k_left);
        cp_async_commit();
        write_stage = (write_stage + 1 == (uint32_t)kStages) ? 0 : write_stage + 1;
      }
      Frags<MI> f1;
      load_frags<T, LAYOUT, MI>(f1, smem + read_stage * kStageBytes, 1, warp_m, warp_n, lane);
      mma_frags<T, MI>(acc_g, acc_u, f1);
      cp_async_wait<kStages - 2>();
      __syncthreads();
      read_stage = (read_stage + 1 == (uint32_t)kStages) ? 0 : read_stage + 1;
    }
  } else {
    // 8 warps (the P5 probe of mma_perf_probe.cuh).
    static_assert(MI == 4, "the refill below is spread over 4 mma groups");
    Frags<MI> fr[2];
    load_frags<T, LAYOUT, MI>(fr[0], smem, 0, warp_m, warp_n, lane);

    uint32_t read_stage = 0;             // stage holding k-tile kt
    uint32_t write_stage = kStages - 1;  // stage receiving k-tile kt + kStages - 1

    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      // ---- k16 step 0 of k-tile kt ------------------------------------------
      // Fragments of step 1 (same stage) into buffer 1.
      load_frags<T, LAYOUT, MI>(fr[1], smem + read_stage * kStageBytes, 1, warp_m, warp_n, lane);
      // Refill: k-tile kt + kStages - 1 into write_stage = (kt - 1) % kStages.
      // Safe: every warp passed the barrier of iteration kt-1 (below) after it
      // had loaded its last fragments of k-tile kt-1 from that stage (for
      // kt = 0 the stage was never read). The three operands' copies go
      // between the step's four mma groups, so that no stretch of the warp's
      // instruction stream is without mma. (ptxas interleaves them with the
      // HMMA whatever their source order, even behind a `pf < k_tiles` guard,
      // which it if-converts, now that each costs a compare, a select and a
      // pointer step; with session 10's per-k-tile address arithmetic the
      // guarded refill was a ~100-instruction block of its own.)
      {
        const uint32_t ws = smem + write_stage * kStageBytes;
        const uint32_t k_left = glu_mma_k_left(K, (kt + (kStages - 1)) * kTK, kTK);
        mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 0);
        loader.issue_x(ws, k_left);
        mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 1);
        loader.issue_g(ws, k_left);
        mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 2);
        loader.issue_u(ws, k_left);
        cp_async_commit();
        write_stage = (write_stage + 1 == (uint32_t)kStages) ? 0 : write_stage + 1;
        mma_frags_mi<T, MI>(acc_g, acc_u, fr[0], 3);
      }

      // ---- k16 step 1 of k-tile kt ------------------------------------------
      // Groups committed so far: (kStages-1) + (kt+1). Allowing kStages-2
      // pending means groups 0..kt+1 are complete: k-tile kt+1 has landed for
      // this thread; the barrier publishes every thread's copies AND certifies
      // that every warp has loaded all of its fragments of k-tile kt (step 1
      // was loaded above), so stage kt % kStages may be refilled next iteration.
      cp_async_wait<kStages - 2>();
      __syncthreads();
      read_stage = (read_stage + 1 == (uint32_t)kStages) ? 0 : read_stage + 1;
      // Fragments of step 0 of k-tile kt+1 into buffer 0 (for the last k-tile
      // this reads the zero-filled stage of k-tile k_tiles, whose copy the
      // wait above completed: harmless, unused).
      load_frags<T, LAYOUT, MI>(fr[0], smem + read_stage * kStageBytes, 0, warp_m, warp_n, lane);
      mma_frags<T, MI>(acc_g, acc_u, fr[1]);
    }
  }
  // The zero-fills of the k-tiles past the end may still be writing shared
  // memory (stages nobody reads again); the block must not exit before.
  cp_async_wait<0>();
  }  // !MBAR (the mbarrier loop issues no k-tile past the end)

  // Epilogue. C fragment: c0,c1 at (g, 2t+{0,1}), c2,c3 at (g+8, 2t+{0,1}).
  const T* bgp = static_cast<const T*>(p.b_gate);
  const T* bup = static_cast<const T*>(p.b_up);
  T* out = static_cast<T*>(p.out);
  const int act = p.act;
  const float beta = p.beta;
  const uint32_t g = lane >> 2, t4 = lane & 3;
  const bool pair_ok = (N & 1) == 0;  // always true under N % 8 (tf32: 4) == 0

#pragma unroll
  for (int ni = 0; ni < kNI; ++ni) {
    const int64_t col = n_blk + warp_n * 32 + ni * 8 + t4 * 2;
    if (col >= N) continue;
    const bool has1 = col + 1 < N;
    const float bg0 = load_bias<T>(bgp, col), bu0 = load_bias<T>(bup, col);
    const float bg1 = has1 ? load_bias<T>(bgp, col + 1) : 0.0f;
    const float bu1 = has1 ? load_bias<T>(bup, col + 1) : 0.0f;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m_blk + warp_m * (16 * MI) + mi * 16 + g + h * 8;
        if (row >= M) continue;
        const float v0 = glu_act(acc_g[mi][ni][2 * h] + bg0, act, beta) *
                         (acc_u[mi][ni][2 * h] + bu0);
        const float v1 = glu_act(acc_g[mi][ni][2 * h + 1] + bg1, act, beta) *
                         (acc_u[mi][ni][2 * h + 1] + bu1);
        T* dst = out + (row * N + col);
        if (pair_ok && has1) {
          if constexpr (sizeof(T) == 4) {
            *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);  // 8-byte aligned
          } else {
            const uint32_t w = f32_to_bits16<T>(v0) | (f32_to_bits16<T>(v1) << 16);
            *reinterpret_cast<uint32_t*>(dst) = w;  // 4-byte aligned: N, col even
          }
        } else {
          dst[0] = from_f32<T>(v0);
          if (has1) dst[1] = from_f32<T>(v1);
        }
      }
  }
}

}  // namespace

#define GLU_MMA_KERNEL(NAME, T, LAYOUT)                                              \
  extern "C" __global__ void __launch_bounds__(GLU_MMA_THREADS, 1) NAME(GluParams p) { \
    fused_glu_mma_body<T, LAYOUT>(p);                                                \
  } \
  GLU_EMU_KERNEL(NAME, false, 1)

GLU_MMA_KERNEL(fused_glu_mma_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_MMA_KERNEL(fused_glu_mma_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_MMA_KERNEL(fused_glu_mma_kn_f16, __half, GLU_LAYOUT_KN)
GLU_MMA_KERNEL(fused_glu_mma_nk_f16, __half, GLU_LAYOUT_NK)
GLU_MMA_KERNEL(fused_glu_mma_kn_tf32, float, GLU_LAYOUT_KN)
GLU_MMA_KERNEL(fused_glu_mma_nk_tf32, float, GLU_LAYOUT_NK)
