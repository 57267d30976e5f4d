// Decode-sized (M <= 64) fused gated FFN: constants, the split-K and stream-K
// parameter blocks (mirrored by src/cuda/skinny.rs), the stream-K schedule's
// helpers (kernel and host test) and the host-side launch plan shared by the
// Rust launcher (which mirrors it) and kernels/tests/skinny_selftest.cu.
//
// Kernels: fused_glu_skinny_{kn,nk}_{bf16,f16}_m{16,32,64}(GluParams, GluSkinnySplit)
//          fused_glu_skinny_sk_{kn,nk}_{bf16,f16}_m{16,32,64}(GluParams, GluSkinnyStreamK)
//          fused_glu_skinny_rs_nk_{bf16,f16}_m{8,16}(GluParams, GluSkinnySplit)
//   m16: M <= 16, m32: M <= 32, m64: M <= 64 (x rows padded to 16/32/64);
//   rs: register streaming, NK weights, M <= 8 / 16.
// See fused_glu_skinny.cu for the design.
#pragma once
#include <stdint.h>
#include "glu_params.cuh"

// Output columns per block (the same columns of gate and up: 2 x 64 weight
// rows/cols), k per pipeline stage.
#define GLU_SKINNY_BN 64
#define GLU_SKINNY_BK 64
// Per configuration: warps along M (WM), warps along K (WK: intra-block
// split-K, reduced in shared memory), pipeline stages, minimum resident blocks
// per SM (__launch_bounds__), threads, dynamic smem bytes.
//   stage bytes = x [16*MT][64] + Wg, Wu [64][64] = 2048*MT + 16384
// Chosen on an H200 among 15 (MTW, WM, WK, STAGES) variants (see
// kernels/tests/skinny_selftest.cu `variants`): one m16 tile per warp (MTW=1)
// and >= 2 resident blocks per SM matter most; 1 block/SM halves throughput.
#define GLU_SKINNY_M16_WM 1
#define GLU_SKINNY_M16_WK 4
#define GLU_SKINNY_M16_STAGES 4
#define GLU_SKINNY_M16_MINB 3
#define GLU_SKINNY_M16_THREADS 128
#define GLU_SKINNY_M16_SMEM_BYTES 73728
#define GLU_SKINNY_M32_WM 2
#define GLU_SKINNY_M32_WK 2
#define GLU_SKINNY_M32_STAGES 5
#define GLU_SKINNY_M32_MINB 2
#define GLU_SKINNY_M32_THREADS 128
#define GLU_SKINNY_M32_SMEM_BYTES 102400
#define GLU_SKINNY_M64_WM 4
#define GLU_SKINNY_M64_WK 1
#define GLU_SKINNY_M64_STAGES 4
#define GLU_SKINNY_M64_MINB 2
#define GLU_SKINNY_M64_THREADS 128
#define GLU_SKINNY_M64_SMEM_BYTES 98304
// Resident blocks per SM the split-K plan counts on (every configuration
// fits at least 2: smem <= 108 KiB, <= 255 registers x 128 threads).
#define GLU_SKINNY_BLOCKS_PER_SM 2
// A split-K slice covers at least this many k-tiles (of GLU_SKINNY_BK).
#define GLU_SKINNY_MIN_KTILES_PER_SPLIT 4
// Largest M the skinny kernels take.
#define GLU_SKINNY_MAX_M 64

// Register-streaming decode kernels fused_glu_skinny_rs_nk_{bf16,f16}_m{8,16}
// (fused_glu_skinny.cu, skinny_rs_body): 4 warps of 16 columns, no shared
// memory ring; 32-deep k chunks, DEPTH of them loaded before their math;
// MINB resident blocks per SM (__launch_bounds__, <= 128 registers), which
// glu_skinny_rs_plan counts on.
#define GLU_SKINNY_RS_THREADS 128
#define GLU_SKINNY_RS_MINB 4
#define GLU_SKINNY_RS_M8_DEPTH 4
#define GLU_SKINNY_RS_M16_DEPTH 3
#define GLU_SKINNY_RS_MAX_M 16

