// Host test of the decode kernel's stream-K schedule (kernels/glu_skinny.cuh,
// used by skinny_streamk_body in kernels/fused_glu_skinny.cu):
//   1. the blocks' ranges partition the n_tiles x k_tiles iterations, every
//      block gets at least one and the shares differ by at most one;
//   2. walking each block's range with glu_sk_segment, exactly as the kernel
//      does, covers every (tile, k-tile) once;
//   3. a tile is stored directly exactly when one block holds all of it, and
//      then no other block touches it;
//   4. for a shared tile, the blocks that hold part of it are exactly
//      glu_sk_first_block .. glu_sk_last_block, so the ticket count the
//      kernel waits for is the number of partials written;
//   5. no two partials (of any block, any tile) share a slot, every slot is
//      < 2G, and the finisher's slot list (glu_sk_slot(first + s)) is the
//      slots those blocks wrote, in block order;
//   6. the finisher's sum, in that order, is the same whichever contributor
//      arrives last (emulated over random arrival orders), and the k-ranges
//      of the contributors in block order are consecutive and ascending;
//   7. glu_sk_blocks: one block per resident slot, capped at iters / 4.
// Mutations of the helpers make it fail: begin rounded up, block_of or
// last_block off by one, one slot per block, a segment not cut at the end of
// the block's range, the finisher's later contributors read at 2b + 1. (Swapping the two slots of a block is no bug: writer and
// finisher use the same function.)
// Build: g++ -std=c++17 -O2 -Wall -I kernels kernels/tests/skinny_streamk_test.cpp
#include "glu_skinny.cuh"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <vector>

static int g_fail = 0;
static long long g_checks = 0;
#define CHECK(c, ...)                                               \
  do {                                                              \
    ++g_checks;                                                     \
    if (!(c)) {                                                     \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);              \
      std::printf(__VA_ARGS__);                                     \
      std::printf("\n");                                            \
      if (++g_fail > 20) std::exit(1);                              \
    }                                                               \
  } while (0)

struct Piece {
  int64_t block, kt0, kt1;
  bool partial;
  int64_t slot;
};

