// The Hopper fused kernels (kernels/fused_glu_wgmma.cu: plain, tail-split,
// cluster; kernels/fused_glu_wgmma_staged.cu) run by the host emulator
// (kernels/emu/cuda_emu.h + cuda_emu_hopper.h) against the double
// reference: bf16 and f16, both weight layouts, every activation, biases on
// and off, M/N/K tails of the 128 x 128 x 64 tile, persistent grids smaller
// than the tile count (a CTA walks several tiles and the producer runs
// ahead across them), all CTAs resident at once. Tensor maps, grids and the
// tail-split plan mirror src/cuda/hopper.rs. The plain kernel passed on an
// H200 (session 2), so it also calibrates the emulator's wgmma / TMA models.
//   g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -I kernels/emu/include -I kernels/emu
//       -I kernels kernels/emu/hopper_test.cpp -o /tmp/emu_hopper && /tmp/emu_hopper
#include "cuda_emu.h"

#include "fused_glu_wgmma.cu"
#include "fused_glu_wgmma_staged.cu"

#include "emu_harness.h"

using namespace emut;

typedef void (*PlainK)(CUtensorMap, CUtensorMap, CUtensorMap, GluParams);
typedef void (*StagedK)(CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap, GluParams);
typedef void (*SplitK)(CUtensorMap, CUtensorMap, CUtensorMap, GluParams, GluTailSplit);

enum class Sched { Plain, Staged, Split, Cluster };
static const char* sched_name(Sched s) {
  return s == Sched::Plain ? "wgmma" : s == Sched::Staged ? "wgmma_staged"
                                   : s == Sched::Split    ? "wgmma_split"
                                                          : "wgmma_cluster";
}

// encode_map of src/cuda/hopper.rs: [rows, inner] row-major, box {64, box_rows}.
static CUtensorMap map2d(const void* p, uint64_t rows, uint64_t inner, uint32_t box_rows) {
  CUtensorMap m;
  const uint64_t dims[2] = {inner, rows}, strides[1] = {inner * 2};
  const uint32_t box[2] = {64, box_rows};
  emu::encode_tiled(&m, 2, p, dims, strides, box);
  return m;
}

// tail_split_plan of src/cuda/hopper.rs (TAIL_SPLIT_MAX_PARTS 4, MIN_KTILES 4).
static double tail_cost(int64_t tiles, int64_t width, int64_t tails, int64_t parts) {
  return (double)(tiles / width) + (double)((tails * parts + width - 1) / width) / (double)parts;
}
static int64_t split_parts(int64_t tiles, int64_t width, int64_t k_tiles) {
  const int64_t tails = tiles % width;
  int64_t parts = 1;
  if (tails > 0)
    for (int64_t p = 2; p <= 4; ++p)
      if (k_tiles >= p * 4 &&
          tail_cost(tiles, width, tails, p) + 0.02 < tail_cost(tiles, width, tails, parts))
        parts = p;
  return parts;
}

