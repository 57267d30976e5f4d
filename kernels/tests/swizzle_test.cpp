// Host-side proof of the fused_glu_mma tiling, using the very functions in
// kernels/glu_swizzle.cuh.
//   g++ -std=c++17 -O1 -I kernels kernels/tests/swizzle_test.cpp -o /tmp/swz && /tmp/swz
// Checks
//   1. each swizzle (64/128/256-byte rows) is a bijection of the chunks of a
//      row (no two (row, chunk) share a 16-byte slot in the tile);
//   2. every ldmatrix phase (8 lanes = one 8x8 matrix) the kernel issues hits
//      8 distinct bank groups (conflict-free), and every 8 consecutive
//      threads' cp.async 16-byte stores do too;
//   3. glu_grouped_tile is a bijection of the linear block ids onto the tile
//      grid, for many grid shapes;
//   4. a whole-kernel emulation of fused_glu_mma for a set of (M, N, K)
//      shapes with tails (M, N, K around multiples of 128 / 128 / 32), both
//      layouts: grouped block order, the cp.async chunk mapping, cursors and
//      zero-fill predicates (the kernel's own glu_mma_src_* / glu_mma_k_left
//      helpers; every copied chunk inside its matrix), the 4-stage ring with the
//      kernel's exact order of fragment loads / refills / barriers, the
//      ldmatrix / ldmatrix.trans lane addressing (glu_*_ld_row/chunk +
//      swizzles, PTX ISA semantics), the m16n8k16 fragment layouts, the 2x4
//      warp grid and the epilogue mapping reproduce x*Wg and x*Wu EXACTLY
//      (small integers, int64 accumulation) for every output element, each
//      written exactly once;
//   6. (test_tf32) the tf32 variant's tiles: A / NK fragments through the
//      same ldmatrix addressing, the f32 KN tile's cp.async map and 32-bit
//      fragment loads (values and bank-conflict freedom);
//   7. (test_mma_cursors) StageLoader's cursors (glu_mma_src_rowk /
//      glu_mma_src_kn / glu_mma_k_left / glu_mma_chunk_valid) against the
//      definition of a stage, for f32 and 16-bit chunks, 256 and 512
//      threads, both layouts, tails and offsets above 2^31;
//   5. the ring schedule is race-free: a stage is never read in a barrier
//      interval in which a cp.async into it may still be in flight, and never
//      refilled before every read of its previous k-tile happened in an
//      earlier barrier interval.
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
constexpr int STAGES = GLU_MMA_STAGES;
constexpr int KS = BK / 16;
constexpr uint64_t GROUP_M = 8;  // kGroupM in fused_glu_mma.cu
// The production warp grid (fused_glu_mma.cu WarpGrid<GLU_MMA_THREADS / 128>):
// 4 x 4 warps of 32 x 32 since session 16 (2 x 4 of 64 x 32 before).
constexpr int WARPS_M = THREADS / 128, WARPS_N = 4, WM = BM / WARPS_M, WN = 32, MI = WM / 16, NI = WN / 8;
constexpr uint32_t A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2;
// 16-byte chunks per thread and operand tile (StageLoader::kJ): 512 / THREADS.
constexpr int CPT = 512 / THREADS;
static_assert(WARPS_M * WARPS_N * 32 == THREADS && WARPS_M * WM == BM && WARPS_N * WN == BN,
              "warp grid");

// Byte-addressed emulated shared memory of int16 values.
struct Smem {
  std::vector<int16_t> v;
  explicit Smem(size_t bytes) : v(bytes / 2, 0) {}
  int16_t at(uint32_t byte) const { return v.at(byte / 2); }
  void put(uint32_t byte, int16_t x) { v.at(byte / 2) = x; }
};