// Split-K over blocks (grid.y = splits). With splits > 1 every block writes
// its f32 partial gate/up sums for its 64 columns to
//   ws[(split * M + row) * 2N + col]        (gate, col < N)
//   ws[(split * M + row) * 2N + N + col]    (up)
// then bumps counters[blockIdx.x]; the last block of a column tile sums the
// splits in order 0..splits-1 (deterministic), applies bias and activation,
// rounds once, stores, and resets its counter to 0.
// counters: ceil(N/64) u32, zero on entry. With splits == 1, ws and counters
// are unused (may be null).
struct GluSkinnySplit {
  float* ws;            // [splits, M, 2N] f32, or null when splits == 1
  unsigned int* counters;  // [ceil(N/64)] zeroed, or null when splits == 1
  int64_t k_per_split;  // multiple of GLU_SKINNY_BK; splits * k_per_split >= K
  int32_t splits;       // grid.y
  int32_t reserved;     // must be 0
};

// ---------------------------------------------------------------------------
// Stream-K ("striped") schedule of fused_glu_skinny_sk_* (Path::FusedSkinnyStreamK).
//
// Why: the split-K plan above gives every block one column tile (or one
// even K slice of one), so the block count is ceil(N/64) x splits. Where
// that is not a multiple of the resident block slots, the slots are either
// partly empty (N = 11008 on an H200: 172 blocks in 396 m16 slots) or, past
// one wave, the last blocks run in a second wave on an otherwise idle GPU
// (N = 14336 on an A100: 224 m16 tiles against 2 x 108 slots; N = 11008 on
// a 128-SM sm_89 part, where a 72 KiB block fits once per SM: 172 against
// 128). (The plan also counts 2 slots per SM everywhere.)
//
// What: the work is n_tiles x k_tiles iterations (one BN-column tile, one
// BK-deep k-tile), numbered tile-major: i = tile * k_tiles + kt. Block b of
// G = gridDim.x takes iterations [glu_sk_begin(b), glu_sk_begin(b + 1)):
// equal shares (+-1), so every block streams the same number of weight bytes
// whatever N and the SM count, and G = the device's resident block capacity
// is exactly one full wave. A block's range is cut at tile boundaries into
// segments; each segment is accumulated like a split-K slice. A tile whose
// k-tiles all lie in one block is stored directly. Otherwise every block
// that holds part of it writes its f32 partial to its own slot of ws and
// takes a ticket on counters[tile]; the last one adds the slots of the
// contributing blocks in block order (deterministic: the sum does not depend
// on which block came last), applies bias and activation, rounds once,
// stores, and resets the counter. No block waits for another.
//
// Slots: a tile shared by several blocks is the first or the last segment of
// each of them (a block's middle segments are whole tiles), so block b needs
// two slots: 2b for the segment holding its first iteration, 2b + 1 for the
// one holding its last. ws holds 2G slots of M x 2BN f32 (gate columns
// 0..BN-1, up columns BN..2BN-1 of the tile, row-major).
//
// Precondition: G <= n_tiles x k_tiles (every block has an iteration; an
// empty block would still be counted as a contributor of the tile its
// position falls in, and that tile would never be stored). glu_sk_blocks
// gives at most max(1, iters / 4).
struct GluSkinnyStreamK {
  float* ws;               // [2 * gridDim.x][M][2 * BN] f32, or null if no tile is shared
  unsigned int* counters;  // [ceil(N / BN)] zero on entry, left zero
};

#if defined(__CUDACC__)
#define GLU_HD __host__ __device__ __forceinline__
#else
#define GLU_HD inline
#endif

// First iteration of block b (of `blocks`) over `iters` iterations;
// glu_sk_begin(blocks) == iters. Needs b * iters < 2^63.
GLU_HD int64_t glu_sk_begin(int64_t b, int64_t blocks, int64_t iters) {
  return b * iters / blocks;
}

// The block whose range holds iteration i (0 <= i < iters): the largest b
// with glu_sk_begin(b) <= i, i.e. b * iters < (i + 1) * blocks.
GLU_HD int64_t glu_sk_block_of(int64_t i, int64_t blocks, int64_t iters) {
  return ((i + 1) * blocks - 1) / iters;
}

// Blocks that hold part of tile `tile`: first .. last (inclusive).
GLU_HD int64_t glu_sk_first_block(int64_t tile, int64_t k_tiles, int64_t blocks, int64_t iters) {
  return glu_sk_block_of(tile * k_tiles, blocks, iters);
}
GLU_HD int64_t glu_sk_last_block(int64_t tile, int64_t k_tiles, int64_t blocks, int64_t iters) {
  return glu_sk_block_of((tile + 1) * k_tiles - 1, blocks, iters);
}

