// The body of the Hopper fused kernel (TMA + wgmma, warp-specialised,
// persistent), shared by fused_glu_wgmma.cu (inference: GLU_EPI_OUT) and
// fused_glu_wgmma_train.cu (the training epilogues). The tiling, pipeline
// and assumptions are described at the top of fused_glu_wgmma.cu.
#pragma once
#include "glu_hopper.cuh"

namespace {

constexpr int kProducerRegs = 40;
constexpr int kConsumerRegs = 232;
static_assert(kProducerRegs * 128 + 2 * kConsumerRegs * 128 <= 65536, "register file");

template <typename T>
__device__ __forceinline__ float wg_bias(const T* b, int64_t n) {
  return b ? to_f32<T>(b[n]) : 0.0f;
}

// One consumer's staged 64 x 128 block (two 64 x 64 boxes at `stage`) to
// rows row_base.., columns n0.. of out (plane < 0: `tm` is the 2-D map of
// out) or of plane `plane` of aux viewed as [M][2][N] (`tm` its 3-D map), as
// one bulk group; TMA clips rows >= M and columns >= N.
__device__ __forceinline__ void wg_store_block(const CUtensorMap* tm, uint32_t stage, int64_t n0,
                                               int64_t N, int plane, int64_t row_base) {
  for (int b = 0; b < 2; ++b) {
    const int64_t c0 = n0 + 64 * b;
    if (c0 >= N) break;
    const uint32_t src = stage + (uint32_t)b * kWgOutBoxBytes;
    if (plane < 0)
      tma_store_2d(tm, src, (int32_t)c0, (int32_t)row_base);
    else
      tma_store_3d(tm, src, (int32_t)c0, plane, (int32_t)row_base);
  }
  tma_store_commit();
}

// The biases of the two columns of an accumulator pair (0 without bias).
struct WgPairBias {
  float g0, g1, u0, u1;
};

// Calls f(i, r, c, bias) for every accumulator pair of this consumer thread
// inside [M, N]: i = register index of the gate pair (its up pair is at
// i + kWgUpRegOffset), (r, c) = its position in the consumer's 64 x 128
// block (c even; columns n0 + c and n0 + c + 1 are both < N, as N % 8 == 0),
// bias = the biases of those columns, loaded once per column pair.
template <typename T, typename F>
__device__ __forceinline__ void wg_for_each_pair(uint32_t warp, uint32_t lane, int64_t n0,
                                                 int64_t N, int64_t row_base, int64_t M,
                                                 const T* bgp, const T* bup, F&& f) {
#pragma unroll
  for (int j = 0; j < kWgBN / 8; ++j) {
    const GluRC rc = glu_wgmma_acc_rc(warp, lane, (uint32_t)(4 * j));
    const int64_t col = n0 + rc.col;
    if (col >= N) continue;
    const WgPairBias b{wg_bias<T>(bgp, col), wg_bias<T>(bgp, col + 1), wg_bias<T>(bup, col),
                       wg_bias<T>(bup, col + 1)};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if (row_base + rc.row + 8 * h >= M) continue;
      f(4 * j + 2 * h, rc.row + 8u * (uint32_t)h, rc.col, b);
    }
  }
}