// ldmatrix.x4: addr[l] = row address supplied by lane l. Returns r[lane][i][half].
static void ldmatrix_x4(const Smem& s, uint32_t base, const uint32_t addr[32], bool trans,
                        int16_t r[32][4][2]) {
  for (int i = 0; i < 4; ++i)
    for (int T = 0; T < 32; ++T)
      for (int h = 0; h < 2; ++h) {
        if (!trans)  // row T/4, element 2*(T%4)+h
          r[T][i][h] = s.at(base + addr[8 * i + T / 4] + 2 * (2 * (T % 4) + h));
        else         // stored row 2*(T%4)+h, column T/4
          r[T][i][h] = s.at(base + addr[8 * i + 2 * (T % 4) + h] + 2 * (T / 4));
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
  {
    std::set<uint32_t> seen;
    for (uint32_t r = 0; r < 32; ++r)
      for (uint32_t c = 0; c < 8; ++c) {
        uint32_t o = glu_swz128(r, c);
        CHECK(o / 128 == r, "swz128 leaves its row");
        CHECK(seen.insert(o).second, "swz128 collision r=%u c=%u", r, c);
      }
  }
  {
    std::set<uint32_t> seen;
    for (uint32_t r = 0; r < 32; ++r)
      for (uint32_t c = 0; c < 16; ++c) {
        uint32_t o = glu_swz256(r, c);
        CHECK(o / 256 == r, "swz256 leaves its row");
        CHECK(seen.insert(o).second, "swz256 collision r=%u c=%u", r, c);
      }
  }
}

static void test_grouped_order() {
  for (uint64_t tm = 1; tm <= 40; ++tm)
    for (uint64_t tn : {1, 2, 3, 7, 8, 9, 86, 112}) {
      std::vector<int> hit(tm * tn, 0);
      for (uint64_t pid = 0; pid < tm * tn; ++pid) {
        uint64_t m, n;
        glu_grouped_tile(pid, tm, tn, GROUP_M, &m, &n);
        CHECK(m < tm && n < tn, "grouped tile out of range tm=%llu tn=%llu pid=%llu",
              (unsigned long long)tm, (unsigned long long)tn, (unsigned long long)pid);
        if (m < tm && n < tn) hit[m * tn + n]++;
      }
      for (int h : hit) CHECK(h == 1, "grouped order not a bijection tm=%llu tn=%llu",
                              (unsigned long long)tm, (unsigned long long)tn);
    }
  // Large grids (64-bit ids): spot-check range and inverse consistency.
  const uint64_t tm = 65535, tn = 1ull << 20;
  for (uint64_t pid : {(uint64_t)0, (uint64_t)1, tm * tn - 1, tm * tn / 2 + 12345}) {
    uint64_t m, n;
    glu_grouped_tile(pid, tm, tn, GROUP_M, &m, &n);
    CHECK(m < tm && n < tn, "grouped tile out of range (large grid)");
  }
}

// cp.async mapping of fused_glu_mma (StageLoader), from the very helpers the
// kernel calls (glu_mma_src_rowk / glu_mma_src_kn): chunk j of thread tid is
// id = tid + THREADS * j. Each chunk: smem byte offset within its tile, tile
// coordinates of its first element (row, col): x (m, k); NK (n, k); KN (k, n),
// recovered from the helper's element offset in a tile-sized matrix.
struct Chunk { uint32_t smem; int row, col; };
// x [BM rows][BK] or an NK weight tile [BN rows][BK]: glu_mma_src_rowk.
static std::vector<Chunk> rowk_chunks(int tid, int rows) {
  std::vector<Chunk> v;
  for (int j = 0; j < CPT; ++j) {
    const GluMmaChunkSrc s = glu_mma_src_rowk(tid + THREADS * j, 0, rows, BK, 8);
    CHECK(s.row_ok && s.step == BK && (int64_t)s.kin == s.off % BK, "row-k chunk source");
    v.push_back({s.smem, (int)(s.off / BK), (int)(s.off % BK)});
  }
  return v;
}
static std::vector<Chunk> a_chunks(int tid) { return rowk_chunks(tid, BM); }
static std::vector<Chunk> b_chunks(int tid, int layout) {
  if (layout == GLU_LAYOUT_NK) return rowk_chunks(tid, BN);
  std::vector<Chunk> v;
  for (int j = 0; j < CPT; ++j) {
    const GluMmaChunkSrc s = glu_mma_src_kn(tid + THREADS * j, 0, BN, 8);
    CHECK(s.row_ok && s.step == (int64_t)BK * BN && (int64_t)s.kin == s.off / BN,
          "KN chunk source");
    v.push_back({s.smem, (int)(s.off / BN), (int)(s.off % BN)});
  }
  return v;
}

// StageLoader's cursors against the definition of a stage, for every
// element type and thread count the kernels are built with (16-bit: 8
// elements per chunk, 32-k tiles; f32 / tf32: 4 and 16; 256 threads, and
// 512 for the 16-warp probe), both layouts, first and last blocks, tails of
// M, N and K, offsets above 2^31, the first k-tiles and the last ones
// including the three past the end. Definition: chunk id = tid + threads*j
// of the x / NK tile is row id / 4 (m or n), k chunk id % 4; of the KN tile
// (c = 128 / ce chunks per row) row id / c (k), n chunk id % c; it is
// copied iff its row (x, NK) or column (KN) is inside the matrix and its
// first k is < K, from element row * K + k (x, NK) or k * N + n (KN).
static void test_mma_cursors() {
  struct S { int64_t m, n, k; };
  std::vector<S> shapes;
  for (int64_t m : {1, 127, 128, 129, 300})
    for (int64_t n : {4, 8, 124, 128, 136, 260})
      for (int64_t k : {4, 8, 12, 16, 20, 24, 32, 40, 96, 332}) shapes.push_back({m, n, k});
  shapes.push_back({70000, 8, 40000});   // x offsets above 2^31
  shapes.push_back({8, 70000, 40000});   // weight offsets above 2^31
  shapes.push_back({3, 200000, 12000});  // KN: k * N above 2^31
  long checks = 0;
  for (uint32_t ce : {4u, 8u})
    for (int threads : {256, 512})
      for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK})
        for (const S& sh : shapes) {
          if (sh.k % ce || sh.n % ce) continue;
          const uint32_t tile_k = 4 * ce, kn_chunks = 128 / ce;
          const int64_t k_tiles = (sh.k + tile_k - 1) / tile_k;
          for (int64_t m_blk : {(int64_t)0, (sh.m - 1) / 128 * 128})
            for (int64_t n_blk : {(int64_t)0, (sh.n - 1) / 128 * 128})
              for (int tid = 0; tid < threads; ++tid)
                for (int j = 0; j < 512 / threads; ++j) {
                  const uint32_t id = tid + threads * j;
                  const GluMmaChunkSrc a = glu_mma_src_rowk(id, m_blk, sh.m, sh.k, ce);
                  const GluMmaChunkSrc b = layout == GLU_LAYOUT_NK
                                               ? glu_mma_src_rowk(id, n_blk, sh.n, sh.k, ce)
                                               : glu_mma_src_kn(id, n_blk, sh.n, ce);
                  // Definition of the chunk (tile coordinates).
                  const int64_t ar = id / 4, ac = id % 4;
                  const int64_t br = layout == GLU_LAYOUT_NK ? id / 4 : id / kn_chunks;
                  const int64_t bc = layout == GLU_LAYOUT_NK ? id % 4 : id % kn_chunks;
                  CHECK(a.smem == glu_swz64(ar, ac), "x chunk smem");
                  CHECK(b.smem == (layout == GLU_LAYOUT_NK ? glu_swz64(br, bc)
                                   : ce == 4 ? glu_swz512(br, bc) : glu_swz256(br, bc)),
                        "w chunk smem");
                  int64_t px = a.off, pb = b.off;
                  for (int64_t t = 0; t < k_tiles + 3; ++t, px += a.step, pb += b.step) {
                    if (t >= 12 && t < k_tiles - 3) continue;  // first and last k-tiles
                    const int64_t k0 = t * tile_k;
                    const uint32_t kl = glu_mma_k_left(sh.k, k0, tile_k);
                    // x: row m_blk + ar, k k0 + ac * ce.
                    const int64_t gm = m_blk + ar, gkx = k0 + ac * ce;
                    const bool want_x = gm < sh.m && gkx < sh.k;
                    const bool got_x = glu_mma_chunk_valid(a.row_ok, a.kin, kl);
                    CHECK(got_x == want_x && (!want_x || px == gm * sh.k + gkx),
                          "x cursor ce=%u threads=%d M=%lld K=%lld tid=%d j=%d k-tile %lld", ce,
                          threads, (long long)sh.m, (long long)sh.k, tid, j, (long long)t);
                    bool want_b;
                    int64_t off_b;
                    if (layout == GLU_LAYOUT_NK) {
                      const int64_t gn = n_blk + br, gk = k0 + bc * ce;
                      want_b = gn < sh.n && gk < sh.k;
                      off_b = gn * sh.k + gk;
                    } else {
                      const int64_t gk = k0 + br, gn = n_blk + bc * ce;
                      want_b = gk < sh.k && gn < sh.n;
                      off_b = gk * sh.n + gn;
                    }
                    const bool got_b = glu_mma_chunk_valid(b.row_ok, b.kin, kl);
                    CHECK(got_b == want_b && (!want_b || pb == off_b),
                          "w cursor ce=%u threads=%d layout %d N=%lld K=%lld tid=%d j=%d "
                          "k-tile %lld",
                          ce, threads, layout, (long long)sh.n, (long long)sh.k, tid, j,
                          (long long)t);
                    checks += 2;
                  }
                }
        }
  std::printf("  StageLoader cursors: %ld chunk checks (f32 and 16-bit, 256 and 512 threads)\n",
              checks);
}

