// Index math of the Hopper (sm_90a) fused kernel, as plain integer functions
// that compile for the host too (kernels/tests/wgmma_layout_test.cpp checks
// them with g++, no GPU):
//   * the tile shape and shared-memory budget of fused_glu_wgmma_*;
//   * the wgmma shared-memory matrix descriptor (K-major, 128-byte swizzle)
//     and a model of the addresses the tensor core reads through it;
//   * the byte layout the TMA engine writes for a 128B-swizzled box;
//   * the m64nNk16 f32 accumulator fragment -> (row, col) map;
//   * the grouped tile order (CTA index -> (m tile, n tile)).
// No CUDA headers: this file is included by glu_hopper.cuh and by host tests.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define GLU_HD __host__ __device__ __forceinline__
#else
#define GLU_HD inline
#endif

// ---------------------------------------------------------------------------
// Tile shape (fused_glu_wgmma_*). Mirrored by src/cuda/hopper.rs.
//   CTA tile: kWgBM rows of x/out  x  kWgBN output columns, k-step kWgBK.
//   B tile of a stage = kWgBN gate rows then kWgBN up rows (NK layout: a row
//   is one output column's k-slice), i.e. one 256-wide wgmma N.
// ---------------------------------------------------------------------------
constexpr int kWgBM = 128;        // 2 consumer warpgroups x 64 rows
constexpr int kWgBN = 128;        // output columns (gate 128 + up 128 = wgmma n256)
constexpr int kWgBK = 64;         // 64 x 2 B = 128 B = one swizzle row
constexpr int kWgStages = 4;
constexpr int kWgThreads = 384;   // producer warpgroup + 2 consumer warpgroups
constexpr int kWgGroupM = 16;     // m tiles per group of the tile order
constexpr uint32_t kWgABytes = kWgBM * kWgBK * 2;        // 16 KiB
constexpr uint32_t kWgBHalfBytes = kWgBN * kWgBK * 2;    // 16 KiB (gate or up)
constexpr uint32_t kWgBBytes = 2 * kWgBHalfBytes;        // 32 KiB
constexpr uint32_t kWgStageBytes = kWgABytes + kWgBBytes; // 48 KiB
// Dynamic smem: stages + barriers + 1 KiB slack to align the ring to 1024 B
// (the 128B swizzle pattern repeats every 1024 B and TMA/wgmma assume the
// atom starts 1024-aligned).
constexpr uint32_t kWgBarrierBytes = 2 * kWgStages * 8;
constexpr uint32_t kWgSmemBytes = kWgStages * kWgStageBytes + kWgBarrierBytes + 1024;
static_assert(kWgSmemBytes <= 227 * 1024, "exceeds the 227 KiB opt-in shared memory of sm_90");
static_assert(kWgABytes % 1024 == 0 && kWgBHalfBytes % 1024 == 0, "1024-aligned sub-tiles");

// Staged epilogue (fused_glu_wgmma_staged_*): each consumer warpgroup writes
// its 64 x 128 output tile to shared memory as two 64 x 64 boxes in the TMA
// 128B-swizzle layout, then one thread stores them with TMA. The staging
// buffers sit after the stage ring, the barriers after them.
constexpr uint32_t kWgOutBoxBytes = 64u * 128u;               // 64 rows x 64 cols x 2 B
constexpr uint32_t kWgOutStageBytes = 2u * kWgOutBoxBytes;    // one consumer: 16 KiB
constexpr uint32_t kWgSmemBytesStaged = kWgSmemBytes + 2u * kWgOutStageBytes;
static_assert(kWgSmemBytesStaged <= 227 * 1024, "staged epilogue exceeds 227 KiB");

// ---------------------------------------------------------------------------
// 128-byte swizzle (TMA CU_TENSOR_MAP_SWIZZLE_128B == wgmma layout type 1):
// within each 1024-byte block, the 16-byte chunk index (address bits 4..6)
// is XORed with the 128-byte row index (address bits 7..9). The XOR is a
// function of the absolute shared address, so tiles must be 1024-aligned.
// ---------------------------------------------------------------------------
GLU_HD uint32_t glu_sw128(uint32_t addr) { return addr ^ (((addr >> 7) & 7u) << 4); }