// ACT is a template parameter: with the activation a run-time switch the
// 64 inlined copies per thread made the epilogue code far larger than the
// instruction cache and cost as much time as the main loop.
// EPI (GLU_EPI_*, glu_params.cuh) selects what the epilogue writes; `tp`
// is only read by the training epilogues.
// `tm_out` (staged epilogues): out [M, N], box {64, 64}, 128B swizzle.
// `tm_aux` (GLU_EPI_OUT_PRE_TMA, GLU_EPI_DGU_TMA): aux viewed as [M][2][N]
// (dims {N, 2, M}), box {64, 1, 64}, 128B swizzle.
// `tm_x2`, `tm_g2`, `tm_u2` (GLU_EPI_DX, GLU_EPI_DX_F32 only): the second
// K segment's maps; the tile loop runs k_tiles over the first triple, then
// k_tiles over the second, into the same accumulators.
// SPLIT (GLU_EPI_OUT / GLU_EPI_OUT_TMA only): the tail-split schedule of
// glu_split_unit, with `ts` its workspace, counters, width and part count;
// without it every unit is a whole tile, exactly the plain persistent loop.
// CLUSTER (GLU_EPI_OUT only; launched with __cluster_dims__(2, 1, 1)): the
// two CTAs of a cluster take the two m tiles 2i, 2i + 1 of one column tile
// together (a unit is such a pair, glu_cluster_tile), and each loads one
// half of the shared B stage (rank 0 the gate box(es), rank 1 the up
// box(es)) multicast into both CTAs' rings, so each weight byte crosses
// L2 -> SM once per pair instead of once per tile. A stage is refilled only
// when the consumers of both CTAs released it (empty barriers count 16
// arrivals: 8 local, 8 from the peer). When m_tiles is odd, rank 1 of the
// last pair row has no tile:
// it loads its partner's x rows, computes on them and stores nothing (its
// m0 >= M); in-bounds rows keep its loads the same boxes as a live CTA's (a
// wholly out-of-bounds box would be zero-filled and counted in full too).
// The schedule's barrier waits trap after ~2 s (mbar_wait_or_trap): a hang
// in this never-run schedule becomes a launch error.
template <typename T, int LAYOUT, int ACT, int EPI, bool SPLIT = false, bool CLUSTER = false>
__device__ __forceinline__ void fused_glu_wgmma_body(const CUtensorMap* tm_x, const CUtensorMap* tm_g,
                                                     const CUtensorMap* tm_u, const CUtensorMap* tm_out,
                                                     const CUtensorMap* tm_aux, const GluParams& p,
                                                     const GluTrainParams& tp,
                                                     const CUtensorMap* tm_x2 = nullptr,
                                                     const CUtensorMap* tm_g2 = nullptr,
                                                     const CUtensorMap* tm_u2 = nullptr,
                                                     const GluGemmOut* gout = nullptr,
                                                     const GluTailSplit* ts = nullptr) {
#if GLU_HOPPER
  // GLU_EPI_DW*: A is read M-major (tm_x is a [contraction, M] matrix, two
  // boxes {64 rows of the tile, 64 k} per stage, the consumers' 64-row
  // halves one box each), B must be KN.
  constexpr bool kTransA = EPI == GLU_EPI_DW || EPI == GLU_EPI_DW_F32;
  static_assert(!kTransA || LAYOUT == GLU_LAYOUT_KN, "the weight-gradient kernel reads B as KN");
  constexpr bool kStaged =
      EPI == GLU_EPI_OUT_TMA || EPI == GLU_EPI_OUT_PRE_TMA || EPI == GLU_EPI_DGU_TMA;
  constexpr bool kDual = EPI == GLU_EPI_DX || EPI == GLU_EPI_DX_F32;
  static_assert(!SPLIT || EPI == GLU_EPI_OUT || EPI == GLU_EPI_OUT_TMA,
                "the tail split is for the inference epilogues");
  static_assert(!CLUSTER || (EPI == GLU_EPI_OUT && !SPLIT),
                "the cluster schedule is for the plain inference epilogue");
  GLU_DYNAMIC_SMEM(glu_wg_smem, 1024);
  // Dynamic smem is only guaranteed 16-byte aligned: align the ring to 1024.
  const uint32_t raw = smem_u32(glu_wg_smem);
  const uint32_t ring = (raw + 1023u) & ~1023u;
  // GLU_EPI_OUT_TMA: the consumers' staging buffers follow the ring.
  const uint32_t staging = ring + kWgStages * kWgStageBytes;
  const uint32_t bars = staging + (kStaged ? 2u * kWgOutStageBytes : 0u);
  auto full_bar = [&](int s) { return bars + 8u * (uint32_t)s; };
  auto empty_bar = [&](int s) { return bars + 8u * (uint32_t)(kWgStages + s); };
  auto stage_a = [&](int s) { return ring + (uint32_t)s * kWgStageBytes; };
  auto stage_b = [&](int s) { return ring + (uint32_t)s * kWgStageBytes + kWgABytes; };

  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t m_tiles = (M + kWgBM - 1) / kWgBM, n_tiles = (N + kWgBN - 1) / kWgBN;
  const int64_t num_tiles = m_tiles * n_tiles;
  // CLUSTER: units are m-tile pairs of one column tile.
  const int64_t m_units = CLUSTER ? (m_tiles + 1) / 2 : m_tiles;
  const int k_tiles = (int)((K + kWgBK - 1) / kWgBK);
  // k-tiles per output tile: both segments for the dX epilogues.
  const int k_total = kDual ? 2 * k_tiles : k_tiles;
  // Work units: whole tiles, then (SPLIT) the tail tiles' K parts. Each
  // role computes the schedule's shape after its setmaxnreg, so that no new
  // value lives across it (ptxas would keep it in local memory).
  auto split_shape = [&]() {
    return SPLIT ? glu_split_shape(num_tiles, ts->width, ts->parts) : GluSplitShape{0, 0, 1};
  };
  // The first unit of this CTA (or of its cluster) and the stride between
  // its units; read after setmaxnreg, like the schedule's shape.
  auto first_unit = [&]() { return CLUSTER ? (int64_t)cluster_index_x() : (int64_t)blockIdx.x; };
  auto unit_stride = [&]() { return CLUSTER ? (int64_t)cluster_count_x() : (int64_t)gridDim.x; };
  auto unit_of = [&](int64_t u, const GluSplitShape& sh) {
    if (SPLIT) return glu_split_unit((int32_t)u, sh, k_total);
    GluUnit x;
    x.tile = u; x.tail = -1; x.part = 0; x.parts = 1; x.kt0 = 0; x.kt1 = k_total;
    return x;
  };

  const int tid = threadIdx.x;
  const int wg = tid / 128;

  if (tid == 0) {
    for (int s = 0; s < kWgStages; ++s) {
      mbar_init(full_bar(s), 1);       // the producer's arrive.expect_tx
      // one arrive per consumer warp (CLUSTER: of both CTAs)
      mbar_init(empty_bar(s), CLUSTER ? 16 : 8);
    }
    mbar_init_fence();
  }
  __syncthreads();
  // CLUSTER: the peer's barriers are initialised before anything arrives
  // on them or multicasts into its ring.
  if (CLUSTER) cluster_sync_all();

  // Both roles walk the same units (u = blockIdx.x, += gridDim.x; without
  // SPLIT a unit is a tile) and the
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
      if (kDual) {
        tma_prefetch_desc(tm_x2);
        tma_prefetch_desc(tm_g2);
        tma_prefetch_desc(tm_u2);
      }
      const GluSplitShape split = split_shape();
      const int64_t num_units = SPLIT ? glu_split_units(split) : CLUSTER ? m_units * n_tiles : num_tiles;
      const uint32_t rank = CLUSTER ? cluster_cta_rank() : 0u;
      int it = 0;
      for (int64_t u = first_unit(); u < num_units; u += unit_stride()) {
        const GluUnit un = unit_of(u, split);
        GluTile tile;
        if (CLUSTER) {
          const GluClusterTile ct = glu_cluster_tile(un.tile, rank, m_tiles, n_tiles);
          tile.m = ct.live ? ct.m : ct.m - 1;  // no tile: the partner's rows
          tile.n = ct.n;
        } else {
          tile = glu_tile_of(un.tile, m_tiles, n_tiles);
        }
        const int32_t m0 = (int32_t)(tile.m * kWgBM), n0 = (int32_t)(tile.n * kWgBN);
        for (int kt = un.kt0; kt < un.kt1; ++kt, ++it) {
          const int s = it % kWgStages;
          const int round = it / kWgStages;
          // Wait until the consumers released this stage's previous use
          // (CLUSTER: those of both CTAs, as the B half goes to both).
          if (round > 0) {
            mbar_wait_sched<CLUSTER>(empty_bar(s), (uint32_t)(round - 1) & 1u);
          }
          mbar_arrive_expect_tx(full_bar(s), kWgStageBytes);
          // The second K segment (dX only) restarts k at 0 on its own maps.
          const bool seg2 = kDual && kt >= k_tiles;
          const CUtensorMap* mx = seg2 ? tm_x2 : tm_x;
          const CUtensorMap* mg = seg2 ? tm_g2 : tm_g;
          const CUtensorMap* mu = seg2 ? tm_u2 : tm_u;
          const int32_t k0 = (seg2 ? kt - k_tiles : kt) * kWgBK;
          if (kTransA) {  // boxes {64 m, 64 k}: tile rows m0.., m0 + 64..
            tma_load_2d(stage_a(s), mx, full_bar(s), m0, k0);
            tma_load_2d(stage_a(s) + kWgKnBoxBytes, mx, full_bar(s), m0 + 64, k0);
          } else {
            tma_load_2d(stage_a(s), mx, full_bar(s), k0, m0);
          }
          if (CLUSTER) {
            // This CTA's half of B, into both CTAs: rank 0 the gate, rank 1
            // the up box(es), at the same offsets as below. Each full
            // barrier still expects the whole stage (A + both halves).
            const CUtensorMap* mw = rank == 0 ? mg : mu;
            const uint32_t half = rank == 0 ? 0u : (uint32_t)kWgBHalfBytes;
            if (LAYOUT == GLU_LAYOUT_NK) {
              tma_load_2d_multicast(stage_b(s) + half, mw, full_bar(s), k0, n0, 0x3);
            } else {
              tma_load_2d_multicast(stage_b(s) + half, mw, full_bar(s), n0, k0, 0x3);
              tma_load_2d_multicast(stage_b(s) + half + kWgKnBoxBytes, mw, full_bar(s), n0 + 64, k0, 0x3);
            }
          } else if (LAYOUT == GLU_LAYOUT_NK) {  // boxes {64 k, 128 n}
            tma_load_2d(stage_b(s), mg, full_bar(s), k0, n0);
            tma_load_2d(stage_b(s) + kWgBHalfBytes, mu, full_bar(s), k0, n0);
          } else {  // KN: boxes {64 n, 64 k}, two per weight
            tma_load_2d(stage_b(s), mg, full_bar(s), n0, k0);
            tma_load_2d(stage_b(s) + kWgKnBoxBytes, mg, full_bar(s), n0 + 64, k0);
            tma_load_2d(stage_b(s) + 2 * kWgKnBoxBytes, mu, full_bar(s), n0, k0);
            tma_load_2d(stage_b(s) + 3 * kWgKnBoxBytes, mu, full_bar(s), n0 + 64, k0);
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
    T* aux = static_cast<T*>(tp.aux);
    const T* d_out = static_cast<const T*>(tp.d_out);
    const int64_t ld_aux = tp.ld_aux;
    const float beta = p.beta;

    const GluSplitShape split = split_shape();
    const int64_t num_units = SPLIT ? glu_split_units(split) : CLUSTER ? m_units * n_tiles : num_tiles;
    const uint32_t rank = CLUSTER ? cluster_cta_rank() : 0u;
    // Releases stage `s` to this CTA's producer (CLUSTER: and the peer's).
    auto release = [&](int s) {
      mbar_arrive(empty_bar(s));
      if (CLUSTER) mbar_arrive_remote(empty_bar(s), rank ^ 1u);
    };
    int it = 0;
    for (int64_t u = first_unit(); u < num_units; u += unit_stride()) {
      const GluUnit un = unit_of(u, split);
      GluTile tile;
      if (CLUSTER) {
        // m tile 2i + rank; past the last one (no tile), m0 >= M and the
        // epilogue stores nothing.
        const GluClusterTile ct = glu_cluster_tile(un.tile, rank, m_tiles, n_tiles);
        tile.m = ct.m;
        tile.n = ct.n;
      } else {
        tile = glu_tile_of(un.tile, m_tiles, n_tiles);
      }
      const int64_t m0 = tile.m * kWgBM, n0 = tile.n * kWgBN;

      float acc[kWgAccRegs];
#pragma unroll
      for (int i = 0; i < kWgAccRegs; ++i) acc[i] = 0.0f;

      for (int kt = un.kt0; kt < un.kt1; ++kt, ++it) {
        const int s = it % kWgStages;
        mbar_wait_sched<CLUSTER>(full_bar(s), (uint32_t)(it / kWgStages) & 1u);
        const uint32_t a = stage_a(s) + (uint32_t)cw * (64u * 128u);
        const uint32_t b = stage_b(s);
        wgmma_fence();
#pragma unroll
        for (uint32_t kk = 0; kk < kWgBK / 16; ++kk)
          if (kTransA)  // this consumer's box: 64 rows (M-major) x 64 k, as a KN box
            wgmma_m64n256k16<T, 1, 1>(acc, glu_wgmma_desc_mn_k(a, kk), glu_wgmma_desc_mn_k(b, kk));
          else if (LAYOUT == GLU_LAYOUT_NK)
            wgmma_m64n256k16<T, 0>(acc, glu_wgmma_desc_k(a, kk), glu_wgmma_desc_k(b, kk));
          else
            wgmma_m64n256k16<T, 1>(acc, glu_wgmma_desc_k(a, kk), glu_wgmma_desc_mn_k(b, kk));
        wgmma_commit();
        // Keep this k-tile's group in flight; the previous one has retired,
        // so its stage can be refilled.
        wgmma_wait<1>();
        wgmma_fence_acc(acc);
        if (kt > un.kt0 && lane == 0) release((it - 1) % kWgStages);
      }
      wgmma_wait<0>();
      wgmma_fence_acc(acc);
      if (lane == 0) release((it - 1) % kWgStages);  // this unit's last stage

      // ---- Tail split: publish a part, or gather the parts ----------------
      if (SPLIT && un.parts > 1) {
        const int64_t tails = split.tails;
        const uint32_t ct = (uint32_t)(tid % 128);
        unsigned int* flag = ts->flags + 2 * un.tail + cw;
        if (un.part < un.parts - 1) {
          // Parts 0..P-2: accumulators to this part's slot (per thread
          // [reg/4][thread] float4, coalesced), then one release-add.
          float4* dst = reinterpret_cast<float4*>(ts->ws) + glu_split_slot(un.part, un.tail, tails, cw);
#pragma unroll
          for (int i = 0; i < kWgAccRegs / 4; ++i)
            __stcg(dst + i * 128 + ct, make_float4(acc[4 * i], acc[4 * i + 1], acc[4 * i + 2], acc[4 * i + 3]));
          // Release: the warpgroup's stores, then one GPU-scope fence and
          // the add by one thread (cumulative over the barrier).
          named_bar_sync(1u + (uint32_t)cw, 128u);
          if (ct == 0) {
            __threadfence();
            atomicAdd(flag, 1u);
          }
          continue;  // no epilogue: the finisher stores this tile
        }
        // Finisher: wait for the other parts (acquire), reset the counter for
        // the next launch, add the parts in order 0..P-2.
        if (ct == 0) {
          while (ld_acquire_gpu_u32(flag) < (unsigned int)(un.parts - 1)) __nanosleep(64);
          *flag = 0u;
        }
        named_bar_sync(1u + (uint32_t)cw, 128u);
        for (int q = 0; q < un.parts - 1; ++q) {
          const float4* src =
              reinterpret_cast<const float4*>(ts->ws) + glu_split_slot(q, un.tail, tails, cw);
#pragma unroll
          for (int i = 0; i < kWgAccRegs / 4; ++i) {
            const float4 v = __ldcg(src + i * 128 + ct);
            acc[4 * i] += v.x;
            acc[4 * i + 1] += v.y;
            acc[4 * i + 2] += v.z;
            acc[4 * i + 3] += v.w;
          }
        }
      }

      // ---- Epilogue ---------------------------------------------------------
      const int64_t row_base = m0 + 64 * cw;
      // GLU_EPI_OUT_TMA: this consumer's staging buffer; the TMA store of the
      // previous tile must have finished reading it (issued a whole main loop
      // ago, so the wait is normally free).
      const uint32_t stage_out = staging + (uint32_t)cw * kWgOutStageBytes;
      const bool store_thread = warp == 0 && lane == 0;
      if (EPI == GLU_EPI_OUT_TMA) {
        if (store_thread) tma_store_wait_read();
        named_bar_sync(1u + (uint32_t)cw, 128u);
      }
      if (EPI == GLU_EPI_OUT_PRE_TMA) {
        // Three passes through the one staging tile: out, g, u.
#pragma unroll
        for (int q = 0; q < 3; ++q) {
          if (store_thread) tma_store_wait_read();
          named_bar_sync(1u + (uint32_t)cw, 128u);
          wg_for_each_pair<T>(warp, lane, n0, N, row_base, M, bgp, bup,
                              [&](int i, uint32_t r, uint32_t c, const WgPairBias& b) {
            const float g0 = acc[i] + b.g0, g1 = acc[i + 1] + b.g1;
            const float u0 = acc[i + kWgUpRegOffset] + b.u0, u1 = acc[i + 1 + kWgUpRegOffset] + b.u1;
            float v0, v1;
            if (q == 0) {
              v0 = wg_act<ACT>(g0, beta) * u0;
              v1 = wg_act<ACT>(g1, beta) * u1;
            } else if (q == 1) {
              v0 = g0;
              v1 = g1;
            } else {
              v0 = u0;
              v1 = u1;
            }
            st_shared_u32(glu_out_stage_addr(stage_out, r, c),
                          f32_to_bits16<T>(v0) | (f32_to_bits16<T>(v1) << 16));
          });
          fence_proxy_async_smem();
          named_bar_sync(1u + (uint32_t)cw, 128u);
          if (store_thread && row_base < M)
            wg_store_block(q == 0 ? tm_out : tm_aux, stage_out, n0, N, q - 1, row_base);
        }
      }
      if (EPI == GLU_EPI_DGU_TMA) {
        // 1. The previous tile's stores have finished reading the staging
        //    tile; then this consumer's 64 x 128 block of d_out comes in with
        //    coalesced 16-byte loads (16 threads per 256-byte row), placed
        //    in the TMA 128B-swizzle layout (a 16-byte chunk stays whole).
        if (store_thread) tma_store_wait_read();
        named_bar_sync(1u + (uint32_t)cw, 128u);
        const uint32_t ct = (uint32_t)(tid % 128);
#pragma unroll
        for (uint32_t i = 0; i < 8; ++i) {
          const uint32_t c = ct + 128u * i;  // chunk 0..1023 of the block
          const uint32_t r = c >> 4, ch = c & 15u;
          const int64_t row = row_base + r, col = n0 + 8 * ch;
          if (row < M && col < N)  // N % 8 == 0: a chunk is all in or all out
            st_shared_v4(glu_out_stage_addr(stage_out, r, 8u * ch),
                         *reinterpret_cast<const uint4*>(d_out + (row * N + col)));
        }
        named_bar_sync(1u + (uint32_t)cw, 128u);
        // 2. dGate overwrites d_out in the tile (each thread rewrites the
        //    words it reads); dUp waits, packed, in the gate accumulators,
        //    which are dead from here on.
        wg_for_each_pair<T>(warp, lane, n0, N, row_base, M, bgp, bup,
                            [&](int i, uint32_t r, uint32_t c, const WgPairBias& b) {
          const uint32_t addr = glu_out_stage_addr(stage_out, r, c);
          const uint32_t dw = ld_shared_u32_ordered(addr);
          const float d0 = bits16_to_f32<T>(dw & 0xffffu), d1 = bits16_to_f32<T>(dw >> 16);
          const float g0 = acc[i] + b.g0, g1 = acc[i + 1] + b.g1;
          const float u0 = acc[i + kWgUpRegOffset] + b.u0, u1 = acc[i + 1 + kWgUpRegOffset] + b.u1;
          // As glu_bwd (accurate activation and derivative), f32 inputs.
          const float dg0 = d0 * u0 * glu_act_grad(g0, ACT, beta);
          const float dg1 = d1 * u1 * glu_act_grad(g1, ACT, beta);
          const float du0 = d0 * glu_act(g0, ACT, beta), du1 = d1 * glu_act(g1, ACT, beta);
          st_shared_u32(addr, f32_to_bits16<T>(dg0) | (f32_to_bits16<T>(dg1) << 16));
          acc[i] = __uint_as_float(f32_to_bits16<T>(du0) | (f32_to_bits16<T>(du1) << 16));
        });
        // 3. dGate -> aux plane 0; 4. dUp -> the tile -> aux plane 1.
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          if (q == 1) {
            if (store_thread) tma_store_wait_read();
            named_bar_sync(1u + (uint32_t)cw, 128u);
            wg_for_each_pair<T>(warp, lane, n0, N, row_base, M, nullptr, nullptr,
                                [&](int i, uint32_t r, uint32_t c, const WgPairBias&) {
              st_shared_u32(glu_out_stage_addr(stage_out, r, c), __float_as_uint(acc[i]));
            });
          }
          fence_proxy_async_smem();
          named_bar_sync(1u + (uint32_t)cw, 128u);
          if (store_thread && row_base < M) wg_store_block(tm_aux, stage_out, n0, N, q, row_base);
        }
      }
      // The per-fragment epilogue (none of it for the staged training ones).
      constexpr int kDirectJ =
          (EPI == GLU_EPI_OUT_PRE_TMA || EPI == GLU_EPI_DGU_TMA) ? 0 : kWgBN / 8;
#pragma unroll
      for (int j = 0; j < kDirectJ; ++j) {
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
          const float g0 = acc[i] + bg0, g1 = acc[i + 1] + bg1;
          const float u0 = acc[i + kWgUpRegOffset] + bu0, u1 = acc[i + 1 + kWgUpRegOffset] + bu1;
          // Pairs of 16-bit values: col is even and N, ld_aux are even, so
          // every 4-byte access below is aligned.
          if (EPI == GLU_EPI_OUT_TMA) {
            const float v0 = wg_act<ACT>(g0, beta) * u0;
            const float v1 = wg_act<ACT>(g1, beta) * u1;
            st_shared_u32(glu_out_stage_addr(stage_out, rc.row + 8u * (uint32_t)h, rc.col),
                          f32_to_bits16<T>(v0) | (f32_to_bits16<T>(v1) << 16));
          }
          if (EPI == GLU_EPI_OUT || EPI == GLU_EPI_OUT_PRE) {
            const float v0 = wg_act<ACT>(g0, beta) * u0;
            const float v1 = wg_act<ACT>(g1, beta) * u1;
            *reinterpret_cast<uint32_t*>(out + (row * N + col)) =
                f32_to_bits16<T>(v0) | (f32_to_bits16<T>(v1) << 16);
          }
          if (EPI == GLU_EPI_OUT_PRE) {
            T* a = aux + row * ld_aux + col;
            *reinterpret_cast<uint32_t*>(a) = f32_to_bits16<T>(g0) | (f32_to_bits16<T>(g1) << 16);
            *reinterpret_cast<uint32_t*>(a + N) = f32_to_bits16<T>(u0) | (f32_to_bits16<T>(u1) << 16);
          }
          if (kTransA) {  // no bias: g, u are the raw accumulators
            const bool seg = row >= gout->split;
            const int64_t off = (row - (seg ? gout->split : 0)) * gout->ld + col;
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
              const float v0 = hh == 0 ? g0 : u0, v1 = hh == 0 ? g1 : u1;
              void* base = seg ? gout->ptr[2 + hh] : gout->ptr[hh];
              if (EPI == GLU_EPI_DW_F32) {
                float2* d = reinterpret_cast<float2*>(static_cast<float*>(base) + off);
                float2 o = make_float2(v0, v1);
                if (gout->accumulate) {
                  const float2 old = *d;
                  o.x += old.x;
                  o.y += old.y;
                }
                *d = o;
              } else {
                uint32_t* d = reinterpret_cast<uint32_t*>(static_cast<T*>(base) + off);
                float a0 = v0, a1 = v1;
                if (gout->accumulate) {
                  const uint32_t old = *d;
                  a0 += bits16_to_f32<T>(old & 0xffffu);
                  a1 += bits16_to_f32<T>(old >> 16);
                }
                *d = f32_to_bits16<T>(a0) | (f32_to_bits16<T>(a1) << 16);
              }
            }
          }
          if (EPI == GLU_EPI_DX) {  // no bias: g, u are the raw accumulators
            T* a = aux + row * ld_aux + col;
            *reinterpret_cast<uint32_t*>(a) = f32_to_bits16<T>(g0) | (f32_to_bits16<T>(g1) << 16);
            *reinterpret_cast<uint32_t*>(a + N) = f32_to_bits16<T>(u0) | (f32_to_bits16<T>(u1) << 16);
          }
          if (EPI == GLU_EPI_DX_F32) {  // 8-byte stores: col, N, ld_aux even, aux 8-byte aligned
            float* a = static_cast<float*>(tp.aux) + row * ld_aux + col;
            *reinterpret_cast<float2*>(a) = make_float2(g0, g1);
            *reinterpret_cast<float2*>(a + N) = make_float2(u0, u1);
          }
          if (EPI == GLU_EPI_DGU) {
            // As glu_bwd (accurate activation and derivative), from the f32
            // accumulators instead of rounded pre-activations.
            const uint32_t dw = *reinterpret_cast<const uint32_t*>(d_out + (row * N + col));
            const float d0 = bits16_to_f32<T>(dw & 0xffffu), d1 = bits16_to_f32<T>(dw >> 16);
            const float dg0 = d0 * u0 * glu_act_grad(g0, ACT, beta);
            const float dg1 = d1 * u1 * glu_act_grad(g1, ACT, beta);
            const float du0 = d0 * glu_act(g0, ACT, beta), du1 = d1 * glu_act(g1, ACT, beta);
            T* a = aux + row * ld_aux + col;
            *reinterpret_cast<uint32_t*>(a) = f32_to_bits16<T>(dg0) | (f32_to_bits16<T>(dg1) << 16);
            *reinterpret_cast<uint32_t*>(a + N) = f32_to_bits16<T>(du0) | (f32_to_bits16<T>(du1) << 16);
          }
        }
      }
      if (EPI == GLU_EPI_OUT_TMA) {
        // Every thread's staging writes -> async proxy, then one thread
        // stores the two 64 x 64 boxes (TMA clips rows >= M, columns >= N).
        fence_proxy_async_smem();
        named_bar_sync(1u + (uint32_t)cw, 128u);
        if (store_thread && row_base < M) {
          tma_store_2d(tm_out, stage_out, (int32_t)n0, (int32_t)row_base);
          if (n0 + 64 < N) tma_store_2d(tm_out, stage_out + kWgOutBoxBytes, (int32_t)(n0 + 64), (int32_t)row_base);
          tma_store_commit();
        }
      }
    }
    // Outstanding TMA stores must complete before the CTA exits.
    if (kStaged && warp == 0 && lane == 0) tma_store_wait_all();
  }
  // CLUSTER: no CTA exits while its peer may still arrive on its barriers
  // or multicast into its ring (both walk the same units, so after this
  // every such access has happened).
  if (CLUSTER) cluster_sync_all();