static void test_cp_async_mapping() {
  for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
    // Banks: each 8-thread phase of one cp.async instruction (j fixed).
    for (int j = 0; j < CPT; ++j)
      for (int base = 0; base < THREADS; base += 8) {
        std::set<uint32_t> sa, sb;
        for (int t = base; t < base + 8; ++t) {
          sa.insert((a_chunks(t)[j].smem / 16) % 8);
          sb.insert((b_chunks(t, layout)[j].smem / 16) % 8);
        }
        CHECK(sa.size() == 8 && sb.size() == 8, "cp.async bank conflict layout %d", layout);
      }
    // Coverage: every element of each tile is written exactly once.
    std::vector<int> fa(BM * BK, 0), fb(BN * BK, 0);
    for (int t = 0; t < THREADS; ++t) {
      for (auto ch : a_chunks(t))
        for (int e = 0; e < 8; ++e) fa[ch.row * BK + ch.col + e]++;
      for (auto ch : b_chunks(t, layout))
        for (int e = 0; e < 8; ++e) {
          int k, n;
          if (layout == GLU_LAYOUT_NK) { n = ch.row; k = ch.col + e; } else { k = ch.row; n = ch.col + e; }
          CHECK(k < BK && n < BN, "b chunk outside tile");
          if (k < BK && n < BN) fb[k * BN + n]++;
        }
    }
    for (int c : fa) CHECK(c == 1, "x tile element loaded %d times", c);
    for (int c : fb) CHECK(c == 1, "w tile element loaded %d times (layout %d)", c, layout);
  }
}

