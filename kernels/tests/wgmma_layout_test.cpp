// Host test of the Hopper kernel's index math (kernels/glu_hopper_layout.cuh):
//   1. the wgmma descriptor (K-major, 128B swizzle), advanced by k16 steps,
//      reads element (r, k) of every stage tile exactly where TMA's 128B
//      swizzle wrote it (model of PTX ISA 9.7.15.5.1 vs CU_TENSOR_MAP_SWIZZLE_128B);
//   2. descriptor bit fields encode what the kernel means;
//   3. the m64n256 f32 accumulator fragment covers the 64x256 tile exactly
//      once, and gate column c / up column c share a thread (registers i, i+64);
//   4. the grouped tile order is a bijection onto (m tile, n tile).
// Build: g++ -std=c++17 -O1 -Wall -I kernels kernels/tests/wgmma_layout_test.cpp
#include "glu_hopper_layout.cuh"

#include <cstdio>
#include <cstdlib>
#include <vector>

static int g_fail = 0;
#define CHECK(c, ...) do { if (!(c)) { std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
  std::printf(__VA_ARGS__); std::printf("\n"); if (++g_fail > 20) std::exit(1); } } while (0)

static void test_swizzle_desc() {
  // A ring at an arbitrary 1024-aligned shared address; stage s, A tile
  // (128 rows, consumer cw uses rows 64cw..) and B tile (gate 128 + up 128 rows).
  const uint32_t ring = 0x400 * 3;
  for (int s = 0; s < kWgStages; ++s) {
    const uint32_t a_tile = ring + s * kWgStageBytes, b_tile = a_tile + kWgABytes;
    CHECK(a_tile % 1024 == 0 && b_tile % 1024 == 0 && (b_tile + kWgBHalfBytes) % 1024 == 0, "alignment");
    // What TMA wrote: box row r, element c (0..63) of x rows m0+r / gate rows / up rows.
    for (int cw = 0; cw < 2; ++cw)
      for (uint32_t kk = 0; kk < 4; ++kk) {
        const uint64_t da = glu_wgmma_desc_k(a_tile + cw * 64 * 128, kk);
        for (uint32_t r = 0; r < 64; ++r)
          for (uint32_t k = 0; k < 16; ++k) {
            const uint32_t want = glu_tma_sw128_addr(a_tile, 64 * cw + r, kk * 16 + k);
            const uint32_t got = glu_wgmma_read_addr(da, r, k);
            CHECK(got == want, "A s=%d cw=%d kk=%u r=%u k=%u: wgmma reads %#x, TMA wrote %#x", s, cw, kk, r, k, got, want);
          }
      }
    for (uint32_t kk = 0; kk < 4; ++kk) {
      const uint64_t db = glu_wgmma_desc_k(b_tile, kk);
      for (uint32_t r = 0; r < 256; ++r)
        for (uint32_t k = 0; k < 16; ++k) {
          // rows 0..127: gate box at b_tile; rows 128..255: up box at b_tile + 16 KiB.
          const uint32_t box = r < 128 ? b_tile : b_tile + kWgBHalfBytes;
          const uint32_t want = glu_tma_sw128_addr(box, r % 128, kk * 16 + k);
          const uint32_t got = glu_wgmma_read_addr(db, r, k);
          CHECK(got == want, "B kk=%u r=%u k=%u: %#x vs %#x", kk, r, k, got, want);
        }
    }
  }
  // The swizzle is a permutation of each 1024-byte block (of 16-byte chunks).
  std::vector<int> seen(64, 0);
  for (uint32_t c = 0; c < 64; ++c) seen[glu_sw128(c * 16) / 16]++;
  for (int c = 0; c < 64; ++c) CHECK(seen[c] == 1, "sw128 not a permutation at chunk %d", c);
}