// Slot of block b's partial sums of tile `tile` (a tile shared by several
// blocks; see above): 2b if the tile holds b's first iteration, else 2b + 1.
GLU_HD int64_t glu_sk_slot(int64_t b, int64_t tile, int64_t k_tiles, int64_t blocks,
                           int64_t iters) {
  return 2 * b + (glu_sk_begin(b, blocks, iters) / k_tiles == tile ? 0 : 1);
}

// The slot the finisher reads for contributor s (0-based, in block order)
// of a shared tile whose first contributor is block `first`, its slot of
// that tile being `slot0` (glu_sk_slot). Every later contributor's range
// starts inside the tile (the first one holds the tile's first iteration),
// so the tile is its first segment: slot 2 (first + s).
GLU_HD int64_t glu_sk_contributor_slot(int64_t s, int64_t first, int64_t slot0) {
  return s == 0 ? slot0 : 2 * (first + s);
}

// One segment of a block's range: the iterations [i, i_end) of the block
// that remain, cut at the next tile boundary. The kernel walks
//   for (i = begin(b); i < begin(b + 1); i += seg.kt1 - seg.kt0)
// and accumulates k-tiles [kt0, kt1) of column tile `tile`.
struct GluSkSegment {
  int64_t tile, kt0, kt1;
};
GLU_HD GluSkSegment glu_sk_segment(int64_t i, int64_t i_end, int64_t k_tiles) {
  GluSkSegment s;
  s.tile = i / k_tiles;
  s.kt0 = i - s.tile * k_tiles;
  s.kt1 = s.kt0 + (i_end - i) < k_tiles ? s.kt0 + (i_end - i) : k_tiles;
  return s;
}

// Grid of the stream-K launch: one block per resident slot (`capacity`
// blocks per SM, from the occupancy query, times the SMs), but no more than
// one block per GLU_SKINNY_MIN_KTILES_PER_SPLIT iterations, and at least 1.
GLU_HD int64_t glu_sk_blocks(int64_t iters, int64_t capacity, int64_t sm_count) {
  const int64_t slots = (capacity > 0 ? capacity : 1) * (sm_count > 0 ? sm_count : 1);
  const int64_t most = iters / GLU_SKINNY_MIN_KTILES_PER_SPLIT;
  const int64_t g = slots < most ? slots : most;
  return g > 0 ? g : 1;
}

#ifdef __cplusplus
#include <stddef.h>
static_assert(offsetof(GluSkinnyStreamK, counters) == 8, "GluSkinnyStreamK layout");
static_assert(sizeof(GluSkinnyStreamK) == 16, "GluSkinnyStreamK layout");
static_assert(offsetof(GluSkinnySplit, ws) == 0, "GluSkinnySplit layout");
static_assert(offsetof(GluSkinnySplit, counters) == 8, "GluSkinnySplit layout");
static_assert(offsetof(GluSkinnySplit, k_per_split) == 16, "GluSkinnySplit layout");
static_assert(offsetof(GluSkinnySplit, splits) == 24, "GluSkinnySplit layout");
static_assert(sizeof(GluSkinnySplit) == 32, "GluSkinnySplit layout");
static_assert(GLU_SKINNY_M16_SMEM_BYTES ==
                  GLU_SKINNY_M16_STAGES * (2048 * 1 + 2 * GLU_SKINNY_BN * GLU_SKINNY_BK * 2),
              "m16 smem");
static_assert(GLU_SKINNY_M32_SMEM_BYTES ==
                  GLU_SKINNY_M32_STAGES * (2048 * 2 + 2 * GLU_SKINNY_BN * GLU_SKINNY_BK * 2),
              "m32 smem");
static_assert(GLU_SKINNY_M64_SMEM_BYTES ==
                  GLU_SKINNY_M64_STAGES * (2048 * 4 + 2 * GLU_SKINNY_BN * GLU_SKINNY_BK * 2),
              "m64 smem");
static_assert(GLU_SKINNY_M16_THREADS == 32 * GLU_SKINNY_M16_WM * GLU_SKINNY_M16_WK, "m16");
static_assert(GLU_SKINNY_M32_THREADS == 32 * GLU_SKINNY_M32_WM * GLU_SKINNY_M32_WK, "m32");
static_assert(GLU_SKINNY_M64_THREADS == 32 * GLU_SKINNY_M64_WM * GLU_SKINNY_M64_WK, "m64");

