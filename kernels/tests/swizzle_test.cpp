// Host-side check of the fused_glu_mma shared-memory indexing, using the very
// functions in kernels/glu_swizzle.cuh.
//   g++ -std=c++17 -O1 -I kernels kernels/tests/swizzle_test.cpp -o /tmp/swz && /tmp/swz
// Checks
//   1. each swizzle is a bijection of the chunks of a row (no two (row, chunk)
//      share a 16-byte slot in the tile);
//   2. every ldmatrix phase (8 lanes = one 8x8 matrix) the kernel issues hits
//      8 distinct bank groups (conflict-free), and every 8 consecutive threads'
//      cp.async 16-byte stores do too;
//   3. an emulation of ldmatrix / ldmatrix.trans (PTX ISA semantics) + the
//      m16n8k16 fragment layouts reproduces the exact 128x64 block tile of
//      x*Wg and x*Wu for a whole k-tile, for both weight layouts, using the
//      kernel's cp.async chunk mapping (replicated from load_stage) and lane
//      addressing (glu_*_ld_row/chunk).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <set>
#include <vector>
#include "glu_params.cuh"
#include "glu_swizzle.cuh"

static int failures = 0;
#define CHECK(c, ...) do { if (!(c)) { ++failures; if (failures < 20) { \
  std::printf("FAIL %s:%d: ", __FILE__, __LINE__); std::printf(__VA_ARGS__); std::printf("\n"); } } } while (0)

constexpr int BM = GLU_MMA_BM, BN = GLU_MMA_BN, BK = GLU_MMA_BK, THREADS = GLU_MMA_THREADS;

// Byte-addressed emulated shared memory of int16 values.
struct Smem {
  std::vector<int16_t> v;
  explicit Smem(size_t bytes) : v(bytes / 2, 0) {}
  int16_t at(uint32_t byte) const { return v.at(byte / 2); }
  void put(uint32_t byte, int16_t x) { v.at(byte / 2) = x; }
};

// ldmatrix.x4: addr[l] = row address supplied by lane l. Returns r[lane][i][half].
static void ldmatrix_x4(const Smem& s, const uint32_t addr[32], bool trans, int16_t r[32][4][2]) {
  for (int i = 0; i < 4; ++i) {
    for (int T = 0; T < 32; ++T) {
      for (int h = 0; h < 2; ++h) {
        if (!trans) {  // row T/4, element 2*(T%4)+h
          r[T][i][h] = s.at(addr[8 * i + T / 4] + 2 * (2 * (T % 4) + h));
        } else {       // stored row 2*(T%4)+h, column T/4
          r[T][i][h] = s.at(addr[8 * i + 2 * (T % 4) + h] + 2 * (T / 4));
        }
      }
    }
  }
}

static void check_phase_banks(const uint32_t addr[32], const char* what) {
  for (int ph = 0; ph < 4; ++ph) {
    std::set<uint32_t> slots;
    for (int l = 0; l < 8; ++l) {
      CHECK(addr[8 * ph + l] % 16 == 0, "%s: unaligned row address", what);
      slots.insert((addr[8 * ph + l] / 16) % 8);
    }
    CHECK(slots.size() == 8, "%s: bank conflict in phase %d", what, ph);
  }
}

// mma m16n8k16 from per-lane fragments (PTX ISA layouts), D += A*B.
static void mma_emu(const int16_t a[32][4][2], const int16_t b[32][2][2], int64_t d[32][4]) {
  int64_t A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    int g = l >> 2, t = l & 3;
    // a0,a1:(g,2t+h) a2,a3:(g+8,2t+h) a4,a5:(g,2t+8+h) a6,a7:(g+8,2t+8+h)
    for (int h = 0; h < 2; ++h) {
      A[g][2 * t + h] = a[l][0][h];
      A[g + 8][2 * t + h] = a[l][1][h];
      A[g][2 * t + 8 + h] = a[l][2][h];
      A[g + 8][2 * t + 8 + h] = a[l][3][h];
      // b0,b1: k=2t+h, n=g ; b2,b3: k=2t+8+h
      B[2 * t + h][g] = b[l][0][h];
      B[2 * t + 8 + h][g] = b[l][1][h];
    }
  }
  for (int l = 0; l < 32; ++l) {
    int g = l >> 2, t = l & 3;
    for (int e = 0; e < 4; ++e) {
      int row = g + (e >> 1) * 8, col = 2 * t + (e & 1);
      int64_t acc = 0;
      for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
      d[l][e] += acc;
    }
  }
}

