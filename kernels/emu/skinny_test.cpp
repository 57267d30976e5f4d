// The decode kernels fused_glu_skinny_* (split-K) and fused_glu_skinny_sk_*
// (stream-K) of kernels/fused_glu_skinny.cu run by the host emulator
// (kernels/emu/cuda_emu.h) against the double reference: bf16 and f16, both
// layouts, the three row paddings (m16, m32, m64), every activation, biases
// on and off, tails of the 64-column tile, the 64-deep k-tile and the k16
// step; split-K plans of 1 to several slices, stream-K grids of 1, 7, 13
// blocks, the plan's grid and one block per iteration. The f32 workspace is
// filled with NaN before each launch and allocated at exactly the size the
// schedule needs (its end is a no-access page); the ticket counters must be
// back at zero afterwards; blocks run in order or shuffled (other
// arrival orders at the tickets). The register-streaming kernels
// fused_glu_skinny_rs_nk_* (NK, M <= 16) the same way, at the plan's K
// slices and at 1, 2 and 5.
//   g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -I kernels/emu/include -I kernels/emu
//       -I kernels kernels/emu/skinny_test.cpp -o /tmp/emu_skinny && /tmp/emu_skinny
#include "cuda_emu.h"

#include "fused_glu_skinny.cu"

#include "emu_harness.h"

using namespace emut;
typedef void (*SplitKernel)(GluParams, GluSkinnySplit);
typedef void (*SkKernel)(GluParams, GluSkinnyStreamK);

template <typename T> struct Pick;
#define PICK(T, TN)                                                                          \
  template <> struct Pick<T> {                                                               \
    static SplitKernel split(int layout, int m_pad) {                                        \
      if (layout == GLU_LAYOUT_NK)                                                           \
        return m_pad == 16 ? fused_glu_skinny_nk_##TN##_m16                                  \
               : m_pad == 32 ? fused_glu_skinny_nk_##TN##_m32 : fused_glu_skinny_nk_##TN##_m64; \
      return m_pad == 16 ? fused_glu_skinny_kn_##TN##_m16                                    \
             : m_pad == 32 ? fused_glu_skinny_kn_##TN##_m32 : fused_glu_skinny_kn_##TN##_m64;   \
    }                                                                                        \
    static SkKernel sk(int layout, int m_pad) {                                              \
      if (layout == GLU_LAYOUT_NK)                                                           \
        return m_pad == 16 ? fused_glu_skinny_sk_nk_##TN##_m16                               \
               : m_pad == 32 ? fused_glu_skinny_sk_nk_##TN##_m32                             \
                             : fused_glu_skinny_sk_nk_##TN##_m64;                            \
      return m_pad == 16 ? fused_glu_skinny_sk_kn_##TN##_m16                                 \
             : m_pad == 32 ? fused_glu_skinny_sk_kn_##TN##_m32 : fused_glu_skinny_sk_kn_##TN##_m64; \
    }                                                                                        \
  };
PICK(__nv_bfloat16, bf16)
PICK(__half, f16)

static SplitKernel pick_rs(bool f16, int m_pad) {
  if (f16) return m_pad == 8 ? fused_glu_skinny_rs_nk_f16_m8 : fused_glu_skinny_rs_nk_f16_m16;
  return m_pad == 8 ? fused_glu_skinny_rs_nk_bf16_m8 : fused_glu_skinny_rs_nk_bf16_m16;
}

static bool counters_zero(const emu::Buffer& c, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (c.as<unsigned>()[i] != 0) return false;
  return true;
}

// A split-K launch of `kern` on `plan`'s grid: the f32 workspace (splits > 1)
// NaN-poisoned and sized exactly, the tickets in `counters`.
static void launch_split(const std::string& label, SplitKernel kern, const GluParams& p,
                         const GluSkinnyPlan& plan, emu::Buffer& counters) {
  emu::Buffer ws(plan.splits > 1 ? (size_t)(plan.splits * p.m * 2 * p.n) * 4 : 16);
  memset(ws.as<char>(), 0xff, ws.bytes());
  GluSkinnySplit s{};
  s.ws = plan.splits > 1 ? ws.as<float>() : nullptr;
  s.counters = plan.splits > 1 ? counters.as<unsigned>() : nullptr;
  s.k_per_split = plan.k_per_split;
  s.splits = (int32_t)plan.splits;
  emu::launch(label, dim3((unsigned)plan.n_tiles, (unsigned)plan.splits), dim3(plan.threads),
              plan.smem, [&] { kern(p, s); });
}