// Runs the kernel's walk for every block of a (n_tiles, k_tiles, G) launch
// and checks properties 1-6.
static void check_schedule(int64_t n_tiles, int64_t k_tiles, int64_t G, std::mt19937_64& rng) {
  const int64_t iters = n_tiles * k_tiles;
  CHECK(glu_sk_begin(0, G, iters) == 0 && glu_sk_begin(G, G, iters) == iters,
        "begin ends: n_tiles=%lld k_tiles=%lld G=%lld", (long long)n_tiles, (long long)k_tiles,
        (long long)G);
  const int64_t share = iters / G;
  std::vector<std::vector<Piece>> by_tile(n_tiles);
  std::vector<int> seen(iters, 0);
  for (int64_t b = 0; b < G; ++b) {
    const int64_t i0 = glu_sk_begin(b, G, iters), i_end = glu_sk_begin(b + 1, G, iters);
    CHECK(i_end - i0 == share || i_end - i0 == share + 1,
          "block %lld of %lld gets %lld iterations, share %lld", (long long)b, (long long)G,
          (long long)(i_end - i0), (long long)share);
    if (G <= iters) CHECK(i_end > i0, "block %lld empty", (long long)b);
    for (int64_t i = i0; i < i_end;) {
      const GluSkSegment s = glu_sk_segment(i, i_end, k_tiles);
      CHECK(s.tile >= 0 && s.tile < n_tiles && s.kt0 >= 0 && s.kt0 < s.kt1 && s.kt1 <= k_tiles,
            "segment (%lld, %lld, %lld)", (long long)s.tile, (long long)s.kt0, (long long)s.kt1);
      CHECK(s.tile * k_tiles + s.kt0 == i && i + (s.kt1 - s.kt0) <= i_end,
            "segment [%lld, %lld) of tile %lld leaves the block's range at i = %lld",
            (long long)s.kt0, (long long)s.kt1, (long long)s.tile, (long long)i);
      if (s.tile < 0 || s.tile >= n_tiles || s.kt0 < 0 || s.kt0 >= s.kt1 || s.kt1 > k_tiles ||
          i + (s.kt1 - s.kt0) > i_end)
        break;
      for (int64_t kt = s.kt0; kt < s.kt1; ++kt) ++seen[s.tile * k_tiles + kt];
      // The kernel: whole tile -> direct store; else a partial in its slot.
      const bool whole = s.kt0 == 0 && s.kt1 == k_tiles;
      by_tile[s.tile].push_back(
          {b, s.kt0, s.kt1, !whole, whole ? -1 : glu_sk_slot(b, s.tile, k_tiles, G, iters)});
      for (int64_t j = i; j < i + (s.kt1 - s.kt0); ++j)
        CHECK(glu_sk_block_of(j, G, iters) == b, "block_of(%lld) != %lld", (long long)j,
              (long long)b);
      i += s.kt1 - s.kt0;
    }
  }
  for (int64_t i = 0; i < iters; ++i)
    CHECK(seen[i] == 1, "iteration %lld covered %d times (n_tiles=%lld k_tiles=%lld G=%lld)",
          (long long)i, seen[i], (long long)n_tiles, (long long)k_tiles, (long long)G);

  std::map<int64_t, int64_t> slot_owner;  // slot -> tile
  for (int64_t t = 0; t < n_tiles; ++t) {
    const std::vector<Piece>& ps = by_tile[t];
    const int64_t first = glu_sk_first_block(t, k_tiles, G, iters);
    const int64_t last = glu_sk_last_block(t, k_tiles, G, iters);
    CHECK((int64_t)ps.size() == last - first + 1, "tile %lld: %zu pieces, ticket count %lld",
          (long long)t, ps.size(), (long long)(last - first + 1));
    if (ps.size() == 1) {
      CHECK(!ps[0].partial && ps[0].block == first, "tile %lld alone but partial", (long long)t);
      continue;
    }
    // Pieces in block order, k-ranges consecutive and ascending.
    int64_t k_next = 0;
    for (size_t c = 0; c < ps.size(); ++c) {
      const Piece& p = ps[c];
      CHECK(p.partial, "shared tile %lld stored directly by block %lld", (long long)t,
            (long long)p.block);
      CHECK(p.block == first + (int64_t)c, "tile %lld piece %zu from block %lld", (long long)t, c,
            (long long)p.block);
      CHECK(p.kt0 == k_next, "tile %lld k-ranges not consecutive", (long long)t);
      k_next = p.kt1;
      // The finisher reads contributor c from the slot the kernel computes.
      const int64_t read = glu_sk_contributor_slot((int64_t)c, first,
                                                   glu_sk_slot(first, t, k_tiles, G, iters));
      CHECK(read == p.slot && glu_sk_slot(first + (int64_t)c, t, k_tiles, G, iters) == p.slot,
            "tile %lld: finisher reads slot %lld for block %lld, which wrote %lld", (long long)t,
            (long long)read, (long long)p.block, (long long)p.slot);
      CHECK(p.slot >= 0 && p.slot < 2 * G, "slot %lld of %lld", (long long)p.slot,
            (long long)(2 * G));
      CHECK(p.slot / 2 == p.block, "slot %lld not the block's own", (long long)p.slot);
      CHECK(slot_owner.emplace(p.slot, t).second, "slot %lld written for tiles %lld and %lld",
            (long long)p.slot, (long long)slot_owner[p.slot], (long long)t);
    }
    CHECK(k_next == k_tiles, "tile %lld k-ranges end at %lld", (long long)t, (long long)k_next);

    // Determinism: partial values that are not associative in float; the
    // last arrival (any order) sums slots first..last in block order.
    std::vector<float> partial(2 * G, 0.0f);
    std::uniform_real_distribution<float> u(-1e4f, 1e4f);
    for (const Piece& p : ps) partial[p.slot] = u(rng) * (p.block % 3 == 0 ? 1e-4f : 1.0f);
    const int64_t slot0 = glu_sk_slot(first, t, k_tiles, G, iters);
    float ref = 0;
    for (int64_t c = 0; c <= last - first; ++c) ref += partial[ps[c].slot];
    std::vector<size_t> order(ps.size());
    for (size_t c = 0; c < order.size(); ++c) order[c] = c;
    for (int rep = 0; rep < 3; ++rep) {
      std::shuffle(order.begin(), order.end(), rng);
      unsigned counter = 0;
      int finishers = 0;
      float got = 0;
      for (size_t c : order) {
        const unsigned prev = counter++;
        if (prev == (unsigned)(last - first + 1) - 1u) {  // take_ticket's test
          ++finishers;
          got = 0;
          for (int64_t s = 0; s < last - first + 1; ++s)
            got += partial[glu_sk_contributor_slot(s, first, slot0)];
        }
        (void)c;
      }
      CHECK(finishers == 1 && got == ref, "tile %lld: %d finishers, sum %g vs %g", (long long)t,
            finishers, got, ref);
    }
  }
}

