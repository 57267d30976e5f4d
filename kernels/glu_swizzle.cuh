// XOR-swizzled shared-memory tile addressing for fused_glu_mma_* (and the
// fragment probe). Plain C++ so kernels/tests/swizzle_test.cpp checks the very
// same functions on the host.
//
// Shared memory has 32 banks x 4 B: a 16-byte chunk occupies 4 banks and the
// 8 chunk "slots" of one 128-byte line cover all 32 banks. ldmatrix serves
// one 8x8 matrix (8 row addresses of 16 B) per phase; it is conflict-free
// iff the 8 addresses fall in 8 distinct slots (addr / 16 % 8 distinct).
//
// Tile kinds (all 16-bit elements, chunk = 8 elements = 16 B):
//   * 64-byte rows (4 chunks):  x tile [BM rows][BK=32 k] and NK weight tiles
//     [BN rows (n)][BK=32 k]. Two rows share a 128 B line; the chunk is XORed
//     with (row >> 1) & 3, so 8 consecutive rows at one logical chunk hit
//     slots (row & 1) * 4 + (chunk ^ ((row >> 1) & 3)) = all 8 distinct.
//   * 128-byte rows (8 chunks): [32 rows][64 n] KN tiles (fragment probe).
//     chunk ^ (row & 7): 8 consecutive rows -> 8 distinct slots.
//   * 256-byte rows (16 chunks): KN weight tile of fused_glu_mma
//     [BK=32 rows (k)][BN=128 n]. chunk ^ (row & 7) (only the low 3 bits of
//     the chunk change): 8 consecutive rows at one logical chunk -> 8
//     distinct slots; 8 consecutive chunks of one row -> 8 distinct slots.
// Both are bijections on the chunks of a row, and rows stay in place, so
// cp.async 16-byte stores of 8 consecutive chunks are conflict-free too.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define GLU_HD __host__ __device__ __forceinline__
#else
#define GLU_HD inline
#endif

// Byte offset of 16-byte chunk `chunk` (0..3) of row `row` in a tile with
// 64-byte rows.
GLU_HD uint32_t glu_swz64(uint32_t row, uint32_t chunk) {
  return row * 64u + ((chunk ^ ((row >> 1) & 3u)) << 4);
}

// Byte offset of 16-byte chunk `chunk` (0..7) of row `row` in a tile with
// 128-byte rows.
GLU_HD uint32_t glu_swz128(uint32_t row, uint32_t chunk) {
  return row * 128u + ((chunk ^ (row & 7u)) << 4);
}

// Byte offset of 16-byte chunk `chunk` (0..15) of row `row` in a tile with
// 256-byte rows.
GLU_HD uint32_t glu_swz256(uint32_t row, uint32_t chunk) {
  return row * 256u + ((chunk ^ (row & 7u)) << 4);
}

// Byte offset of 16-byte chunk `chunk` (0..31) of row `row` in a tile with
// 512-byte rows: the f32 KN tile of the tf32 kernel, [16 k][128 n], read with
// 32-bit loads. A load of one B fragment register touches rows r0 + t
// (t = 0..3, r0 a multiple of 4) at columns n0 + g (g = 0..7, n0 a multiple
// of 8), i.e. chunks c0, c0 + 1 (c0 even) of 4 rows: chunk ^ 2 (row & 3)
// sends those 8 (row, chunk) pairs to 8 distinct slots (the 4 XOR values
// are even, so c0 stays even and c0 + 1 odd), 4 words each: all 32 banks.
// Within a row it is a bijection of each group of 8 chunks, so cp.async
// 16-byte stores of consecutive chunks of a row stay conflict-free.
GLU_HD uint32_t glu_swz512(uint32_t row, uint32_t chunk) {
  return row * 512u + ((chunk ^ ((row & 3u) << 1)) << 4);
}

// Grouped ("super-tile") block order for L2 reuse. The grid stays 2-D
// (x = ceil(N/BN) column tiles, y = ceil(M/BM) row tiles); the linear block
// id pid = y * gridDim.x + x (the hardware's dispatch order) is remapped so
// that consecutive blocks walk `group` row tiles first, then the next column
// tile: a wave of resident blocks covers ~group row tiles x (wave/group)
// column tiles, so each weight k-slab is fetched from DRAM once per group of
// row tiles instead of once per row tile. The last group may be shorter.
// Bijection of [0, tiles_m * tiles_n) onto the tile grid (tested on the host).
GLU_HD void glu_grouped_tile(uint64_t pid, uint64_t tiles_m, uint64_t tiles_n, uint64_t group,
                             uint64_t* tile_m, uint64_t* tile_n) {
  const uint64_t per_group = group * tiles_n;
  const uint64_t gid = pid / per_group;
  const uint64_t first_m = gid * group;
  const uint64_t rem_m = tiles_m - first_m;
  const uint64_t gsize = rem_m < group ? rem_m : group;
  const uint64_t in_group = pid - gid * per_group;
  *tile_m = first_m + in_group % gsize;
  *tile_n = in_group / gsize;
}