// Byte address TMA writes for element (row r, inner index c) of a box whose
// inner extent is 128 bytes (64 x 16-bit), landing at 1024-aligned `base`.
GLU_HD uint32_t glu_tma_sw128_addr(uint32_t base, uint32_t r, uint32_t c) {
  return glu_sw128(base + r * 128u + c * 2u);
}

// Staging address of element (r < 64, c < 128) of a consumer's output tile
// at 1024-aligned `base`: box c / 64, TMA 128B-swizzle layout inside it.
GLU_HD uint32_t glu_out_stage_addr(uint32_t base, uint32_t r, uint32_t c) {
  return glu_tma_sw128_addr(base + (c / 64u) * kWgOutBoxBytes, r, c % 64u);
}

// wgmma matrix descriptor (PTX ISA 9.7.15.5.1 "Matrix Descriptor Format"):
//   bits  0..13  start address >> 4
//   bits 16..29  leading-dimension byte offset >> 4 (unused for swizzled
//                K-major layouts; 1 by convention)
//   bits 32..45  stride-dimension byte offset >> 4: distance between
//                consecutive 8-row core-matrix groups = 8 rows x 128 B
//   bits 49..51  base offset (0: atoms are 1024-aligned)
//   bits 62..63  swizzle mode: 1 = 128B
GLU_HD uint64_t glu_wgmma_desc_sw128(uint32_t smem_addr) {
  return (uint64_t)((smem_addr & 0x3FFFFu) >> 4) | ((uint64_t)1 << 16) |
         ((uint64_t)(1024u >> 4) << 32) | ((uint64_t)1 << 62);
}

// Model of the address the tensor core reads for element (row r, k) of the
// 16-bit K-major operand described by `desc` (r < 64 for A, < 256 for B;
// k < 16 within one k16 instruction): canonical layout start + (r/8)*SBO +
// (r%8)*128 + 2k, then the 128B swizzle on the absolute address.
GLU_HD uint32_t glu_wgmma_read_addr(uint64_t desc, uint32_t r, uint32_t k) {
  const uint32_t start = (uint32_t)(desc & 0x3FFFu) << 4;
  const uint32_t sbo = (uint32_t)((desc >> 32) & 0x3FFFu) << 4;
  return glu_sw128(start + (r / 8u) * sbo + (r % 8u) * 128u + k * 2u);
}

// Descriptor of k16 step `kk` (0..3) of a [rows][64] 128B-swizzled tile at
// 1024-aligned `tile`: the start address advances by 16 elements = 32 bytes
// inside the swizzle row (the XOR uses bits 7..9, which this never touches).
GLU_HD uint64_t glu_wgmma_desc_k(uint32_t tile, uint32_t kk) {
  return glu_wgmma_desc_sw128(tile + kk * 32u);
}

// ---- KN weights (w[k*N + n]): B is N-major --------------------------------
// TMA box {64 (n), 64 (k)}: 64 k-rows of 128 bytes (64 consecutive n), 8 KiB,
// 128B-swizzled. The B tile of a stage is four such boxes: gate n0..n0+63,
// gate n0+64.., up n0.., up n0+64.., at +0, +8, +16, +24 KiB. For an N-major
// operand with a swizzle the descriptor's two offsets swap roles (PTX ISA
// matrix descriptor; CUTLASS make_gmma_desc<Major::MN>): LBO = distance
// between 64-element N atoms (one box: 8 KiB), SBO = distance between 8-row
// k groups (1024 B). A k16 step advances the start by 16 rows = 2048 B.
constexpr uint32_t kWgKnBoxBytes = 64u * 128u;  // 8 KiB
GLU_HD uint64_t glu_wgmma_desc_mn_sw128(uint32_t smem_addr) {
  return (uint64_t)((smem_addr & 0x3FFFFu) >> 4) | ((uint64_t)(kWgKnBoxBytes >> 4) << 16) |
         ((uint64_t)(1024u >> 4) << 32) | ((uint64_t)1 << 62);
}
GLU_HD uint64_t glu_wgmma_desc_mn_k(uint32_t tile, uint32_t kk) {
  return glu_wgmma_desc_mn_sw128(tile + kk * 16u * 128u);
}
// Model of the address read for element (k < 16, n < 256) of an N-major
// 128B-swizzled operand: start + (n/64)*LBO + (k/8)*SBO + (k%8)*128 + 2*(n%64).
GLU_HD uint32_t glu_wgmma_read_addr_mn(uint64_t desc, uint32_t k, uint32_t n) {
  const uint32_t start = (uint32_t)(desc & 0x3FFFu) << 4;
  const uint32_t lbo = (uint32_t)((desc >> 16) & 0x3FFFu) << 4;
  const uint32_t sbo = (uint32_t)((desc >> 32) & 0x3FFFu) << 4;
  return glu_sw128(start + (n / 64u) * lbo + (k / 8u) * sbo + (k % 8u) * 128u + (n % 64u) * 2u);
}