// ---------------------------------------------------------------------------
// Whole-kernel emulation.
// ---------------------------------------------------------------------------
struct Problem {
  int64_t M, N, K;
  int layout;
  std::vector<int16_t> x, wg, wu;  // x [M,K]; weights in `layout`
};

// Stage bookkeeping for the race check (barrier intervals).
struct StageState {
  int64_t tile = -1;          // k-tile held (or being written)
  int64_t group = -1;         // cp.async group that writes it
  int64_t issued = -1;        // interval of the issue
  int64_t complete = -1;      // last interval in which the copy may be in flight
  int64_t last_read = -1;     // interval of the latest read of the current tile
};

struct Emu {
  const Problem& P;
  Smem smem{(size_t)STAGES * (A_BYTES + 2 * B_BYTES)};
  StageState st[STAGES];
  int64_t interval = 0, committed = 0;
  std::vector<int64_t> group_tile;  // group id -> stage (for completion marks)
  explicit Emu(const Problem& p) : P(p) {}

  uint32_t stage_base(int s) const { return (uint32_t)s * (A_BYTES + 2 * B_BYTES); }

  // StageLoader of fused_glu_mma: per thread and chunk a cursor from the
  // kernel's helpers, set up once per block (init) and advanced by its step
  // per issue; a chunk is copied iff glu_mma_chunk_valid(row_ok, kin,
  // glu_mma_k_left(K, k0)), else zero-filled. Every copied chunk must lie
  // inside its matrix.
  struct Cursor { GluMmaChunkSrc src; int64_t off; };
  std::vector<Cursor> cx, cb;  // [tid * CPT + j]
  void init(int64_t m_blk, int64_t n_blk) {
    cx.clear();
    cb.clear();
    for (int tid = 0; tid < THREADS; ++tid)
      for (int j = 0; j < CPT; ++j) {
        const uint32_t id = tid + THREADS * j;
        const GluMmaChunkSrc a = glu_mma_src_rowk(id, m_blk, P.M, P.K, 8);
        const GluMmaChunkSrc b = P.layout == GLU_LAYOUT_NK
                                     ? glu_mma_src_rowk(id, n_blk, P.N, P.K, 8)
                                     : glu_mma_src_kn(id, n_blk, P.N, 8);
        cx.push_back({a, a.off});
        cb.push_back({b, b.off});
      }
  }
  void load_stage(int s, int64_t k0) {
    StageState& S = st[s];
    CHECK(S.last_read < interval, "stage %d refilled in the interval of a read of its old tile", s);
    S.tile = k0 / BK;
    S.group = committed;
    S.issued = interval;
    S.complete = INT64_MAX;
    S.last_read = -1;
    const uint32_t base = stage_base(s);
    const uint32_t k_left = glu_mma_k_left(P.K, k0, BK);
    for (auto& c : cx) {
      const bool pred = glu_mma_chunk_valid(c.src.row_ok, c.src.kin, k_left);
      CHECK(!pred || (c.off >= 0 && c.off + 8 <= (int64_t)P.x.size()), "x chunk outside x");
      for (int e = 0; e < 8; ++e) smem.put(base + c.src.smem + 2 * e, pred ? P.x[c.off + e] : 0);
      c.off += c.src.step;
    }
    for (auto& c : cb) {
      const bool pred = glu_mma_chunk_valid(c.src.row_ok, c.src.kin, k_left);
      CHECK(!pred || (c.off >= 0 && c.off + 8 <= (int64_t)P.wg.size()), "w chunk outside w");
      for (int e = 0; e < 8; ++e) {
        smem.put(base + A_BYTES + c.src.smem + 2 * e, pred ? P.wg[c.off + e] : 0);
        smem.put(base + A_BYTES + B_BYTES + c.src.smem + 2 * e, pred ? P.wu[c.off + e] : 0);
      }
      c.off += c.src.step;
    }
  }
  void commit() { ++committed; }
  // cp.async.wait_group<W> + __syncthreads: groups < committed - W complete,
  // visible after the barrier; then a new interval starts.
  void wait_barrier(int W) {
    for (auto& S : st)
      if (S.complete == INT64_MAX && S.group < committed - W) S.complete = interval;
    ++interval;
  }
  void mark_read(int s, int64_t want_tile) {
    StageState& S = st[s];
    CHECK(S.tile == want_tile, "stage %d holds k-tile %lld, expected %lld", s, (long long)S.tile,
          (long long)want_tile);
    CHECK(S.complete < interval, "stage %d read while its cp.async may be in flight", s);
    S.last_read = interval;
  }
};