// Host-side launch plan (src/cuda/skinny.rs implements the same function,
// and there also skips a configuration whose ring exceeds the device's
// shared memory per block: the 32-row one on sm_86/89; this one, used by
// the self-tests, assumes a device that takes them all, as the H100/H200
// and A100 do).
struct GluSkinnyPlan {
  int m_pad;            // 16, 32 or 64: picks the kernel
  int threads;
  int smem;
  int64_t n_tiles;      // grid.x
  int64_t splits;       // grid.y
  int64_t k_per_split;
};

// The K slices of a split-K plan: `wanted` clamped to at least 1 and at most
// one slice per GLU_SKINNY_MIN_KTILES_PER_SPLIT k-tiles of `bk`, whole k-tiles
// per slice, no empty slice (src/cuda/skinny.rs `split_k` mirrors it).
static inline void glu_skinny_split_k(GluSkinnyPlan& p, int64_t k, int64_t wanted, int64_t bk) {
  const int64_t k_tiles = (k + bk - 1) / bk;
  int64_t max_splits = k_tiles / GLU_SKINNY_MIN_KTILES_PER_SPLIT;
  if (max_splits < 1) max_splits = 1;
  int64_t splits = wanted < 1 ? 1 : wanted > max_splits ? max_splits : wanted;
  const int64_t kt_per = (k_tiles + splits - 1) / splits;
  p.k_per_split = kt_per * bk;
  p.splits = (k_tiles + kt_per - 1) / kt_per;  // no empty slice
}

// `bn`, `bk`: the tile (the shipped kernels' 64 x 64 by default;
// kernels/tests/skinny_selftest.cu also plans its tile variants with it).
static inline GluSkinnyPlan glu_skinny_plan(int64_t m, int64_t n, int64_t k, int64_t sm_count,
                                            int64_t bn = GLU_SKINNY_BN,
                                            int64_t bk = GLU_SKINNY_BK) {
  GluSkinnyPlan p;
  if (m <= 16) {
    p.m_pad = 16; p.threads = GLU_SKINNY_M16_THREADS; p.smem = GLU_SKINNY_M16_SMEM_BYTES;
  } else if (m <= 32) {
    p.m_pad = 32; p.threads = GLU_SKINNY_M32_THREADS; p.smem = GLU_SKINNY_M32_SMEM_BYTES;
  } else {
    p.m_pad = 64; p.threads = GLU_SKINNY_M64_THREADS; p.smem = GLU_SKINNY_M64_SMEM_BYTES;
  }
  p.n_tiles = (n + bn - 1) / bn;
  // One wave of resident blocks: split K only while the column tiles leave
  // slots empty, and keep every slice >= MIN_KTILES k-tiles.
  glu_skinny_split_k(p, k, sm_count * GLU_SKINNY_BLOCKS_PER_SM / p.n_tiles, bk);
  return p;
}

// Launch plan of the register-streaming kernels (M <= 16, NK weights;
// src/cuda/skinny.rs mirrors it). The same column tiles and split-K fields
// as glu_skinny_plan (k_per_split a multiple of GLU_SKINNY_BK, so of the
// kernels' 32-deep chunks), but the grid is sized to the RS kernels'
// residency: as many K slices as keep every block of the launch resident
// at once (ceil(N/64) x splits <= MINB x SMs: one wave, every block
// streaming the same bytes), at least GLU_SKINNY_MIN_KTILES_PER_SPLIT
// k-tiles per slice. `smem` is 0 (static shared memory only).
static inline GluSkinnyPlan glu_skinny_rs_plan(int64_t m, int64_t n, int64_t k,
                                               int64_t sm_count) {
  GluSkinnyPlan p;
  p.m_pad = m <= 8 ? 8 : 16;
  p.threads = GLU_SKINNY_RS_THREADS;
  p.smem = 0;
  p.n_tiles = (n + GLU_SKINNY_BN - 1) / GLU_SKINNY_BN;
  glu_skinny_split_k(p, k, sm_count * GLU_SKINNY_RS_MINB / p.n_tiles, GLU_SKINNY_BK);
  return p;
}
#endif