// sched < 0: split-K with the plan for `sms` SMs; sched >= 0: stream-K on
// `sched` blocks (0: the plan's grid for `sms` SMs at 2 blocks per SM).
template <typename T>
static void run_case(int layout, int64_t M, int64_t N, int64_t K, int act, bool bias, int round,
                     int64_t sched, int64_t sms) {
  FusedCase<T> c(M, N, K, layout, act, bias);
  const GluParams& p = c.p;
  const GluSkinnyPlan plan = glu_skinny_plan(M, N, K, sms);
  const int64_t n_tiles = plan.n_tiles;
  const int64_t iters = n_tiles * ((K + GLU_SKINNY_BK - 1) / GLU_SKINNY_BK);
  emu::Buffer counters((size_t)n_tiles * 4);
  memset(counters.as<char>(), 0, counters.bytes());
  std::string label;
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round + sched * 1009));
  const char* tn = std::is_same<T, __half>::value ? "f16" : "bf16";
  const char* lay = layout == GLU_LAYOUT_NK ? "nk" : "kn";
  if (sched < 0) {
    label = fmt("fused_glu_skinny_%s_%s_m%d M=%" PRId64 " N=%" PRId64 " K=%" PRId64
                " act=%d bias=%d splits=%" PRId64 " %s",
                lay, tn, plan.m_pad, M, N, K, act, (int)bias, plan.splits, round_name(round));
    launch_split(label, Pick<T>::split(layout, plan.m_pad), p, plan, counters);
  } else {
    int64_t G = sched == 0 ? glu_sk_blocks(iters, 2, sms) : sched;
    if (G > iters) G = iters;  // the kernel's precondition
    emu::Buffer ws((size_t)(2 * G * M * 2 * GLU_SKINNY_BN) * 4);
    memset(ws.as<char>(), 0xff, ws.bytes());
    GluSkinnyStreamK s{};
    s.ws = ws.as<float>();
    s.counters = counters.as<unsigned>();
    label = fmt("fused_glu_skinny_sk_%s_%s_m%d M=%" PRId64 " N=%" PRId64 " K=%" PRId64
                " act=%d bias=%d grid=%" PRId64 "/%" PRId64 " iters %s",
                lay, tn, plan.m_pad, M, N, K, act, (int)bias, G, iters, round_name(round));
    SkKernel kern = Pick<T>::sk(layout, plan.m_pad);
    emu::launch(label, dim3((unsigned)G), dim3(plan.threads), plan.smem, [&] { kern(p, s); });
  }
  c.check(label);
  const bool zero = counters_zero(counters, n_tiles);
  if (!zero) std::printf("FAIL %s: ticket counters not back at zero\n", label.c_str());
  g_tally.add(zero);
}