// KN weights: four TMA boxes [64 k][64 n] (gate n-lo, gate n-hi, up n-lo,
// up n-hi) read as one N-major n256 operand through glu_wgmma_desc_mn_k.
static void test_mn_major() {
  const uint32_t b_tile = 0x400 * 7 + kWgABytes;
  CHECK(b_tile % 1024 == 0, "alignment");
  for (uint32_t kk = 0; kk < 4; ++kk) {
    const uint64_t d = glu_wgmma_desc_mn_k(b_tile, kk);
    for (uint32_t k = 0; k < 16; ++k)
      for (uint32_t n = 0; n < 256; ++n) {
        const uint32_t box = b_tile + (n / 64) * kWgKnBoxBytes;  // gate lo/hi, up lo/hi
        const uint32_t want = glu_tma_sw128_addr(box, kk * 16 + k, n % 64);
        const uint32_t got = glu_wgmma_read_addr_mn(d, k, n);
        CHECK(got == want, "MN kk=%u k=%u n=%u: %#x vs %#x", kk, k, n, got, want);
      }
  }
  CHECK(4 * kWgKnBoxBytes == kWgBBytes, "four KN boxes fill the B stage");
  const uint64_t d = glu_wgmma_desc_mn_sw128(0x2000);
  CHECK(((d >> 16) & 0x3FFF) == 8192 / 16 && ((d >> 32) & 0x3FFF) == 64 && (d >> 62) == 1, "MN desc fields");
}

// The weight-gradient kernel (GLU_EPI_DW*): A read M-major. The A stage
// holds two TMA boxes [64 k][64 m] (tile rows 0..63, 64..127); consumer cw
// reads box cw as an m64 operand through glu_wgmma_desc_mn_k, element
// (m < 64, k < 16) of k16 step kk at the address TMA wrote for box row
// kk*16 + k, column m.
static void test_a_m_major() {
  const uint32_t a_tile = 0x400 * 3;
  CHECK(2 * kWgKnBoxBytes == kWgABytes, "two M-major boxes fill the A stage");
  for (uint32_t cw = 0; cw < 2; ++cw)
    for (uint32_t kk = 0; kk < 4; ++kk) {
      const uint32_t box = a_tile + cw * kWgKnBoxBytes;
      const uint64_t d = glu_wgmma_desc_mn_k(box, kk);
      for (uint32_t k = 0; k < 16; ++k)
        for (uint32_t m = 0; m < 64; ++m) {
          const uint32_t want = glu_tma_sw128_addr(box, kk * 16 + k, m);
          const uint32_t got = glu_wgmma_read_addr_mn(d, k, m);
          CHECK(got == want, "A M-major cw=%u kk=%u k=%u m=%u: %#x vs %#x", cw, kk, k, m, got, want);
        }
    }
}

static void test_desc_bits() {
  const uint64_t d = glu_wgmma_desc_sw128(0x12400);
  CHECK((d & 0x3FFF) == (0x12400 >> 4), "start");
  CHECK(((d >> 16) & 0x3FFF) == 1, "lbo");
  CHECK(((d >> 32) & 0x3FFF) == 64, "sbo = 1024 B");
  CHECK(((d >> 49) & 7) == 0, "base offset");
  CHECK((d >> 62) == 1, "swizzle 128B");
  CHECK(((d >> 14) & 3) == 0 && ((d >> 30) & 3) == 0 && ((d >> 46) & 7) == 0 && ((d >> 52) & 0x3FF) == 0, "reserved bits");
  // The largest address the kernel uses still fits the 14-bit field (<256 KiB).
  CHECK(kWgSmemBytes + 1024 < (1u << 18), "address field: shared window < 256 KiB");
}

static void test_fragment() {
  std::vector<int> hit(64 * 256, 0);
  for (uint32_t w = 0; w < 4; ++w)
    for (uint32_t l = 0; l < 32; ++l)
      for (uint32_t i = 0; i < (uint32_t)kWgAccRegs; ++i) {
        const GluRC rc = glu_wgmma_acc_rc(w, l, i);
        CHECK(rc.row < 64 && rc.col < 256, "range");
        hit[rc.row * 256 + rc.col]++;
        if (i < 64) {
          const GluRC up = glu_wgmma_acc_rc(w, l, i + kWgUpRegOffset);
          CHECK(up.row == rc.row && up.col == rc.col + 128, "gate/up pairing i=%u", i);
          CHECK(rc.col < 128, "gate half");
        }
        if (i % 2 == 0) {
          const GluRC nx = glu_wgmma_acc_rc(w, l, i + 1);
          CHECK(nx.row == rc.row && nx.col == rc.col + 1 && rc.col % 2 == 0, "pair for 4-byte store");
        }
      }
  for (int e = 0; e < 64 * 256; ++e) CHECK(hit[e] == 1, "element %d covered %d times", e, hit[e]);
}