// ---------------------------------------------------------------------------
// Accumulator fragment of wgmma m64nNk16 with f32 D (PTX ISA 9.7.15.5.2,
// "Register fragment D"): warp w of the warpgroup owns rows 16w..16w+15;
// register i of lane l holds
//   row = 16w + l/4 + 8*((i/2)%2),  col = 8*(i/4) + 2*(l%4) + (i%2).
// With n256 = 128 gate columns then 128 up columns, gate column c is in
// register i and up column c in register i + 64 of the same thread.
// ---------------------------------------------------------------------------
struct GluRC {
  uint32_t row, col;
};
GLU_HD GluRC glu_wgmma_acc_rc(uint32_t warp, uint32_t lane, uint32_t i) {
  GluRC rc;
  rc.row = 16u * warp + lane / 4u + 8u * ((i / 2u) % 2u);
  rc.col = 8u * (i / 4u) + 2u * (lane % 4u) + (i % 2u);
  return rc;
}
constexpr int kWgAccRegs = 128;       // n256 / 2 f32 per thread
constexpr int kWgUpRegOffset = 64;    // up column c sits 64 registers after gate column c

// ---------------------------------------------------------------------------
// Grouped tile order: consecutive CTAs walk kWgGroupM m tiles (column of
// tiles) before moving to the next n tile, so the CTAs resident at one time
// share both x rows and weight columns in L2.
// ---------------------------------------------------------------------------
struct GluTile {
  int64_t m, n;
};
GLU_HD GluTile glu_tile_of(int64_t t, int64_t m_tiles, int64_t n_tiles,
                           int64_t group_m = kWgGroupM) {
  const int64_t per_group = group_m * n_tiles;
  const int64_t group = t / per_group;
  const int64_t first_m = group * group_m;
  const int64_t rem_m = m_tiles - first_m;
  const int64_t gsz = rem_m < group_m ? rem_m : group_m;
  const int64_t in_group = t % per_group;
  GluTile tile;
  tile.m = first_m + in_group % gsz;
  tile.n = in_group / gsz;
  return tile;
}

// Cluster schedule (fused_glu_wgmma_cluster_*): unit u of the
// ceil(m_tiles / 2) x n_tiles pair units, in the grouped order over pair
// rows with kWgGroupM / 2 pair rows per group (so a group spans kWgGroupM m
// tiles, the plain order's x footprint in L2); the CTA of cluster rank
// `rank` takes m tile 2i + rank of pair row i. `live` is false for rank 1
// of the last pair row when m_tiles is odd: that CTA has no tile.
struct GluClusterTile {
  int64_t m, n;
  bool live;
};
GLU_HD GluClusterTile glu_cluster_tile(int64_t u, uint32_t rank, int64_t m_tiles, int64_t n_tiles) {
  const GluTile p = glu_tile_of(u, (m_tiles + 1) / 2, n_tiles, kWgGroupM / 2);
  GluClusterTile t;
  t.m = 2 * p.m + (int64_t)rank;
  t.n = p.n;
  t.live = t.m < m_tiles;
  return t;
}