// ldmatrix x4 lane -> (row, chunk) maps used by the fragment loaders.
// A operand (16x16 at rows m0.., k chunk kc0 = k0/8), non-trans: matrices
// 0..3 = (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
// (rows 8-15, k 8-15) -> registers a0a1, a2a3, a4a5, a6a7.
GLU_HD uint32_t glu_a_ld_row(uint32_t m0, uint32_t lane) { return m0 + (lane & 15u); }
GLU_HD uint32_t glu_a_ld_chunk(uint32_t kc0, uint32_t lane) { return kc0 + (lane >> 4); }

// B operand, two n8 tiles (n0..n0+15) x k16, matrices 0..3 =
// (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
// -> registers b0b1/b2b3 of n-tile 0, then b0b1/b2b3 of n-tile 1.
// NK tile (rows = n, contiguous k), non-trans ldmatrix:
GLU_HD uint32_t glu_bnk_ld_row(uint32_t n0, uint32_t lane) {
  return n0 + (lane & 7u) + ((lane >> 4) << 3);
}
GLU_HD uint32_t glu_bnk_ld_chunk(uint32_t kc0, uint32_t lane) {
  return kc0 + ((lane >> 3) & 1u);
}
// KN tile (rows = k, contiguous n), ldmatrix.trans:
GLU_HD uint32_t glu_bkn_ld_row(uint32_t k0, uint32_t lane) {
  return k0 + (lane & 7u) + (((lane >> 3) & 1u) << 3);
}
GLU_HD uint32_t glu_bkn_ld_chunk(uint32_t nc0, uint32_t lane) { return nc0 + (lane >> 4); }

// cp.async plan of fused_glu_mma: thread `tid` copies, per operand and
// k-tile, the chunks id = tid + threads * j (j < 512 / threads) of the
// operand's 512 chunks of 16 bytes. Each chunk's source is fixed apart from
// its k: the loader keeps a cursor per chunk, set up once per block from
// the functions below and advanced by `step` elements per k-tile, and
// copies the chunk of the k-tile that starts at k0 iff
//   row_ok && kin < K - k0     (glu_mma_chunk_valid, glu_mma_k_left)
// (otherwise it zero-fills the chunk from the operand's base pointer).
// K >= 1 (the crate rejects K = 0), so the base pointer addresses at least
// one 16-byte chunk.
// `ce` = elements per 16-byte chunk (8 for 16-bit types, 4 for f32),
// `tile_k` = k elements per k-tile (4 * ce: 64 bytes of k).
struct GluMmaChunkSrc {
  uint32_t smem;  // byte offset of the chunk in the operand's tile
  int64_t off;    // element offset of the chunk at k0 = 0 (0 when !row_ok)
  int64_t step;   // elements per k-tile
  uint32_t kin;   // k of the chunk's first element within its k-tile
  bool row_ok;    // x: row m < M; NK: row n < N; KN: column n < N
};

// x [M, K] (rows = m) and NK weights [N, K] (rows = n): tile [128 rows][4
// chunks of k], 64-byte rows (glu_swz64); chunk id -> row id / 4, chunk id % 4.
GLU_HD GluMmaChunkSrc glu_mma_src_rowk(uint32_t id, int64_t row0, int64_t rows, int64_t K,
                                       uint32_t ce) {
  const uint32_t r = id >> 2, c = id & 3u;
  const int64_t gr = row0 + (int64_t)r;
  const bool ok = gr < rows;
  GluMmaChunkSrc s;
  s.smem = glu_swz64(r, c);
  s.off = ok ? gr * K + (int64_t)(c * ce) : 0;
  s.step = 4 * (int64_t)ce;
  s.kin = c * ce;
  s.row_ok = ok;
  return s;
}

// KN weights [K, N]: tile [4 * ce rows of k][128 / ce chunks of n]; 16-bit
// types: 16 chunks, 256-byte rows (glu_swz256); f32: 32 chunks, 512-byte
// rows (glu_swz512). Chunk id -> row id / chunks, chunk id % chunks.
GLU_HD GluMmaChunkSrc glu_mma_src_kn(uint32_t id, int64_t n0, int64_t N, uint32_t ce) {
  const uint32_t chunks = 128u / ce;
  const uint32_t r = id / chunks, c = id % chunks;
  const int64_t gn = n0 + (int64_t)(c * ce);
  const bool ok = gn < N;
  GluMmaChunkSrc s;
  s.smem = ce == 4u ? glu_swz512(r, c) : glu_swz256(r, c);
  s.off = ok ? (int64_t)r * N + gn : 0;
  s.step = 4 * (int64_t)ce * N;
  s.kin = r;
  s.row_ok = ok;
  return s;
}

// Whether a chunk is copied (else zero-filled) in the k-tile with `k_left`
// valid k (glu_mma_k_left): its row/column is inside the matrix and its k
// is below K. The kernel's StageLoader and the host emulation both call it.
GLU_HD bool glu_mma_chunk_valid(bool row_ok, uint32_t kin, uint32_t k_left) {
  return row_ok && kin < k_left;
}

// The k elements of the k-tile at k0 that lie inside [0, K), clamped to
// [0, tile_k]: chunk `kin` is copied iff kin < glu_mma_k_left(...).
// Uniform per k-tile; 0 for the k-tiles past the end that the pipeline
// still issues (zero-filled, never used).
GLU_HD uint32_t glu_mma_k_left(int64_t K, int64_t k0, uint32_t tile_k) {
  const int64_t left = K - k0;
  return left <= 0 ? 0u : (left >= (int64_t)tile_k ? tile_k : (uint32_t)left);
}