#else
  // Built for a target without wgmma/TMA: the launcher never selects this.
  __trap();
#endif
}

template <typename T, int LAYOUT, int EPI, bool SPLIT = false, bool CLUSTER = false>
__device__ __forceinline__ void fused_glu_wgmma_dispatch(const CUtensorMap* tm_x, const CUtensorMap* tm_g,
                                                         const CUtensorMap* tm_u, const CUtensorMap* tm_out,
                                                         const CUtensorMap* tm_aux, const GluParams& p,
                                                         const GluTrainParams& tp,
                                                         const GluTailSplit* ts = nullptr) {
#define GLU_WG_BODY(A) \
  fused_glu_wgmma_body<T, LAYOUT, A, EPI, SPLIT, CLUSTER>(tm_x, tm_g, tm_u, tm_out, tm_aux, p, tp, nullptr, nullptr, nullptr, nullptr, ts)
  switch (p.act) {  // uniform over the grid
    case GLU_ACT_SILU: GLU_WG_BODY(GLU_ACT_SILU); break;
    case GLU_ACT_SWISH: GLU_WG_BODY(GLU_ACT_SWISH); break;
    case GLU_ACT_SIGMOID: GLU_WG_BODY(GLU_ACT_SIGMOID); break;
    case GLU_ACT_GELU_ERF: GLU_WG_BODY(GLU_ACT_GELU_ERF); break;
    case GLU_ACT_GELU_TANH: GLU_WG_BODY(GLU_ACT_GELU_TANH); break;
    case GLU_ACT_RELU: GLU_WG_BODY(GLU_ACT_RELU); break;
    default: GLU_WG_BODY(GLU_ACT_IDENTITY); break;
  }
#undef GLU_WG_BODY
}

}  // namespace