static void test_bijection() {
  for (uint32_t rows : {16u, 64u, 128u}) {
    std::set<uint32_t> seen;
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < 4; ++c) {
        uint32_t o = glu_swz64(r, c);
        CHECK(o / 64 == r, "swz64 leaves its row");
        CHECK(seen.insert(o).second, "swz64 collision r=%u c=%u", r, c);
      }
  }
  std::set<uint32_t> seen;
  for (uint32_t r = 0; r < 32; ++r)
    for (uint32_t c = 0; c < 8; ++c) {
      uint32_t o = glu_swz128(r, c);
      CHECK(o / 128 == r, "swz128 leaves its row");
      CHECK(seen.insert(o).second, "swz128 collision r=%u c=%u", r, c);
    }
}

// cp.async mapping, replicated from load_stage() in fused_glu_mma.cu.
struct Chunk { uint32_t smem; int row, col; };  // row/col of the first element (tile coords)
static std::vector<Chunk> a_chunks(int tid) {
  std::vector<Chunk> v;
  for (int j = 0; j < 2; ++j) {
    int id = tid + j * THREADS, r = id >> 2, c = id & 3;
    v.push_back({glu_swz64(r, c), r, c * 8});  // (m, k)
  }
  return v;
}
static Chunk b_chunk(int tid, int layout) {
  if (layout == GLU_LAYOUT_NK) {
    int r = tid >> 2, c = tid & 3;
    return {glu_swz64(r, c), r, c * 8};  // (n, k)
  }
  int r = tid >> 3, c = tid & 7;
  return {glu_swz128(r, c), r, c * 8};  // (k, n)
}

static void test_cp_async_banks() {
  for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
    for (int base = 0; base < THREADS; base += 8) {
      std::set<uint32_t> sa0, sa1, sb;
      for (int t = base; t < base + 8; ++t) {
        auto a = a_chunks(t);
        sa0.insert((a[0].smem / 16) % 8);
        sa1.insert((a[1].smem / 16) % 8);
        sb.insert((b_chunk(t, layout).smem / 16) % 8);
      }
      CHECK(sa0.size() == 8 && sa1.size() == 8 && sb.size() == 8, "cp.async bank conflict");
    }
  }
}