struct WarpFrags {
  int16_t a[MI][32][4][2];
  int16_t bg[NI][32][2][2], bu[NI][32][2][2];
};

// load_frags() of fused_glu_mma.cu for one warp.
static void load_frags(const Emu& E, WarpFrags& f, uint32_t st, uint32_t ks, uint32_t wm,
                       uint32_t wn, int layout) {
  const uint32_t s_a = st, s_bg = st + A_BYTES, s_bu = st + A_BYTES + B_BYTES;
  for (uint32_t mi = 0; mi < MI; ++mi) {
    uint32_t addr[32];
    for (uint32_t l = 0; l < 32; ++l)
      addr[l] = glu_swz64(glu_a_ld_row(wm * WM + mi * 16, l), glu_a_ld_chunk(ks * 2, l));
    check_phase_banks(addr, "A ldmatrix");
    ldmatrix_x4(E.smem, s_a, addr, false, f.a[mi]);
  }
  for (uint32_t nj = 0; nj < NI / 2; ++nj) {
    const uint32_t n0 = wn * WN + nj * 16;
    uint32_t addr[32];
    for (uint32_t l = 0; l < 32; ++l)
      addr[l] = layout == GLU_LAYOUT_NK
                    ? glu_swz64(glu_bnk_ld_row(n0, l), glu_bnk_ld_chunk(ks * 2, l))
                    : glu_swz256(glu_bkn_ld_row(ks * 16, l), glu_bkn_ld_chunk(n0 >> 3, l));
    check_phase_banks(addr, layout == GLU_LAYOUT_NK ? "B nk ldmatrix" : "B kn ldmatrix.trans");
    int16_t rg[32][4][2], ru[32][4][2];
    ldmatrix_x4(E.smem, s_bg, addr, layout == GLU_LAYOUT_KN, rg);
    ldmatrix_x4(E.smem, s_bu, addr, layout == GLU_LAYOUT_KN, ru);
    for (int l = 0; l < 32; ++l)
      for (int h = 0; h < 2; ++h) {  // r0,r1 -> n-tile 2nj ; r2,r3 -> n-tile 2nj+1
        f.bg[2 * nj][l][0][h] = rg[l][0][h]; f.bg[2 * nj][l][1][h] = rg[l][1][h];
        f.bg[2 * nj + 1][l][0][h] = rg[l][2][h]; f.bg[2 * nj + 1][l][1][h] = rg[l][3][h];
        f.bu[2 * nj][l][0][h] = ru[l][0][h]; f.bu[2 * nj][l][1][h] = ru[l][1][h];
        f.bu[2 * nj + 1][l][0][h] = ru[l][2][h]; f.bu[2 * nj + 1][l][1][h] = ru[l][3][h];
      }
  }
}

struct WarpAcc { int64_t g[MI][NI][32][4], u[MI][NI][32][4]; };

static void mma_frags(WarpAcc& acc, const WarpFrags& f) {
  for (int mi = 0; mi < MI; ++mi)
    for (int ni = 0; ni < NI; ++ni) {
      mma_emu(f.a[mi], f.bg[ni], acc.g[mi][ni]);
      mma_emu(f.a[mi], f.bu[ni], acc.u[mi][ni]);
    }
}