// The register-streaming kernels (NK only, M <= 16): the plan for `sms` SMs,
// or (splits > 0) that many K slices of whole 64-deep k-tiles.
template <typename T>
static void run_rs_case(int64_t M, int64_t N, int64_t K, int act, bool bias, int round,
                        int64_t sms, int64_t splits) {
  FusedCase<T> c(M, N, K, GLU_LAYOUT_NK, act, bias);
  GluSkinnyPlan plan = glu_skinny_rs_plan(M, N, K, sms);
  if (splits > 0) {
    const int64_t k_tiles = (K + GLU_SKINNY_BK - 1) / GLU_SKINNY_BK;
    const int64_t kt_per = (k_tiles + splits - 1) / splits;
    plan.k_per_split = kt_per * GLU_SKINNY_BK;
    plan.splits = (k_tiles + kt_per - 1) / kt_per;
  }
  const int64_t n_tiles = plan.n_tiles;
  emu::Buffer counters((size_t)n_tiles * 4);
  memset(counters.as<char>(), 0, counters.bytes());
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round + splits * 3001));
  const bool f16 = std::is_same<T, __half>::value;
  const std::string label =
      fmt("fused_glu_skinny_rs_nk_%s_m%d M=%" PRId64 " N=%" PRId64 " K=%" PRId64
          " act=%d bias=%d splits=%" PRId64 " %s",
          f16 ? "f16" : "bf16", plan.m_pad, M, N, K, act, (int)bias, plan.splits,
          round_name(round));
  launch_split(label, pick_rs(f16, plan.m_pad), c.p, plan, counters);
  c.check(label);
  const bool zero = counters_zero(counters, n_tiles);
  if (!zero) std::printf("FAIL %s: ticket counters not back at zero\n", label.c_str());
  g_tally.add(zero);
}

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  struct Shape {
    int64_t m, n, k;
  };
  // Row paddings 16 / 32 / 64 and their edges; 64-column and 64-deep tile
  // tails; K from one k16 step to 16+ k-tiles (several split-K slices).
  const Shape shapes[] = {{1, 8, 8},      {7, 136, 264},  {16, 72, 1000}, {17, 200, 520},
                          {32, 64, 64},   {33, 136, 1032}, {64, 8, 328},  {5, 264, 2056}};
  const int64_t sms_list[] = {1, 3, 64};
  int i = 0;
  for (const Shape& s : shapes) {
    if (quick && i > 3) break;
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
      const int act = (int)((s.m + s.n + s.k / 8 + layout + i) % 7);
      const bool bias = (i + layout) % 2 == 0;
      const int64_t sms = sms_list[(i + layout) % 3];
      // split-K (the plan for `sms` SMs), bf16 and f16
      run_case<__nv_bfloat16>(layout, s.m, s.n, s.k, act, bias, (i + layout) % 3, -1, sms);
      run_case<__half>(layout, s.m, s.n, s.k, (act + 1) % 7, !bias, (i + layout + 1) % 3, -1,
                       1);
      // stream-K: the plan's grid and fixed grids (dtype, bias, round rotate)
      const int64_t grids[] = {0, 1, 7, 13, 1 << 20};
      int j = 0;
      for (int64_t G : grids) {
        if (quick && j > 2) break;
        const int r = (i + layout + j) % 3;
        if ((i + j + layout) % 2)
          run_case<__nv_bfloat16>(layout, s.m, s.n, s.k, (act + j) % 7, (j + layout) % 2 == 0, r,
                                  G, sms);
        else
          run_case<__half>(layout, s.m, s.n, s.k, (act + j) % 7, (j + layout) % 2 == 0, r, G,
                           sms);
        ++j;
      }
    }
    ++i;
  }
  // Register streaming: M on both sides of 8 and up to 16; N with tails of
  // the 64-column tile and of a warp's 16 columns (8, 24, 200); K from one
  // partial 32-deep chunk to several slices with a partial last chunk.
  const Shape rs_shapes[] = {{1, 8, 8},     {8, 72, 40},   {9, 24, 264},  {16, 136, 1000},
                             {5, 200, 2056}, {1, 264, 520}, {12, 64, 72},  {3, 128, 4104}};
  int r = 0;
  for (const Shape& s : rs_shapes) {
    if (quick && r > 3) break;
    const int act = (int)((s.m + s.n + s.k / 8 + r) % 7);
    const int64_t splits_list[] = {0, 1, 2, 5};
    int j = 0;
    for (int64_t splits : splits_list) {
      const int round = (r + j) % 3;
      // Biases on and off for each dtype within every shape (not the
      // dtype's parity (r + j) % 2, which ran bf16 always without them).
      const bool bias = (r + j / 2) % 2 == 0;
      if ((r + j) % 2)
        run_rs_case<__nv_bfloat16>(s.m, s.n, s.k, (act + j) % 7, bias, round,
                                   sms_list[(r + j) % 3], splits);
      else
        run_rs_case<__half>(s.m, s.n, s.k, (act + j) % 7, bias, round, sms_list[(r + j) % 3],
                            splits);
      ++j;
    }
    ++r;
  }
  // Every activation through every kernel: split-K and stream-K at each row
  // padding (M 7, 17, 33: 16, 32, 64 rows), both layouts and dtypes, and
  // register streaming at 8 and 16 rows (M 5, 12), on a small shape with
  // N and K tails (K 264: several 64-deep tiles and 32-deep chunks, a
  // partial last one). The cases above give each kernel two to seven of the
  // seven. Not in quick mode, which the mutants run.
  if (!quick)
    for_each_act_layout_dtype([](int act, int layout, bool f16, bool bias, int round) {
      for (int64_t m : {7, 17, 33})
        for (int64_t sched : {-1, 0}) {  // split-K, stream-K (the plan's grid)
          if (f16)
            run_case<__half>(layout, m, 24, 264, act, bias, round, sched, 3);
          else
            run_case<__nv_bfloat16>(layout, m, 24, 264, act, bias, round, sched, 3);
        }
      // Register streaming takes NK weights only: its turn comes with that
      // layout, at both row counts (biases flipped between them).
      if (layout == GLU_LAYOUT_NK)
        for (int64_t m : {5, 12}) {
          const bool b = bias != (m == 12);
          if (f16)
            run_rs_case<__half>(m, 24, 264, act, b, round, 3, m == 5 ? 0 : 2);
          else
            run_rs_case<__nv_bfloat16>(m, 24, 264, act, b, round, 3, m == 5 ? 0 : 2);
        }
    });
  return finish("emu skinny_test");
}