static void test_tile_order() {
  const int64_t cases[][2] = {{1, 1}, {1, 7}, {3, 1}, {16, 5}, {17, 3}, {33, 9}, {64, 86}, {65, 22}, {5, 100}};
  for (auto& c : cases) {
    const int64_t mt = c[0], nt = c[1];
    std::vector<int> hit(mt * nt, 0);
    for (int64_t t = 0; t < mt * nt; ++t) {
      const GluTile tl = glu_tile_of(t, mt, nt);
      CHECK(tl.m >= 0 && tl.m < mt && tl.n >= 0 && tl.n < nt, "tile %lld out of range (%lld,%lld)", (long long)t, (long long)tl.m, (long long)tl.n);
      if (tl.m >= 0 && tl.m < mt && tl.n >= 0 && tl.n < nt) hit[tl.m * nt + tl.n]++;
    }
    for (int64_t e = 0; e < mt * nt; ++e) CHECK(hit[e] == 1, "mt=%lld nt=%lld tile %lld hit %d", (long long)mt, (long long)nt, (long long)e, hit[e]);
  }
}

// Cluster schedule: over the pair units, the two ranks together cover every
// tile exactly once; a rank without a tile (live = false) only occurs for
// rank 1 in the last pair row of an odd m-tile count, where the partner's
// tile is live; both ranks of a unit share its column tile; the first
// group's units stay inside the first kWgGroupM m tiles (the plain order's
// L2 footprint of x).
static void test_cluster_tiles() {
  const int64_t cases[][2] = {{1, 1}, {1, 7}, {2, 3}, {3, 1}, {3, 5}, {16, 5}, {17, 3},
                              {33, 9}, {64, 86}, {65, 22}, {5, 100}, {128, 86}};
  for (auto& c : cases) {
    const int64_t mt = c[0], nt = c[1];
    const int64_t units = (mt + 1) / 2 * nt;
    std::vector<int> hit(mt * nt, 0);
    int dead = 0;
    for (int64_t u = 0; u < units; ++u) {
      const GluClusterTile a = glu_cluster_tile(u, 0, mt, nt), b = glu_cluster_tile(u, 1, mt, nt);
      CHECK(a.n == b.n && a.m + 1 == b.m && a.m % 2 == 0, "mt=%lld nt=%lld unit %lld: ranks at (%lld,%lld) (%lld,%lld)",
            (long long)mt, (long long)nt, (long long)u, (long long)a.m, (long long)a.n, (long long)b.m, (long long)b.n);
      CHECK(a.live, "mt=%lld unit %lld: rank 0 without a tile", (long long)mt, (long long)u);
      // The first group's units stay within the first kWgGroupM m tiles.
      if (u < (int64_t)(kWgGroupM / 2) * nt)
        CHECK(b.m < kWgGroupM, "mt=%lld unit %lld: m tile %lld beyond the first group", (long long)mt, (long long)u, (long long)b.m);
      for (const GluClusterTile& t : {a, b}) {
        if (!t.live) {
          ++dead;
          CHECK(t.m == mt && mt % 2 == 1, "mt=%lld: dead tile at m=%lld", (long long)mt, (long long)t.m);
          continue;
        }
        CHECK(t.m >= 0 && t.m < mt && t.n >= 0 && t.n < nt, "cluster tile out of range (%lld,%lld)", (long long)t.m, (long long)t.n);
        if (t.m >= 0 && t.m < mt && t.n >= 0 && t.n < nt) hit[t.m * nt + t.n]++;
      }
    }
    CHECK(dead == (mt % 2 == 1 ? nt : 0), "mt=%lld nt=%lld: %d dead tiles", (long long)mt, (long long)nt, dead);
    for (int64_t e = 0; e < mt * nt; ++e)
      CHECK(hit[e] == 1, "cluster mt=%lld nt=%lld tile %lld hit %d", (long long)mt, (long long)nt, (long long)e, hit[e]);
  }
}