static void test_tile(int layout, unsigned seed) {
  std::srand(seed);
  // Logical tile data (small ints: products and sums stay exact).
  std::vector<int> X(BM * BK), G(BK * BN), U(BK * BN);  // X[m][k], G[k][n], U[k][n]
  for (auto& e : X) e = std::rand() % 17 - 8;
  for (auto& e : G) e = std::rand() % 17 - 8;
  for (auto& e : U) e = std::rand() % 17 - 8;

  Smem sa(BM * BK * 2), sg(BN * BK * 2), su(BN * BK * 2);
  std::vector<int> filled_a(BM * BK, 0), filled_b(BN * BK, 0);
  for (int tid = 0; tid < THREADS; ++tid) {
    for (auto ch : a_chunks(tid))
      for (int e = 0; e < 8; ++e) {
        sa.put(ch.smem + 2 * e, (int16_t)X[ch.row * BK + ch.col + e]);
        filled_a[ch.row * BK + ch.col + e]++;
      }
    Chunk ch = b_chunk(tid, layout);
    for (int e = 0; e < 8; ++e) {
      int k, n;
      if (layout == GLU_LAYOUT_NK) { n = ch.row; k = ch.col + e; } else { k = ch.row; n = ch.col + e; }
      sg.put(ch.smem + 2 * e, (int16_t)G[k * BN + n]);
      su.put(ch.smem + 2 * e, (int16_t)U[k * BN + n]);
      filled_b[k * BN + n]++;
    }
  }
  for (int c : filled_a) CHECK(c == 1, "x tile element loaded %d times", c);
  for (int c : filled_b) CHECK(c == 1, "w tile element loaded %d times", c);

  // Per warp: acc[mi][ni][lane][e]; compare against the reference.
  for (uint32_t warp = 0; warp < 8; ++warp) {
    uint32_t wm = warp >> 1, wn = warp & 1;
    static int64_t accg[2][4][32][4], accu[2][4][32][4];
    std::memset(accg, 0, sizeof accg);
    std::memset(accu, 0, sizeof accu);
    for (uint32_t ks = 0; ks < BK / 16; ++ks) {
      int16_t a[2][32][4][2];
      for (uint32_t mi = 0; mi < 2; ++mi) {
        uint32_t addr[32];
        for (uint32_t l = 0; l < 32; ++l)
          addr[l] = glu_swz64(glu_a_ld_row(wm * 32 + mi * 16, l), glu_a_ld_chunk(ks * 2, l));
        check_phase_banks(addr, "A ldmatrix");
        ldmatrix_x4(sa, addr, false, a[mi]);
      }
      int16_t bg[4][32][2][2], bu[4][32][2][2];
      for (uint32_t nj = 0; nj < 2; ++nj) {
        uint32_t n0 = wn * 32 + nj * 16, addr[32];
        for (uint32_t l = 0; l < 32; ++l)
          addr[l] = layout == GLU_LAYOUT_NK
                        ? glu_swz64(glu_bnk_ld_row(n0, l), glu_bnk_ld_chunk(ks * 2, l))
                        : glu_swz128(glu_bkn_ld_row(ks * 16, l), glu_bkn_ld_chunk(n0 >> 3, l));
        check_phase_banks(addr, layout == GLU_LAYOUT_NK ? "B nk ldmatrix" : "B kn ldmatrix.trans");
        int16_t rg[32][4][2], ru[32][4][2];
        ldmatrix_x4(sg, addr, layout == GLU_LAYOUT_KN, rg);
        ldmatrix_x4(su, addr, layout == GLU_LAYOUT_KN, ru);
        for (int l = 0; l < 32; ++l)
          for (int h = 0; h < 2; ++h) {  // r0,r1 -> n-tile 2nj ; r2,r3 -> n-tile 2nj+1
            bg[2 * nj][l][0][h] = rg[l][0][h]; bg[2 * nj][l][1][h] = rg[l][1][h];
            bg[2 * nj + 1][l][0][h] = rg[l][2][h]; bg[2 * nj + 1][l][1][h] = rg[l][3][h];
            bu[2 * nj][l][0][h] = ru[l][0][h]; bu[2 * nj][l][1][h] = ru[l][1][h];
            bu[2 * nj + 1][l][0][h] = ru[l][2][h]; bu[2 * nj + 1][l][1][h] = ru[l][3][h];
          }
      }
      for (int mi = 0; mi < 2; ++mi)
        for (int ni = 0; ni < 4; ++ni) {
          mma_emu(a[mi], bg[ni], accg[mi][ni]);
          mma_emu(a[mi], bu[ni], accu[mi][ni]);
        }
    }
    // Epilogue mapping (as in the kernel): c[2h+e] -> row g+8h, col 2t+e.
    for (int mi = 0; mi < 2; ++mi)
      for (int ni = 0; ni < 4; ++ni)
        for (int l = 0; l < 32; ++l)
          for (int h = 0; h < 2; ++h)
            for (int e = 0; e < 2; ++e) {
              int row = wm * 32 + mi * 16 + (l >> 2) + 8 * h;
              int col = wn * 32 + ni * 8 + (l & 3) * 2 + e;
              int64_t rg = 0, ru = 0;
              for (int k = 0; k < BK; ++k) {
                rg += (int64_t)X[row * BK + k] * G[k * BN + col];
                ru += (int64_t)X[row * BK + k] * U[k * BN + col];
              }
              CHECK(accg[mi][ni][l][2 * h + e] == rg, "gate mismatch layout %d row %d col %d", layout, row, col);
              CHECK(accu[mi][ni][l][2 * h + e] == ru, "up mismatch layout %d row %d col %d", layout, row, col);
            }
  }
}

int main() {
  static_assert(GLU_MMA_SMEM_BYTES == 65536, "expected 64 KiB");
  test_bijection();
  test_cp_async_banks();
  for (unsigned s = 1; s <= 3; ++s) {
    test_tile(GLU_LAYOUT_KN, s);
    test_tile(GLU_LAYOUT_NK, s);
  }
  if (failures) {
    std::printf("swizzle_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("swizzle_test: OK (bijection, bank-conflict-free ldmatrix/cp.async, "
              "fragment emulation KN+NK exact)\n");
  return 0;
}