static void emulate_kernel(int64_t M, int64_t N, int64_t K, int layout, unsigned seed) {
  Problem P{M, N, K, layout, {}, {}, {}};
  std::srand(seed);
  P.x.resize(M * K);
  P.wg.resize(N * K);
  P.wu.resize(N * K);
  for (auto& e : P.x) e = (int16_t)(std::rand() % 17 - 8);
  for (auto& e : P.wg) e = (int16_t)(std::rand() % 17 - 8);
  for (auto& e : P.wu) e = (int16_t)(std::rand() % 17 - 8);

  const uint64_t grid_x = (N + BN - 1) / BN, grid_y = (M + BM - 1) / BM;
  std::vector<int> written(M * N, 0);
  std::vector<int64_t> got_g(M * N, 0), got_u(M * N, 0);
  const int64_t k_tiles = (K + BK - 1) / BK;
  constexpr int NW = THREADS / 32;  // warps: warp_m = w >> 2, warp_n = w & 3
  static WarpFrags fr[NW][2];
  static WarpAcc acc[NW];

  for (uint64_t by = 0; by < grid_y; ++by)
    for (uint64_t bx = 0; bx < grid_x; ++bx) {
      uint64_t tile_m, tile_n;
      glu_grouped_tile(by * grid_x + bx, grid_y, grid_x, GROUP_M, &tile_m, &tile_n);
      const int64_t m_blk = (int64_t)tile_m * BM, n_blk = (int64_t)tile_n * BN;
      Emu E(P);
      std::memset(acc, 0, sizeof acc);
      auto frags_all = [&](int buf, int stage, uint32_t ks, int64_t tile, bool check) {
        if (check) E.mark_read(stage, tile);
        for (uint32_t w = 0; w < NW; ++w)
          load_frags(E, fr[w][buf], E.stage_base(stage), ks, w >> 2, w & 3, layout);
      };
      auto mma_all = [&](int buf) {
        for (int w = 0; w < NW; ++w) mma_frags(acc[w], fr[w][buf]);
      };
      // ---- the kernel's schedule, step by step (16 warps, session 16:
      // each k16 step's fragments are loaded right before its mma) ----
      static_assert(NW == 16, "the schedule below is the 16-warp kernel's");
      E.init(m_blk, n_blk);
      for (int s = 0; s < STAGES - 1; ++s) {
        E.load_stage(s, (int64_t)s * BK);  // past the end: zero-filled
        E.commit();
      }
      E.wait_barrier(STAGES - 2);
      int read_stage = 0, write_stage = STAGES - 1;
      for (int64_t kt = 0; kt < k_tiles; ++kt) {
        frags_all(0, read_stage, 0, kt, true);
        const int64_t pf = kt + (STAGES - 1);
        E.load_stage(write_stage, pf * BK);  // past the end: zero-filled
        E.commit();
        write_stage = (write_stage + 1 == STAGES) ? 0 : write_stage + 1;
        mma_all(0);
        frags_all(1, read_stage, 1, kt, true);
        mma_all(1);
        E.wait_barrier(STAGES - 2);
        read_stage = (read_stage + 1 == STAGES) ? 0 : read_stage + 1;
      }
      // ---- epilogue mapping ----
      for (uint32_t w = 0; w < NW; ++w) {
        const uint32_t wm = w >> 2, wn = w & 3;
        for (int ni = 0; ni < NI; ++ni)
          for (int mi = 0; mi < MI; ++mi)
            for (int l = 0; l < 32; ++l)
              for (int h = 0; h < 2; ++h)
                for (int e = 0; e < 2; ++e) {
                  const int64_t col = n_blk + wn * WN + ni * 8 + (l & 3) * 2 + e;
                  const int64_t row = m_blk + wm * WM + mi * 16 + (l >> 2) + h * 8;
                  if (col >= N || row >= M) continue;
                  written[row * N + col]++;
                  got_g[row * N + col] = acc[w].g[mi][ni][l][2 * h + e];
                  got_u[row * N + col] = acc[w].u[mi][ni][l][2 * h + e];
                }
      }
    }

  int bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t rg = 0, ru = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t wi = layout == GLU_LAYOUT_KN ? k * N + n : n * K + k;
        rg += (int64_t)P.x[m * K + k] * P.wg[wi];
        ru += (int64_t)P.x[m * K + k] * P.wu[wi];
      }
      const bool ok = written[m * N + n] == 1 && got_g[m * N + n] == rg && got_u[m * N + n] == ru;
      if (!ok) ++bad;
      CHECK(ok, "kernel emulation M=%lld N=%lld K=%lld layout %d: (%lld,%lld) written %d gate %lld/%lld up %lld/%lld",
            (long long)M, (long long)N, (long long)K, layout, (long long)m, (long long)n,
            written[m * N + n], (long long)got_g[m * N + n], (long long)rg,
            (long long)got_u[m * N + n], (long long)ru);
    }
  std::printf("  emulated M=%-4lld N=%-4lld K=%-4lld %s: %s\n", (long long)M, (long long)N,
              (long long)K, layout == GLU_LAYOUT_KN ? "kn" : "nk", bad ? "MISMATCH" : "exact");
}