template <typename T>
static void run_case(Sched sched, int layout, int64_t M, int64_t N, int64_t K, int act, bool bias,
                     int round, int64_t sms) {
  const bool f16 = std::is_same<T, __half>::value;
  FusedCase<T> c(M, N, K, layout, act, bias);
  const GluParams& p = c.p;
  const T *dx = c.dx.p, *dwg = c.dwg.p, *dwu = c.dwu.p;
  const CUtensorMap tx = map2d(dx, M, K, kWgBM);
  const CUtensorMap tg = layout == GLU_LAYOUT_NK ? map2d(dwg, N, K, kWgBN) : map2d(dwg, K, N, kWgBK);
  const CUtensorMap tu = layout == GLU_LAYOUT_NK ? map2d(dwu, N, K, kWgBN) : map2d(dwu, K, N, kWgBK);
  const CUtensorMap to = map2d(c.out.p, M, N, 64);
  const int64_t m_tiles = (M + kWgBM - 1) / kWgBM, n_tiles = (N + kWgBN - 1) / kWgBN;
  const int64_t tiles = m_tiles * n_tiles;
  const int64_t k_tiles = (K + kWgBK - 1) / kWgBK;
  int64_t grid = glu_wgmma_grid(M, N, sms);
  const char* lay = layout == GLU_LAYOUT_NK ? "nk" : "kn";
  std::string extra;
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round + (int)sched * 77));
  if (sched == Sched::Plain || sched == Sched::Staged) {
    extra = fmt("grid=%lld", (long long)grid);
  }
  const std::string label =
      fmt("fused_glu_%s_%s_%s M=%lld N=%lld K=%lld act=%d bias=%d %s", sched_name(sched), lay,
          f16 ? "f16" : "bf16", (long long)M, (long long)N, (long long)K, act, (int)bias,
          round_name(round));
  bool flags_ok = true;
  if (sched == Sched::Plain) {
    PlainK k = layout == GLU_LAYOUT_NK ? (f16 ? fused_glu_wgmma_nk_f16 : fused_glu_wgmma_nk_bf16)
                                       : (f16 ? fused_glu_wgmma_kn_f16 : fused_glu_wgmma_kn_bf16);
    emu::launch(label + " " + extra, dim3((unsigned)grid), dim3(kWgThreads), kWgSmemBytes,
                [&] { k(tx, tg, tu, p); }, true);
  } else if (sched == Sched::Staged) {
    StagedK k = layout == GLU_LAYOUT_NK
                    ? (f16 ? fused_glu_wgmma_staged_nk_f16 : fused_glu_wgmma_staged_nk_bf16)
                    : (f16 ? fused_glu_wgmma_staged_kn_f16 : fused_glu_wgmma_staged_kn_bf16);
    emu::launch(label + " " + extra, dim3((unsigned)grid), dim3(kWgThreads), kWgSmemBytesStaged,
                [&] { k(tx, tg, tu, to, p); }, true);
  } else if (sched == Sched::Split) {
    const int64_t width = sms;
    const int64_t parts = split_parts(tiles, width, k_tiles);
    const int64_t tails = tiles % width;
    emu::Buffer ws((size_t)std::max<int64_t>(1, (parts - 1) * tails * 2 * kWgSplitSlotF4) * 16);
    memset(ws.as<char>(), 0xff, ws.bytes());
    emu::Buffer flags((size_t)std::max<int64_t>(1, 2 * tails) * 4);
    memset(flags.as<char>(), 0, flags.bytes());
    GluTailSplit ts{};
    ts.ws = parts > 1 ? ws.as<float>() : nullptr;
    ts.flags = parts > 1 ? flags.as<unsigned>() : nullptr;
    ts.width = width;
    ts.parts = (int32_t)parts;
    SplitK k = layout == GLU_LAYOUT_NK
                   ? (f16 ? fused_glu_wgmma_split_nk_f16 : fused_glu_wgmma_split_nk_bf16)
                   : (f16 ? fused_glu_wgmma_split_kn_f16 : fused_glu_wgmma_split_kn_bf16);
    extra = fmt("grid=%lld tiles=%lld tails=%lld parts=%lld", (long long)grid, (long long)tiles,
                (long long)tails, (long long)parts);
    emu::launch(label + " " + extra, dim3((unsigned)grid), dim3(kWgThreads), kWgSmemBytes,
                [&] { k(tx, tg, tu, p, ts); }, true);
    for (int64_t i = 0; i < 2 * tails && parts > 1; ++i) flags_ok &= flags.as<unsigned>()[i] == 0;
  } else {
    // wgmma_cluster_grid: 2 x min(pair units, resident clusters = sms / 2).
    const int64_t pairs = (m_tiles + 1) / 2 * n_tiles;
    const int64_t clusters = std::max<int64_t>(1, std::min<int64_t>(pairs, std::max<int64_t>(1, sms / 2)));
    grid = 2 * clusters;
    extra = fmt("grid=%lld pairs=%lld", (long long)grid, (long long)pairs);
    PlainK k = layout == GLU_LAYOUT_NK
                   ? (f16 ? fused_glu_wgmma_cluster_nk_f16 : fused_glu_wgmma_cluster_nk_bf16)
                   : (f16 ? fused_glu_wgmma_cluster_kn_f16 : fused_glu_wgmma_cluster_kn_bf16);
    emu::launch(label + " " + extra, dim3((unsigned)grid), dim3(kWgThreads), kWgSmemBytes,
                [&] { k(tx, tg, tu, p); }, true, 2);
  }
  c.check(label + " " + extra);
  if (sched == Sched::Staged || sched == Sched::Cluster) {
    // The same tile computation as the plain kernel: bit for bit.
    Out<T> ref(M * N);
    GluParams q = p;
    q.out = ref.p;
    PlainK k = layout == GLU_LAYOUT_NK ? (f16 ? fused_glu_wgmma_nk_f16 : fused_glu_wgmma_nk_bf16)
                                       : (f16 ? fused_glu_wgmma_kn_f16 : fused_glu_wgmma_kn_bf16);
    emu::launch(label + " (plain, for bit identity)", dim3((unsigned)glu_wgmma_grid(M, N, sms)),
                dim3(kWgThreads), kWgSmemBytes, [&] { k(tx, tg, tu, q); }, true);
    const bool same = memcmp(ref.p, c.out.p, (size_t)(M * N) * sizeof(T)) == 0;
    std::printf("%s %s: bit-identical to fused_glu_wgmma\n", same ? "ok  " : "FAIL",
                label.c_str());
    g_tally.add(same);
  }
  if (!flags_ok) std::printf("FAIL %s: tail-split flags not back at zero\n", label.c_str());
  if (sched == Sched::Split) g_tally.add(flags_ok);
}

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  struct Case {
    Sched s;
    int64_t m, n, k, sms;
  };
  const Case cases[] = {
      {Sched::Plain, 1, 8, 8, 4},        {Sched::Plain, 130, 136, 264, 3},
      {Sched::Plain, 257, 264, 72, 5},   {Sched::Staged, 1, 8, 8, 4},
      {Sched::Staged, 130, 136, 264, 3}, {Sched::Staged, 257, 264, 72, 5},
      {Sched::Split, 130, 136, 520, 3},  {Sched::Split, 300, 136, 1032, 5},
      {Sched::Split, 257, 72, 264, 2},   {Sched::Split, 300, 264, 776, 7},
      {Sched::Cluster, 257, 136, 264, 2},
      {Sched::Cluster, 130, 264, 136, 6}, {Sched::Cluster, 1, 8, 520, 4},
  };
  int i = 0;
  for (const Case& c : cases) {
    if (quick && c.m * c.n * c.k > 130 * 136 * 264) continue;
    for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN}) {
      const int act = (int)((c.m + c.n + c.k / 8 + layout + i) % 7);
      // Not (i + layout) % 2, the dtype's parity (that ran bf16 always
      // without biases, f16 always with): each schedule gets both for each
      // dtype, in quick mode too, and so does every kernel (layout, dtype)
      // that runs twice.
      const bool bias = (i / 2 + layout) % 2 == 0;
      const int round = (i + layout) % 3;
      if ((i + layout) % 2)
        run_case<__nv_bfloat16>(c.s, layout, c.m, c.n, c.k, act, bias, round, c.sms);
      else
        run_case<__half>(c.s, layout, c.m, c.n, c.k, act, bias, round, c.sms);
    }
    ++i;
  }
  // Every activation through every kernel (schedule x layout x dtype), with
  // M, N and K tails of the tile: the cases above give each schedule two to
  // four of the seven. Small shapes (the split one still splits its last
  // wave: 3 tiles on 2 SMs, 9 k-tiles, 2 parts), so the sweep is cheap;
  // not in quick mode, which the mutants run.
  if (!quick) {
    const Case sweeps[] = {{Sched::Plain, 33, 24, 72, 2},
                           {Sched::Staged, 33, 24, 72, 2},
                           {Sched::Split, 257, 8, 520, 2},
                           {Sched::Cluster, 130, 24, 72, 2}};
    for (const Case& c : sweeps)
      for_each_act_layout_dtype([&](int act, int layout, bool f16, bool bias, int round) {
        if (f16)
          run_case<__half>(c.s, layout, c.m, c.n, c.k, act, bias, round, c.sms);
        else
          run_case<__nv_bfloat16>(c.s, layout, c.m, c.n, c.k, act, bias, round, c.sms);
      });
  }
  return finish("emu hopper_test");
}