// Tail split: for every (tiles, width, parts, k_tiles) the units cover each
// (tile, k-tile) exactly once; whole tiles come first and span all k; each
// tail tile has parts 0..P-1 with non-empty k ranges in order, its
// finisher (part P-1) is its highest unit, and every unit a finisher waits
// for has a lower number, on whatever CTA count walks the units; workspace
// slots of the non-finishing parts are distinct and inside the workspace.
static void test_tail_split() {
  const int64_t tiles_c[] = {1, 5, 40, 131, 132, 133, 172, 224, 344, 1376, 2752};
  const int64_t width_c[] = {1, 7, 114, 132};
  for (int64_t tiles : tiles_c)
    for (int64_t width : width_c)
      for (int32_t parts = 1; parts <= 4; ++parts)
        for (int32_t kt : {4, 9, 64}) {
          if (kt < parts) continue;
          const int64_t r = tiles % width;
          const GluSplitShape sh = glu_split_shape(tiles, width, parts);
          const int64_t units = glu_split_units(sh);
          CHECK(units == tiles - r + (parts > 1 ? r * parts : r), "unit count");
          std::vector<int> hit(tiles * kt, 0);
          std::vector<int64_t> finisher(tiles, -1), last_part_unit(tiles, -1);
          std::vector<int> slot_hit(parts > 1 ? (parts - 1) * r * 2 : 0, 0);
          for (int64_t u = 0; u < units; ++u) {
            const GluUnit x = glu_split_unit((int32_t)u, sh, kt);
            CHECK(x.tile >= 0 && x.tile < tiles, "unit %lld tile %lld", (long long)u, (long long)x.tile);
            CHECK(x.kt0 < x.kt1 && x.kt0 >= 0 && x.kt1 <= kt, "empty or bad k range");
            if (x.tile < 0 || x.tile >= tiles) continue;
            for (int k = x.kt0; k < x.kt1; ++k) hit[x.tile * kt + k]++;
            if (x.parts == 1) {
              CHECK(x.kt0 == 0 && x.kt1 == kt && x.tail == -1, "whole tile");
              CHECK(parts == 1 || u < tiles - r, "whole tile after the tail");
            } else {
              CHECK(x.parts == parts && x.tail == x.tile - (tiles - r), "tail index");
              if (x.part == parts - 1) {
                finisher[x.tile] = u;
              } else {
                CHECK(u > last_part_unit[x.tile], "parts out of order");
                last_part_unit[x.tile] = u;
                for (int c = 0; c < 2; ++c) {
                  const int64_t sl = glu_split_slot(x.part, x.tail, r, c);
                  CHECK(sl % kWgSplitSlotF4 == 0 && sl / kWgSplitSlotF4 < (int64_t)slot_hit.size(), "slot range");
                  if (sl / kWgSplitSlotF4 < (int64_t)slot_hit.size()) slot_hit[sl / kWgSplitSlotF4]++;
                }
              }
            }
          }
          for (int64_t e = 0; e < tiles * kt; ++e)
            CHECK(hit[e] == 1, "tiles=%lld width=%lld parts=%d kt=%d: (tile,k) %lld hit %d",
                  (long long)tiles, (long long)width, parts, kt, (long long)e, hit[e]);
          for (size_t e = 0; e < slot_hit.size(); ++e) CHECK(slot_hit[e] == 1, "slot %zu hit %d", e, slot_hit[e]);
          if (parts > 1)
            for (int64_t t = tiles - r; t < tiles; ++t)
              CHECK(finisher[t] > last_part_unit[t] && last_part_unit[t] >= 0, "finisher not last");
        }
}