// tf32 variant (fused_glu_mma_{kn,nk}_tf32), f32 elements. Emulated shared
// memory holds one 32-bit word per 4 bytes; values are unique ids.
//   * x / NK tiles [128 rows][16 f32] keep the 16-bit tiles' bytes: the
//     ldmatrix x4 of glu_load_a_frag / glu_load_b_frag_nk, read as 32-bit
//     words (thread T of matrix i gets word T%4 of row address 8i + T/4),
//     must give the m16n8k8 tf32 fragments: A a0 (g, t), a1 (g+8, t),
//     a2 (g, t+4), a3 (g+8, t+4); B b0 (k = t, n = g), b1 (k = t+4, n = g).
//   * KN tile [16 k][128 n], glu_swz512: the cp.async map of StageLoader
//     (glu_mma_src_kn: c = id % 32, r = id / 32, id = tid + THREADS j) covers every chunk once with
//     conflict-free 8-thread phases, and load_b_frag_kn_tf32's 32-bit loads
//     give b0/b1 with the 32 lanes of each load on 32 distinct banks.
static void test_tf32() {
  // glu_swz512: bijection within each row.
  {
    std::set<uint32_t> seen;
    for (uint32_t r = 0; r < 16; ++r)
      for (uint32_t c = 0; c < 32; ++c) {
        uint32_t o = glu_swz512(r, c);
        CHECK(o / 512 == r, "swz512 leaves its row");
        CHECK(o % 16 == 0, "swz512 not chunk aligned");
        CHECK(seen.insert(o).second, "swz512 collision r=%u c=%u", r, c);
      }
  }
  // KN cp.async map.
  {
    std::vector<int> hit(16 * 32, 0);
    for (int j = 0; j < CPT; ++j)
      for (int base = 0; base < THREADS; base += 8) {
        std::set<uint32_t> slots;
        for (int tid = base; tid < base + 8; ++tid) {
          // StageLoader's source of chunk j (glu_mma_src_kn, f32: 4 per chunk).
          const GluMmaChunkSrc src = glu_mma_src_kn(tid + THREADS * j, 0, 128, 4);
          const int r = (int)(src.off / 128), c = (int)(src.off % 128) / 4;
          CHECK(src.kin == (uint32_t)r && src.step == 16 * 128 && src.smem == glu_swz512(r, c),
                "tf32 KN chunk source");
          slots.insert((src.smem / 16) % 8);
          hit[r * 32 + c]++;
        }
        CHECK(slots.size() == 8, "tf32 KN cp.async phase conflicts (j=%d base=%d)", j, base);
      }
    for (int h : hit) CHECK(h == 1, "tf32 KN cp.async map not a bijection");
  }
  // KN fragment loads: word image of the tile, value = k * 1000 + n.
  {
    std::vector<uint32_t> img(16 * 512 / 4, 0xffffffffu);
    for (uint32_t k = 0; k < 16; ++k)
      for (uint32_t c = 0; c < 32; ++c)
        for (uint32_t w = 0; w < 4; ++w) img[(glu_swz512(k, c) + 4 * w) / 4] = k * 1000 + 4 * c + w;
    for (uint32_t warp_n = 0; warp_n < 4; ++warp_n)
      for (uint32_t ni = 0; ni < 4; ++ni)
        for (uint32_t ks = 0; ks < 2; ++ks)
          for (uint32_t h = 0; h < 2; ++h) {
            std::set<uint32_t> banks;
            const uint32_t n0 = warp_n * 32 + ni * 8;
            for (uint32_t lane = 0; lane < 32; ++lane) {
              // load_b_frag_kn_tf32 (fused_glu_mma.cu)
              const uint32_t g = lane >> 2, t = lane & 3, col = n0 + g;
              const uint32_t addr = glu_swz512(ks * 8 + t + 4 * h, col >> 2) + ((col & 3u) << 2);
              banks.insert((addr / 4) % 32);
              const uint32_t want = (ks * 8 + t + 4 * h) * 1000 + col;
              CHECK(img[addr / 4] == want, "tf32 KN b%u lane %u ks %u n0 %u: got %u want %u", h,
                    lane, ks, n0, img[addr / 4], want);
            }
            CHECK(banks.size() == 32, "tf32 KN load conflicts (n0=%u ks=%u b%u): %zu banks",
                  n0, ks, h, banks.size());
          }
  }
  // x / NK tiles through ldmatrix (64-byte rows = 16 f32), value = row * 100 + k.
  {
    std::vector<uint32_t> img(128 * 64 / 4);
    for (uint32_t r = 0; r < 128; ++r)
      for (uint32_t c = 0; c < 4; ++c)
        for (uint32_t w = 0; w < 4; ++w) img[(glu_swz64(r, c) + 4 * w) / 4] = r * 100 + 4 * c + w;
    auto ldsm = [&](const uint32_t addr[32], uint32_t out[32][4]) {
      for (int i = 0; i < 4; ++i)
        for (int T = 0; T < 32; ++T) out[T][i] = img[(addr[8 * i + T / 4] + 4 * (T % 4)) / 4];
    };
    for (uint32_t m0 = 0; m0 < 128; m0 += 16)
      for (uint32_t ks = 0; ks < 2; ++ks) {
        uint32_t addr[32], r[32][4];
        for (uint32_t l = 0; l < 32; ++l)
          addr[l] = glu_swz64(glu_a_ld_row(m0, l), glu_a_ld_chunk(ks * 2u, l));
        ldsm(addr, r);
        for (uint32_t l = 0; l < 32; ++l) {
          const uint32_t g = l >> 2, t = l & 3, k0 = ks * 8;
          const uint32_t want[4] = {(m0 + g) * 100 + k0 + t, (m0 + g + 8) * 100 + k0 + t,
                                    (m0 + g) * 100 + k0 + t + 4, (m0 + g + 8) * 100 + k0 + t + 4};
          for (int i = 0; i < 4; ++i)
            CHECK(r[l][i] == want[i], "tf32 A a%d lane %u m0 %u ks %u: got %u want %u", i, l, m0,
                  ks, r[l][i], want[i]);
        }
        for (uint32_t l = 0; l < 32; ++l)
          addr[l] = glu_swz64(glu_bnk_ld_row(m0, l), glu_bnk_ld_chunk(ks * 2u, l));
        ldsm(addr, r);
        for (uint32_t l = 0; l < 32; ++l) {
          const uint32_t g = l >> 2, t = l & 3, k0 = ks * 8;
          // r0, r1: b0, b1 of n-tile n0 = m0; r2, r3: of n-tile m0 + 8.
          const uint32_t want[4] = {(m0 + g) * 100 + k0 + t, (m0 + g) * 100 + k0 + t + 4,
                                    (m0 + 8 + g) * 100 + k0 + t, (m0 + 8 + g) * 100 + k0 + t + 4};
          for (int i = 0; i < 4; ++i)
            CHECK(r[l][i] == want[i], "tf32 NK B r%d lane %u n0 %u ks %u: got %u want %u", i, l,
                  m0, ks, r[l][i], want[i]);
        }
      }
  }
}