// ---------------------------------------------------------------------------
// Tail split (fused_glu_wgmma_split_*). With T tiles on a schedule width of
// W CTAs (one per SM), the last T % W tiles form a partial wave that leaves
// SMs idle for a whole tile time. The split schedule cuts each of those
// r = T % W tail tiles along K into P parts: units 0 .. T - r - 1 are the
// whole tiles (k-tiles 0 .. k_tiles), then P * r part units, part p of tail
// tile i being unit T - r + p * r + i (k-tiles [p k_tiles / P,
// (p + 1) k_tiles / P)). Parts 0 .. P-2 store their f32 accumulators to a
// workspace slot and bump a counter; part P-1 (the finisher, always the
// highest unit of its tile) waits for the P-1 others, adds their partial
// sums in part order and runs the epilogue. A CTA only ever waits for units
// numbered below its own, which never wait themselves: no cycle. The tail
// then costs ceil(P r / W) / P tile times instead of one.
// Mirrored by src/cuda/hopper.rs (plan and unit count).
// ---------------------------------------------------------------------------
struct GluUnit {
  int64_t tile;  // tile index (glu_tile_of order)
  int32_t tail;  // tail index 0 .. r-1 (workspace slot / counter), -1 for a whole tile
  int32_t part;  // 0 .. parts-1
  int32_t parts; // 1 for a whole tile
  int32_t kt0, kt1;  // k-tile range [kt0, kt1)
};
// The schedule's shape, computed once per launch: whole tiles, tail tiles,
// parts. 32-bit: the launcher takes the split kernel only when the tile and
// unit counts fit (src/cuda/hopper.rs), so the per-unit arithmetic stays in
// 32-bit registers (the producer warpgroup has 40).
struct GluSplitShape {
  int32_t full, tails, parts;
};
GLU_HD GluSplitShape glu_split_shape(int64_t tiles, int64_t width, int32_t parts) {
  GluSplitShape s;
  s.tails = (int32_t)(tiles % width);
  s.full = (int32_t)(tiles - s.tails);
  s.parts = parts < 1 ? 1 : parts;
  return s;
}
GLU_HD int64_t glu_split_units(GluSplitShape s) {
  return (int64_t)s.full + (int64_t)s.tails * s.parts;
}
GLU_HD GluUnit glu_split_unit(int32_t u, GluSplitShape s, int32_t k_tiles) {
  GluUnit x;
  if (u < s.full || s.parts <= 1) {
    x.tile = u; x.tail = -1; x.part = 0; x.parts = 1; x.kt0 = 0; x.kt1 = k_tiles;
    return x;
  }
  const int32_t v = u - s.full;
  x.tail = v % s.tails;
  x.part = v / s.tails;
  x.parts = s.parts;
  x.tile = s.full + x.tail;
  x.kt0 = k_tiles * x.part / s.parts;
  x.kt1 = k_tiles * (x.part + 1) / s.parts;
  return x;
}
// Workspace of the tail split, in float4: slot (part p < P-1, tail i,
// consumer c) holds that consumer's 128 threads x kWgAccRegs f32, stored as
// [kWgAccRegs / 4][128 threads] float4 (each warp's stores are contiguous).
constexpr int64_t kWgSplitSlotF4 = (int64_t)(kWgAccRegs / 4) * 128;
GLU_HD int64_t glu_split_slot(int64_t part, int64_t tail, int64_t tails, int64_t consumer) {
  return ((part * tails + tail) * 2 + consumer) * kWgSplitSlotF4;
}

// Persistent grid: at most one CTA per SM (the kernel's shared memory allows
// one), never more CTAs than tiles. Mirrored by src/cuda/hopper.rs.
GLU_HD int64_t glu_wgmma_grid(int64_t m, int64_t n, int64_t sm_count) {
  const int64_t tiles = ((m + kWgBM - 1) / kWgBM) * ((n + kWgBN - 1) / kWgBN);
  return tiles < sm_count ? tiles : sm_count;
}