// Staged epilogue: every (row < 64, col < 128) of a consumer tile gets its
// own 2-byte slot inside the 16 KiB buffer; the slot is where TMA expects
// element (r, c % 64) of box c / 64 (row pitch 128 B, 128B swizzle); and
// each fragment store (warp w, register pair i = 4j + 2h, 32 lanes x 4 B)
// touches 32 distinct banks.
static void test_out_staging() {
  static_assert(kWgSmemBytesStaged == 230464, "staged smem (mirrored in src/cuda/hopper.rs)");
  const uint32_t base = 3u * 1024u;  // any 1024-aligned base
  std::vector<int> hit(kWgOutStageBytes / 2, 0);
  for (uint32_t r = 0; r < 64; ++r)
    for (uint32_t c = 0; c < 128; ++c) {
      const uint32_t a = glu_out_stage_addr(base, r, c);
      CHECK(a >= base && a + 2 <= base + kWgOutStageBytes && a % 2 == 0, "slot (%u,%u) outside", r, c);
      if (a >= base && a + 2 <= base + kWgOutStageBytes) hit[(a - base) / 2]++;
      // TMA box layout: box b = c / 64 at base + b * 8 KiB, unswizzled offset
      // r * 128 + (c % 64) * 2, 16-byte chunk XORed with r % 8.
      const uint32_t box = base + (c / 64u) * kWgOutBoxBytes;
      const uint32_t off = r * 128u + (c % 64u) * 2u;
      const uint32_t want = box + (off & ~0x70u) + ((((off >> 4) & 7u) ^ (r % 8u)) << 4);
      CHECK(a == want, "slot (%u,%u) = %u, TMA layout %u", r, c, a, want);
    }
  for (size_t e = 0; e < hit.size(); ++e) CHECK(hit[e] == 1, "slot %zu hit %d", e, hit[e]);
  for (uint32_t w = 0; w < 4; ++w)
    for (uint32_t i = 0; i < 64; i += 2) {
      int bank_use[32] = {0};
      for (uint32_t lane = 0; lane < 32; ++lane) {
        const GluRC rc = glu_wgmma_acc_rc(w, lane, i);
        CHECK(rc.col % 2 == 0, "pair start col %u odd", rc.col);
        const uint32_t a = glu_out_stage_addr(base, rc.row, rc.col);
        CHECK(glu_out_stage_addr(base, rc.row, rc.col + 1) == a + 2, "pair (%u,%u) not contiguous", rc.row, rc.col);
        bank_use[(a / 4) % 32]++;
      }
      for (int b = 0; b < 32; ++b) CHECK(bank_use[b] == 1, "warp %u reg %u: bank %d used %d times", w, i, b, bank_use[b]);
    }
}

// GLU_EPI_DGU_TMA's d_out loads (glu_wgmma_body.cuh): consumer thread ct
// stores chunk c = ct + 128 i (row c >> 4, columns 8 (c & 15) .. + 7) at
// glu_out_stage_addr(base, row, 8 (c & 15)): each chunk is 16 contiguous,
// 16-byte aligned bytes holding its 8 elements in order, the 1024 chunks
// tile the staging buffer exactly, and every 8-thread phase of one 16-byte
// store hits 8 distinct 16-byte slots (conflict-free).
static void test_dgu_staging_loads() {
  const uint32_t base = 5u * 1024u;
  std::vector<int> hit(kWgOutStageBytes / 16, 0);
  for (uint32_t i = 0; i < 8; ++i)
    for (uint32_t ph = 0; ph < 128; ph += 8) {
      std::vector<int> slot(8, 0);
      for (uint32_t ct = ph; ct < ph + 8; ++ct) {
        const uint32_t c = ct + 128u * i, r = c >> 4, ch = c & 15u;
        const uint32_t a = glu_out_stage_addr(base, r, 8u * ch);
        CHECK(a % 16 == 0 && a >= base && a + 16 <= base + kWgOutStageBytes, "chunk %u at %u", c, a);
        for (uint32_t e = 0; e < 8; ++e)
          CHECK(glu_out_stage_addr(base, r, 8u * ch + e) == a + 2u * e, "chunk %u element %u", c, e);
        if (a >= base && a + 16 <= base + kWgOutStageBytes) hit[(a - base) / 16]++;
        slot[(a / 16) % 8]++;
      }
      for (int sl = 0; sl < 8; ++sl) CHECK(slot[sl] == 1, "phase %u/%u: slot %d used %d times", i, ph, sl, slot[sl]);
    }
  for (size_t e = 0; e < hit.size(); ++e) CHECK(hit[e] == 1, "chunk slot %zu hit %d", e, hit[e]);
}

int main() {
  test_out_staging();
  test_dgu_staging_loads();
  test_desc_bits();
  test_swizzle_desc();
  test_mn_major();
  test_a_m_major();
  test_fragment();
  test_tile_order();
  test_cluster_tiles();
  test_tail_split();
  std::printf("wgmma_layout_test: %s\n", g_fail ? "FAILED" : "OK");
  return g_fail ? 1 : 0;
}