int main() {
  static_assert(GLU_MMA_SMEM_BYTES == STAGES * (A_BYTES + 2 * B_BYTES), "smem size");
  test_tf32();
  static_assert(GLU_MMA_SMEM_BYTES <= 99 * 1024, "must fit sm_86/sm_89 (99 KiB opt-in)");
  test_bijection();
  test_cp_async_mapping();
  test_mma_cursors();
  test_grouped_order();
  struct S { int64_t m, n, k; };
  // Tails around BM=128, BN=128, BK=32; k-tile counts 1..(> STAGES) so the
  // ring wraps; N 8 below/above the tile; a grid with > GROUP_M row tiles.
  const S shapes[] = {{128, 128, 32}, {1, 8, 8},     {127, 120, 24}, {129, 136, 40},
                      {130, 264, 136}, {257, 248, 96}, {64, 128, 200}, {1100, 16, 64},
                      {255, 384, 8},  {129, 8, 328}};
  unsigned seed = 1;
  for (auto s : shapes)
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) emulate_kernel(s.m, s.n, s.k, layout, seed++);
  if (failures) {
    std::printf("swizzle_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("swizzle_test: OK (bijections, grouped block order, bank-conflict-free "
              "ldmatrix/cp.async, loader cursors for f32 and 16-bit, race-free 4-stage ring, "
              "whole-kernel emulation KN+NK exact incl. M/N/K tails; tf32 tiles: fragment maps "
              "and conflict-free loads)\n");
  return 0;
}