int main() {
  std::mt19937_64 rng(12345);
  long long launches = 0;
  // Exhaustive small launches: every G from 1 to iters.
  for (int64_t n_tiles = 1; n_tiles <= 9; ++n_tiles)
    for (int64_t k_tiles = 1; k_tiles <= 9; ++k_tiles)
      for (int64_t G = 1; G <= n_tiles * k_tiles; ++G, ++launches)
        check_schedule(n_tiles, k_tiles, G, rng);
  // Decode-sized launches: N = 11008 / 14336 / 4096 / odd, K = 4096 / 14336 /
  // tails, G from the occupancy of an H200, an A100, an sm_89 part, and odd.
  for (int64_t n : {8, 1000, 4096, 4104, 11008, 14336, 28672})
    for (int64_t k : {8, 72, 1000, 4096, 14336})
      for (int64_t G : {1, 7, 64, 128, 132 * 2, 132 * 3, 108 * 2, 170, 1000}) {
        const int64_t n_tiles = (n + GLU_SKINNY_BN - 1) / GLU_SKINNY_BN;
        const int64_t k_tiles = (k + GLU_SKINNY_BK - 1) / GLU_SKINNY_BK;
        if (G > n_tiles * k_tiles) continue;
        check_schedule(n_tiles, k_tiles, G, rng);
        ++launches;
      }
  // The grid: one block per resident slot, at most iters / 4, at least 1.
  CHECK(glu_sk_blocks(172 * 64, 3, 132) == 396, "H200 m16, N = 11008");
  CHECK(glu_sk_blocks(224 * 64, 2, 108) == 216, "A100 m16, N = 14336");
  CHECK(glu_sk_blocks(172 * 64, 1, 128) == 128, "sm_89 m16, N = 11008");
  CHECK(glu_sk_blocks(3, 3, 132) == 1, "tiny");
  CHECK(glu_sk_blocks(1 * 16, 2, 132) == 4, "one tile of K = 1024");
  CHECK(glu_sk_blocks(100, 0, 0) == 1, "no occupancy known: one slot per SM, >= 1 SM");
  for (int64_t iters = 1; iters < 5000; iters += 7)
    for (int64_t cap : {1, 2, 3})
      for (int64_t sms : {1, 46, 108, 132}) {
        const int64_t g = glu_sk_blocks(iters, cap, sms);
        CHECK(g >= 1 && g <= cap * sms && (g == 1 || g * GLU_SKINNY_MIN_KTILES_PER_SPLIT <= iters),
              "glu_sk_blocks(%lld, %lld, %lld) = %lld", (long long)iters, (long long)cap,
              (long long)sms, (long long)g);
      }
  std::printf("skinny_streamk_test: %lld launches, %lld checks, %d failures\n", launches,
              g_checks, g_fail);
  return g_fail ? 1 : 0;
}
