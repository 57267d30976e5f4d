// Standalone GPU self-test (and timing) of fused_glu_skinny_* against a
// double-precision CPU reference. No Rust involved; not compiled by build.rs.
//   build (no GPU needed):
//     $NVCC -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a \
//           -gencode=arch=compute_80,code=sm_80 -cudart static -I kernels \
//           kernels/tests/skinny_selftest.cu -o target/kcheck/skinny_selftest
//   run on the GPU machine:
//     ./skinny_selftest          correctness (exit 0 = all passed, ~seconds),
//                                then the bandwidth probes (kernels/tests/bw_probe.cuh)
//     ./skinny_selftest bw       correctness + the bandwidth probes
//     ./skinny_selftest bench    + timing at K=4096, N in {11008, 14336}
//   (the register-streaming kernels fused_glu_skinny_rs_nk_* are checked on
//   their own cases and timed next to the ring kernels)
//     ./skinny_selftest variants timing of alternative warp/stage configurations only
// The default run also checks and times the NK tile variants below
// (longer per-row runs: BK = 128) and the stream-K kernels
// (fused_glu_skinny_sk_*), next to the shipped kernel's "bench" lines.
#include "../fused_glu_skinny.cu"

#define SELFTEST_SEED 4321
#include "selftest_common.cuh"

#include <map>
#include <string>
#include <type_traits>

static int g_fail = 0, g_checks = 0, g_sms = 0;

#include "bw_probe.cuh"

static double ref_act(double z, int act, double beta) {
  switch (act) {
    case GLU_ACT_SILU: return z / (1.0 + std::exp(-z));
    case GLU_ACT_SWISH: return z / (1.0 + std::exp(-beta * z));
    case GLU_ACT_SIGMOID: return 1.0 / (1.0 + std::exp(-z));
    case GLU_ACT_GELU_ERF: return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
    case GLU_ACT_GELU_TANH:
      return 0.5 * z * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (z + 0.044715 * z * z * z)));
    case GLU_ACT_RELU: return z > 0 ? z : (z != z ? z : 0.0);
    default: return z;
  }
}

typedef void (*SkinnyKernel)(GluParams, GluSkinnySplit);

template <typename T> static SkinnyKernel pick(int layout, int m_pad);
template <> SkinnyKernel pick<__nv_bfloat16>(int layout, int m_pad) {
  if (layout == GLU_LAYOUT_NK)
    return m_pad == 16 ? fused_glu_skinny_nk_bf16_m16 : m_pad == 32 ? fused_glu_skinny_nk_bf16_m32 : fused_glu_skinny_nk_bf16_m64;
  return m_pad == 16 ? fused_glu_skinny_kn_bf16_m16 : m_pad == 32 ? fused_glu_skinny_kn_bf16_m32 : fused_glu_skinny_kn_bf16_m64;
}
template <> SkinnyKernel pick<__half>(int layout, int m_pad) {
  if (layout == GLU_LAYOUT_NK)
    return m_pad == 16 ? fused_glu_skinny_nk_f16_m16 : m_pad == 32 ? fused_glu_skinny_nk_f16_m32 : fused_glu_skinny_nk_f16_m64;
  return m_pad == 16 ? fused_glu_skinny_kn_f16_m16 : m_pad == 32 ? fused_glu_skinny_kn_f16_m32 : fused_glu_skinny_kn_f16_m64;
}

typedef void (*SkinnySkKernel)(GluParams, GluSkinnyStreamK);

template <typename T> static SkinnySkKernel pick_sk(int layout, int m_pad);
template <> SkinnySkKernel pick_sk<__nv_bfloat16>(int layout, int m_pad) {
  if (layout == GLU_LAYOUT_NK)
    return m_pad == 16 ? fused_glu_skinny_sk_nk_bf16_m16 : m_pad == 32 ? fused_glu_skinny_sk_nk_bf16_m32 : fused_glu_skinny_sk_nk_bf16_m64;
  return m_pad == 16 ? fused_glu_skinny_sk_kn_bf16_m16 : m_pad == 32 ? fused_glu_skinny_sk_kn_bf16_m32 : fused_glu_skinny_sk_kn_bf16_m64;
}
template <> SkinnySkKernel pick_sk<__half>(int layout, int m_pad) {
  if (layout == GLU_LAYOUT_NK)
    return m_pad == 16 ? fused_glu_skinny_sk_nk_f16_m16 : m_pad == 32 ? fused_glu_skinny_sk_nk_f16_m32 : fused_glu_skinny_sk_nk_f16_m64;
  return m_pad == 16 ? fused_glu_skinny_sk_kn_f16_m16 : m_pad == 32 ? fused_glu_skinny_sk_kn_f16_m32 : fused_glu_skinny_sk_kn_f16_m64;
}

// ---- NK tile variants: the shipped body with other (BN, BK) ----------------
// bw_probe.cuh's cpasync lines say whether longer contiguous runs per weight
// row (DRAM page locality) raise the streaming rate; these are the kernel
// itself with such runs (BK = 128: 256 bytes per row and stage), so the same
// GPU run checks them and measures the result.
template <typename T, int MTW, int WM, int WK, int STAGES, int MINB, int BN, int BK>
__global__ void __launch_bounds__(32 * WM * WK, MINB)
    tile_variant_kernel(GluParams p, GluSkinnySplit s) {
  skinny::skinny_body<T, GLU_LAYOUT_NK, MTW, WM, WK, STAGES, BN, BK>(p, s);
}

struct TileVariant {
  const char* name;
  SkinnyKernel bf16, f16;
  int bn, bk, m_pad, threads, smem;
};

#define TILE_VARIANT(NAME, MTW, WM, WK, ST, MINB, BN, BK)                                  \
  TileVariant {                                                                             \
    NAME, tile_variant_kernel<__nv_bfloat16, MTW, WM, WK, ST, MINB, BN, BK>,                \
        tile_variant_kernel<__half, MTW, WM, WK, ST, MINB, BN, BK>, BN, BK, 16 * MTW * WM, \
        32 * WM * WK, ST * (16 * MTW * WM * BK * 2 + 2 * BN * BK * 2)                       \
  }
static const TileVariant g_tile_variants[] = {
    TILE_VARIANT("bn32bk128_m16_st3", 1, 1, 4, 3, 3, 32, 128),  // 60 KiB, 3 blocks/SM
    TILE_VARIANT("bn32bk128_m16_st4", 1, 1, 4, 4, 2, 32, 128),  // 80 KiB, 2 blocks/SM
    TILE_VARIANT("bn64bk128_m16_st3", 1, 1, 4, 3, 2, 64, 128),  // 108 KiB, 2 blocks/SM
    TILE_VARIANT("bn32bk128_m32_st3", 1, 2, 2, 3, 3, 32, 128),  // 72 KiB, 3 blocks/SM
};

// glu_skinny_plan with the variant's tile and launch configuration.
static GluSkinnyPlan variant_plan(const TileVariant& v, int64_t m, int64_t n, int64_t k) {
  GluSkinnyPlan pl = glu_skinny_plan(m, n, k, g_sms, v.bn, v.bk);
  pl.m_pad = v.m_pad; pl.threads = v.threads; pl.smem = v.smem;
  return pl;
}

// Workspace/counters kept across launches (the counters must stay zero).
struct Ws {
  float* ws = nullptr; size_t ws_len = 0;
  unsigned* ctr = nullptr; size_t ctr_len = 0;
  void ensure(size_t w, size_t c) {
    if (w > ws_len) { if (ws) CK(cudaFree(ws)); CK(cudaMalloc(&ws, w * 4)); ws_len = w; }
    if (c > ctr_len) { if (ctr) CK(cudaFree(ctr)); CK(cudaMalloc(&ctr, c * 4)); CK(cudaMemset(ctr, 0, c * 4)); ctr_len = c; }
  }
};
static Ws g_ws;
// Set by test_one: launches poison the part of the workspace they use with
// NaN first (a partial that no block wrote then shows as NaN), and the tile
// counters are checked to be back at zero afterwards.
static bool g_checking = false;
static void poison_ws(size_t floats) {
  if (g_checking && floats) CK(cudaMemset(g_ws.ws, 0xff, floats * 4));
}
static bool counters_zero(size_t n) {
  std::vector<unsigned> c(n);
  CK(cudaMemcpy(c.data(), g_ws.ctr, n * 4, cudaMemcpyDeviceToHost));
  for (unsigned v : c)
    if (v) return false;
  return true;
}

// What a launch ran: the configuration (and, for split-K, its grid), and for
// the stream-K kernel its grid and the resident blocks per SM it was sized to.
struct Launched {
  GluSkinnyPlan plan;
  int64_t sk_grid = 0;  // 0: the split-K kernel
  int sk_per_sm = 0;
};

// The stream-K kernel (fused_glu_skinny_sk_*) on the same configuration as
// the split-K plan would pick: grid = glu_sk_blocks over the occupancy the
// driver reports (asked once per kernel, after its attributes are set), or
// `force_blocks` (> 0).
template <typename T>
static Launched launch_sk(const GluParams& p, int64_t force_blocks) {
  static std::map<const void*, int> per_sm;
  GluSkinnyPlan pl = glu_skinny_plan(p.m, p.n, p.k, g_sms);
  SkinnySkKernel k = pick_sk<T>(p.layout, pl.m_pad);
  int& cap = per_sm[(const void*)k];
  if (cap == 0) {
    CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, pl.smem));
    CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&cap, k, pl.threads, pl.smem));
  }
  const int64_t n_tiles = (p.n + GLU_SKINNY_BN - 1) / GLU_SKINNY_BN;
  const int64_t iters = n_tiles * ((p.k + GLU_SKINNY_BK - 1) / GLU_SKINNY_BK);
  const int64_t G = force_blocks > 0 ? force_blocks : glu_sk_blocks(iters, cap, g_sms);
  g_ws.ensure((size_t)(2 * G * p.m * 2 * GLU_SKINNY_BN), (size_t)n_tiles);
  poison_ws((size_t)(2 * G * p.m * 2 * GLU_SKINNY_BN));
  GluSkinnyStreamK s{g_ws.ws, g_ws.ctr};
  k<<<(unsigned)G, pl.threads, pl.smem>>>(p, s);
  CK(cudaGetLastError());
  Launched l;
  l.plan = pl;
  l.sk_grid = G;
  l.sk_per_sm = cap;
  return l;
}

// `sk_blocks` of the register-streaming kernels (fused_glu_skinny_rs_nk_*,
// M <= 16, NK weights): their own plan (glu_skinny_rs_plan), split-K.
constexpr int64_t kRsSched = -2;

// Depth variants of the register-streaming kernel (m8, i.e. MB = 1): 32-k
// chunks loaded before their math, and the resident blocks per SM the
// registers allow. Selected by g_rs_depth (0: the shipped kernels).
template <typename T, int DEPTH, int MINB>
__global__ void __launch_bounds__(GLU_SKINNY_RS_THREADS, MINB)
    rs_depth_kernel(GluParams p, GluSkinnySplit s) {
  skinny::skinny_rs_body<T, 1, DEPTH>(p, s);
}
struct RsDepth {
  int depth, minb;
  SkinnyKernel bf16, f16;
};
static const RsDepth g_rs_depths[] = {
    {2, 4, rs_depth_kernel<__nv_bfloat16, 2, 4>, rs_depth_kernel<__half, 2, 4>},
    {6, 3, rs_depth_kernel<__nv_bfloat16, 6, 3>, rs_depth_kernel<__half, 6, 3>},
    {8, 2, rs_depth_kernel<__nv_bfloat16, 8, 2>, rs_depth_kernel<__half, 8, 2>},
};
static const RsDepth* g_rs_depth = nullptr;

// "rs" and the depth variant's tag, each followed by `sep`, for the lines.
static std::string rs_tag(bool rs, int m_pad, const char* sep) {
  if (!rs) return "";
  std::string t = std::string("rs") + sep;
  if (g_rs_depth && m_pad == 8) t += "depth" + std::to_string(g_rs_depth->depth) + sep;
  return t;
}

template <typename T>
static SkinnyKernel pick_rs(int m_pad) {
  if (g_rs_depth && m_pad == 8) return std::is_same<T, __half>::value ? g_rs_depth->f16 : g_rs_depth->bf16;
  if (std::is_same<T, __half>::value)
    return m_pad == 8 ? fused_glu_skinny_rs_nk_f16_m8 : fused_glu_skinny_rs_nk_f16_m16;
  return m_pad == 8 ? fused_glu_skinny_rs_nk_bf16_m8 : fused_glu_skinny_rs_nk_bf16_m16;
}

template <typename T>
static Launched launch(const GluParams& p, int64_t force_splits = 0,
                       const TileVariant* v = nullptr, int64_t sk_blocks = -1) {
  if (sk_blocks >= 0) return launch_sk<T>(p, sk_blocks);
  const bool rs = sk_blocks == kRsSched;
  GluSkinnyPlan pl = rs  ? glu_skinny_rs_plan(p.m, p.n, p.k, g_sms)
                     : v ? variant_plan(*v, p.m, p.n, p.k)
                         : glu_skinny_plan(p.m, p.n, p.k, g_sms);
  const int64_t bk = v ? v->bk : GLU_SKINNY_BK;
  if (force_splits > 0) {
    const int64_t kt = (p.k + bk - 1) / bk;
    int64_t s = force_splits < kt ? force_splits : kt;
    const int64_t per = (kt + s - 1) / s;
    pl.k_per_split = per * bk;
    pl.splits = (kt + per - 1) / per;
  }
  SkinnyKernel k = rs  ? pick_rs<T>(pl.m_pad)
                   : v ? (std::is_same<T, __half>::value ? v->f16 : v->bf16)
                       : pick<T>(p.layout, pl.m_pad);
  CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, pl.smem));
  // The ring kernels want all the shared memory. The register-streaming
  // ones keep the driver's default carveout, as the crate's launcher
  // (src/cuda/skinny.rs) does, so that these lines time what it runs.
  if (!rs)
    CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
  GluSkinnySplit s{};
  if (pl.splits > 1) {
    g_ws.ensure((size_t)pl.splits * p.m * 2 * p.n, (size_t)pl.n_tiles);
    poison_ws((size_t)pl.splits * p.m * 2 * p.n);
    s.ws = g_ws.ws; s.counters = g_ws.ctr;
  }
  s.k_per_split = pl.k_per_split; s.splits = (int)pl.splits; s.reserved = 0;
  k<<<dim3((unsigned)pl.n_tiles, (unsigned)pl.splits), pl.threads, pl.smem>>>(p, s);
  CK(cudaGetLastError());
  Launched l;
  l.plan = pl;
  return l;
}

// sk_blocks: -1 = the split-K kernel; 0 = the stream-K kernel on its own
// grid; > 0 = the stream-K kernel on that many blocks.
template <typename T>
static void test_one(int layout, bool concat, int64_t M, int64_t N, int64_t K, int act, bool bias,
                     int64_t force_splits, const TileVariant* v = nullptr,
                     int64_t sk_blocks = -1) {
  if (concat) layout = GLU_LAYOUT_NK;
  std::vector<T> x(M * K), w(2 * N * K), bg(N), bu(N);
  const float sc = 1.0f / std::sqrt((float)K);
  for (auto& e : x) e = HT<T>::from(urand(-1, 1));
  for (auto& e : w) e = HT<T>::from(urand(-sc, sc));
  for (auto& e : bg) e = HT<T>::from(urand(-.5, .5));
  for (auto& e : bu) e = HT<T>::from(urand(-.5, .5));
  T *dx, *dw, *dwu, *dbg, *dbu, *dout;
  CK(cudaMalloc(&dx, M * K * sizeof(T)));
  CK(cudaMalloc(&dw, 2 * N * K * sizeof(T)));
  CK(cudaMalloc(&dwu, N * K * sizeof(T)));
  CK(cudaMalloc(&dbg, N * sizeof(T)));
  CK(cudaMalloc(&dbu, N * sizeof(T)));
  CK(cudaMalloc(&dout, M * N * sizeof(T)));
  CK(cudaMemcpy(dx, x.data(), M * K * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, w.data(), 2 * N * K * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dwu, w.data() + N * K, N * K * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dbg, bg.data(), N * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dbu, bu.data(), N * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemset(dout, 0xff, M * N * sizeof(T)));  // NaN poison
  GluParams p{};
  p.x = dx; p.w_gate = dw; p.w_up = concat ? (const void*)(dw + N * K) : (const void*)dwu;
  p.b_gate = bias ? dbg : nullptr; p.b_up = bias ? dbu : nullptr; p.out = dout;
  p.m = M; p.n = N; p.k = K; p.layout = layout; p.act = act; p.beta = 1.3f; p.reserved = 0;
  g_checking = true;
  const Launched run = launch<T>(p, force_splits, v, sk_blocks);
  const GluSkinnyPlan& pl = run.plan;
  g_checking = false;
  CK(cudaDeviceSynchronize());
  const bool ctr_ok = g_ws.ctr_len == 0 || counters_zero(g_ws.ctr_len);
  std::vector<T> got(M * N);
  CK(cudaMemcpy(got.data(), dout, M * N * sizeof(T), cudaMemcpyDeviceToHost));
  // logical W[k][n]: gate = w[0..NK), up = w[NK..2NK), stored in `layout`.
  // The error over the whole output and over each 64-column tile (a tile
  // that lost one contributor's partial hides in the first, not the second).
  double num = 0, den = 0;
  std::vector<double> tnum((N + 63) / 64, 0.0), tden((N + 63) / 64, 0.0);
  int nonfinite = 0;
  std::vector<double> xd(K);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) xd[k] = HT<T>::to(x[m * K + k]);
    for (int64_t n = 0; n < N; ++n) {
      double g = bias ? HT<T>::to(bg[n]) : 0, u = bias ? HT<T>::to(bu[n]) : 0;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t wi = layout == GLU_LAYOUT_KN ? k * N + n : n * K + k;
        g += xd[k] * HT<T>::to(w[wi]);
        u += xd[k] * HT<T>::to(w[N * K + wi]);
      }
      const double ref = ref_act(g, act, 1.3) * u;
      const double v = HT<T>::to(got[m * N + n]);
      if (!std::isfinite(v)) ++nonfinite;
      num += (v - ref) * (v - ref);
      den += ref * ref;
      tnum[n / 64] += (v - ref) * (v - ref);
      tden[n / 64] += ref * ref;
    }
  }
  const double err = nonfinite ? INFINITY : std::sqrt(num / (den > 0 ? den : 1));
  double tile_err = 0;
  for (size_t t = 0; t < tnum.size(); ++t)
    tile_err = std::max(tile_err, std::sqrt(tnum[t] / (tden[t] > 0 ? tden[t] : 1)));
  const bool ok = err <= HT<T>::tol && tile_err <= HT<T>::tol && ctr_ok;
  ++g_checks;
  if (!ok) ++g_fail;
  char sched[48];
  if (run.sk_grid)
    std::snprintf(sched, sizeof sched, "stream-K blocks=%lld", (long long)run.sk_grid);
  else
    std::snprintf(sched, sizeof sched, "%ssplits=%lld",
                  rs_tag(sk_blocks == kRsSched, pl.m_pad, " ").c_str(), (long long)pl.splits);
  std::printf("%s %-4s %s%s%s%s M=%-3lld N=%-5lld K=%-5lld act=%d bias=%d m_pad=%d %s: rel_err %.3e "
              "(worst 64-column tile %.3e)%s\n",
              ok ? "ok  " : "FAIL", HT<T>::name, layout == GLU_LAYOUT_NK ? "nk" : "kn",
              concat ? "(concat)" : "", v ? " variant " : "", v ? v->name : "", (long long)M,
              (long long)N, (long long)K, act, bias, pl.m_pad, sched, err, tile_err,
              ctr_ok ? "" : " COUNTERS NOT RESET");
  cudaFree(dx); cudaFree(dw); cudaFree(dwu); cudaFree(dbg); cudaFree(dbu); cudaFree(dout);
}

// `sched`: -1 the split-K kernel, 0 stream-K, kRsSched register streaming
// (with `force_splits` K slices if > 0).
template <typename T>
static void bench(int layout, int64_t M, int64_t N, int64_t K, double copy_bw,
                  const TileVariant* v = nullptr, int64_t sched = -1, int64_t force_splits = 0) {
  T *dx, *dwg, *dwu, *dout;
  CK(cudaMalloc(&dx, M * K * sizeof(T)));
  CK(cudaMalloc(&dwg, 2 * N * K * sizeof(T)));
  dwu = dwg + N * K;
  CK(cudaMalloc(&dout, M * N * sizeof(T)));
  CK(cudaMemset(dx, 0x3c, M * K * sizeof(T)));
  CK(cudaMemset(dwg, 0x11, 2 * N * K * sizeof(T)));
  GluParams p{};
  p.x = dx; p.w_gate = dwg; p.w_up = dwu; p.out = dout;
  p.m = M; p.n = N; p.k = K; p.layout = layout; p.act = GLU_ACT_SILU; p.beta = 1.f;
  Launched run;
  const int64_t sk = sched;
  for (int i = 0; i < 3; ++i) run = launch<T>(p, force_splits, v, sk);
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  const int iters = 50;
  CK(cudaEventRecord(a));
  for (int i = 0; i < iters; ++i) launch<T>(p, force_splits, v, sk);
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  const double us = 1e3 * ms / iters;
  const double bytes = 2.0 * N * K * sizeof(T);
  char grid[64];
  const GluSkinnyPlan& pl = run.plan;
  if (run.sk_grid)
    std::snprintf(grid, sizeof grid, " stream-K grid=%lld (%d/SM)", (long long)run.sk_grid,
                  run.sk_per_sm);
  else
    std::snprintf(grid, sizeof grid, " %sgrid=%lldx%lld%s",
                  rs_tag(sched == kRsSched, pl.m_pad, " ").c_str(), (long long)pl.n_tiles,
                  (long long)pl.splits, force_splits > 0 ? " (forced)" : "");
  std::printf("bench %-4s %s%s%s M=%-3lld N=%-5lld K=%lld m_pad=%d%s: %8.2f us  %6.0f GB/s "
              "(%.0f%% of copy %.0f GB/s, %.0f%% of 4.8 TB/s)\n",
              HT<T>::name, layout == GLU_LAYOUT_NK ? "nk" : "kn", v ? " variant " : "",
              v ? v->name : "", (long long)M, (long long)N, (long long)K, pl.m_pad, grid, us,
              bytes / us * 1e-3, 100.0 * bytes / us * 1e-3 / copy_bw, copy_bw,
              100.0 * bytes / us * 1e-3 / 4800.0);
  cudaFree(dx); cudaFree(dwg); cudaFree(dout);
  cudaEventDestroy(a); cudaEventDestroy(b);
}

// ---- design experiments: other warp/stage configurations of the same body --
template <typename T, int LAYOUT, int MTW, int WM, int WK, int STAGES, int MINB>
__global__ void __launch_bounds__(32 * WM * WK, MINB) variant_kernel(GluParams p, GluSkinnySplit s) {
  skinny::skinny_body<T, LAYOUT, MTW, WM, WK, STAGES>(p, s);
}

template <int MTW, int WM, int WK, int STAGES, int MINB>
static void bench_variant(int64_t M, int64_t N, int64_t K, int64_t splits, double copy_bw) {
  using T = __nv_bfloat16;
  auto kern = variant_kernel<T, GLU_LAYOUT_NK, MTW, WM, WK, STAGES, MINB>;
  constexpr int MT = MTW * WM;
  const int smem = STAGES * (2048 * MT + 16384), threads = 32 * WM * WK;
  CK(cudaFuncSetAttribute((const void*)kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  CK(cudaFuncSetAttribute((const void*)kern, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
  int occ = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, threads, smem));
  cudaFuncAttributes fa;
  CK(cudaFuncGetAttributes(&fa, kern));
  T *dx, *dw, *dout;
  CK(cudaMalloc(&dx, M * K * 2)); CK(cudaMalloc(&dw, 4 * N * K)); CK(cudaMalloc(&dout, M * N * 2));
  CK(cudaMemset(dx, 0x3c, M * K * 2)); CK(cudaMemset(dw, 0x11, 4 * N * K));
  GluParams p{};
  p.x = dx; p.w_gate = dw; p.w_up = dw + N * K; p.out = dout;
  p.m = M; p.n = N; p.k = K; p.layout = GLU_LAYOUT_NK; p.act = GLU_ACT_SILU; p.beta = 1.f;
  const int64_t n_tiles = (N + 63) / 64, kt = (K + 63) / 64, per = (kt + splits - 1) / splits;
  GluSkinnySplit sp{};
  sp.k_per_split = per * 64; sp.splits = (int)((kt + per - 1) / per);
  if (sp.splits > 1) { g_ws.ensure((size_t)sp.splits * M * 2 * N, n_tiles); sp.ws = g_ws.ws; sp.counters = g_ws.ctr; }
  dim3 grid((unsigned)n_tiles, (unsigned)sp.splits);
  for (int i = 0; i < 3; ++i) kern<<<grid, threads, smem>>>(p, sp);
  CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < 30; ++i) kern<<<grid, threads, smem>>>(p, sp);
  CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
  float ms; CK(cudaEventElapsedTime(&ms, a, b));
  const double us = 1e3 * ms / 30, bytes = 4.0 * N * K;
  std::printf("variant M=%-3lld N=%-5lld MTW=%d WM=%d WK=%d ST=%d minB=%d regs=%d occ=%d splits=%d: %8.2f us %5.0f GB/s (%.0f%%)\n",
              (long long)M, (long long)N, MTW, WM, WK, STAGES, MINB, fa.numRegs, occ, sp.splits, us,
              bytes / us * 1e-3, 100.0 * bytes / us * 1e-3 / copy_bw);
  cudaFree(dx); cudaFree(dw); cudaFree(dout);
}

static double copy_bandwidth() {
  const size_t bytes = 512ull << 20;
  void *s, *d;
  CK(cudaMalloc(&s, bytes)); CK(cudaMalloc(&d, bytes));
  CK(cudaMemcpy(d, s, bytes, cudaMemcpyDeviceToDevice));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < 10; ++i) CK(cudaMemcpy(d, s, bytes, cudaMemcpyDeviceToDevice));
  CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
  float ms; CK(cudaEventElapsedTime(&ms, a, b));
  cudaFree(s); cudaFree(d);
  return 2.0 * bytes * 10 / (ms * 1e-3) * 1e-9;  // read + write
}

int main(int argc, char** argv) {
  int dev = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  std::printf("device %s, %d SMs\n", prop.name, g_sms);
  if (argc > 1 && std::strcmp(argv[1], "variants") == 0) {
    const double bw = copy_bandwidth();
    for (int64_t N : {11008, 14336}) {
      // shipped configurations first, then alternatives
      bench_variant<1, 1, 4, 4, 3>(16, N, 4096, 1, bw);
      bench_variant<1, 1, 4, 4, 3>(16, N, 4096, 2, bw);
      bench_variant<1, 1, 4, 3, 4>(16, N, 4096, 1, bw);
      bench_variant<1, 2, 2, 5, 2>(32, N, 4096, 1, bw);
      bench_variant<1, 2, 2, 3, 3>(32, N, 4096, 1, bw);
      bench_variant<1, 2, 2, 3, 3>(32, N, 4096, 2, bw);
      bench_variant<1, 4, 1, 4, 2>(64, N, 4096, 1, bw);
      bench_variant<1, 4, 1, 3, 3>(64, N, 4096, 1, bw);
      bench_variant<1, 4, 1, 3, 3>(64, N, 4096, 2, bw);
      bench_variant<1, 4, 1, 2, 4>(64, N, 4096, 1, bw);
    }
    return g_fail ? 1 : 0;
  }

  const int64_t Ms[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64};
  const int64_t Ks[] = {8, 40, 4096, 1000};
  const int64_t Ns[] = {8, 24, 72, 1000, 4104};
  int i = 0;
  for (int64_t M : Ms)
    for (int64_t K : Ks)
      for (int64_t N : Ns) {
        ++i;
        if (M * N * K > 64ll * 1000 * 4096) continue;
        if (K == 4096 && N == 4104 && M > 8 && M != 64) continue;  // CPU reference time
        const int layout = (i % 3 == 0) ? GLU_LAYOUT_KN : GLU_LAYOUT_NK;
        const bool concat = (i % 3 == 2);
        const int act = i % 7;
        const bool bias = (i / 7) % 2 == 0;
        const int64_t fs = (i % 5 == 0) ? 3 : 0;  // force split-K sometimes
        if (i % 2) test_one<__nv_bfloat16>(layout, concat, M, N, K, act, bias, fs);
        else test_one<__half>(layout, concat, M, N, K, (act + 3) % 7, !bias, fs);
      }
  // Forced split-K on every config, with a counter-reuse check (same tiles twice).
  for (int64_t M : {1, 20, 64})
    for (int rep = 0; rep < 2; ++rep) {
      test_one<__nv_bfloat16>(GLU_LAYOUT_NK, false, M, 136, 520, 0, true, 5);
      test_one<__half>(GLU_LAYOUT_KN, false, M, 136, 520, 4, false, 9);
    }

  // Stream-K kernels on grids of: the plan's size; 1 block (walks every
  // tile, each stored directly); 7 and 13 blocks (ranges that start inside
  // one tile, cover whole tiles and end inside another); one block per
  // iteration (every tile shared by all its k-tiles' blocks). Tails in M, N
  // and K, both layouts, the concatenated form; grid, dtype, bias, layout
  // and activation rotate at different periods over the cases that run, so
  // that none is tied to a shape; some cases twice (counters reused).
  {
    int c = 0;
    auto run = [&](int64_t M, int64_t N, int64_t K, int64_t G) {
      const int layout = (c % 3 == 0) ? GLU_LAYOUT_KN : GLU_LAYOUT_NK;
      const bool concat = (c % 3 == 2), bias = (c / 8) % 2 == 0;
      for (int rep = 0; rep < (c % 5 == 0 ? 2 : 1); ++rep) {
        if ((c / 4) % 2) test_one<__nv_bfloat16>(layout, concat, M, N, K, c % 7, bias, 0, nullptr, G);
        else test_one<__half>(layout, concat, M, N, K, (c + 3) % 7, bias, 0, nullptr, G);
      }
      ++c;
    };
    for (int64_t M : {1, 7, 16, 17, 32, 33, 64})
      for (int64_t K : {8, 40, 1000, 4096})
        for (int64_t N : {8, 72, 1000, 4104}) {
          // CPU reference time (the whole self-test has 120 s on the GPU host)
          if (M * N * K > 16ll * 1000 * 4096) continue;
          if (K == 4096 && N == 4104 && M > 1) continue;
          const int64_t iters = ((N + 63) / 64) * ((K + 63) / 64);
          const int64_t forced[] = {0, 1, 7, iters};
          const int64_t G = forced[c % 4];
          if (G > iters || 2 * G * M * 128 > (64ll << 20)) { ++c; continue; }  // ws <= 256 MB
          run(M, N, K, G);
        }
    // Multi-tile ranges on wide shapes, both dtypes, bias on and off.
    for (int64_t M : {1, 17})
      for (int64_t N : {1000, 4104})
        for (int64_t K : {1000, 4096})
          for (int64_t G : {1, 7, 13}) {
            if (M * N * K > 17ll * 1000 * 4096 || (M > 1 && N * K > 1000ll * 4096)) continue;
            run(M, N, K, G);
          }
  }

  // Register-streaming kernels (NK only, M <= 16): M around 8 and 16, N
  // tails of the 64-column tile and of a warp's 16 columns, K tails of the
  // 32-deep chunk and the 64-deep k-tile, the concatenated form, the plan's
  // K slices and forced ones (1, 3, 5), some cases twice (counters reused).
  {
    int j = 0;
    for (int64_t M : {1, 2, 7, 8, 9, 15, 16})
      for (int64_t K : {8, 40, 1000, 4096})
        for (int64_t N : {8, 24, 72, 1000, 4104}) {
          ++j;
          if (M * N * K > 16ll * 1000 * 4096) continue;  // CPU reference time
          if (K == 4096 && N == 4104 && M > 2) continue;
          const bool concat = j % 3 == 1;
          const int64_t forced[] = {0, 1, 3, 5};
          const int64_t fs = forced[j % 4];
          for (int rep = 0; rep < (j % 7 == 0 ? 2 : 1); ++rep) {
            if (j % 2)
              test_one<__nv_bfloat16>(GLU_LAYOUT_NK, concat, M, N, K, j % 7, j % 5 < 3, fs,
                                      nullptr, kRsSched);
            else
              test_one<__half>(GLU_LAYOUT_NK, concat, M, N, K, (j + 2) % 7, j % 5 >= 3, fs,
                               nullptr, kRsSched);
          }
        }
  }

  // The depth variants of the register-streaming kernel (M <= 8).
  for (const RsDepth& dv : g_rs_depths) {
    g_rs_depth = &dv;
    int j = 0;
    for (int64_t M : {1, 5, 8})
      for (int64_t K : {8, 1000, 4096})
        for (int64_t N : {24, 1000}) {
          ++j;
          const int64_t fs = j % 3 == 0 ? 3 : 0;
          if (j % 2) test_one<__nv_bfloat16>(GLU_LAYOUT_NK, j % 4 == 1, M, N, K, j % 7, j % 5 < 3, fs, nullptr, kRsSched);
          else test_one<__half>(GLU_LAYOUT_NK, j % 4 == 0, M, N, K, (j + 2) % 7, j % 5 >= 3, fs, nullptr, kRsSched);
        }
    g_rs_depth = nullptr;
  }

  // NK tile variants (BK = 128): tails in M, N (not a multiple of BN) and K
  // (not a multiple of BK), the concatenated form, forced split-K.
  for (const TileVariant& v : g_tile_variants) {
    int j = 0;
    for (int64_t M : {1, 7, 16, 17, 32})
      for (int64_t K : {8, 136, 1000, 4096})
        for (int64_t N : {8, 40, 72, 1000, 4104}) {
          ++j;
          if (M > v.m_pad || M * N * K > 32ll * 1000 * 4096) continue;
          if (K == 4096 && N == 4104 && M > 1) continue;  // CPU reference time
          const bool concat = j % 3 == 1;
          const int64_t fs = (j % 4 == 0) ? 3 : 0;
          if (j % 2) test_one<__nv_bfloat16>(GLU_LAYOUT_NK, concat, M, N, K, j % 7, j % 5 < 3, fs, &v);
          else test_one<__half>(GLU_LAYOUT_NK, concat, M, N, K, (j + 2) % 7, j % 5 >= 3, fs, &v);
        }
  }

  std::printf("\n%d/%d checks passed\n", g_checks - g_fail, g_checks);
  if (argc == 1 || std::strcmp(argv[1], "bw") == 0) {
    // Where the decode kernel's bandwidth goes (kernels/tests/bw_probe.cuh):
    // the kernel itself next to its access pattern without the math.
    const double bw = copy_bandwidth();
    std::printf("device-to-device copy: %.0f GB/s (read + write)\n", bw);
    for (int64_t N : {11008, 14336}) {
      for (int64_t M : {1, 16, 64}) bench<__nv_bfloat16>(GLU_LAYOUT_NK, M, N, 4096, bw);
      // Only after every variant check passed: a wrong kernel's speed means nothing.
      if (g_fail == 0)
        for (int64_t M : {1, 16, 32, 64})
          for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN}) {
            if (M == 32 || layout == GLU_LAYOUT_KN)  // the split-K kernel's line to compare
              bench<__nv_bfloat16>(layout, M, N, 4096, bw);
            bench<__nv_bfloat16>(layout, M, N, 4096, bw, nullptr, 0);
          }
      // The register-streaming kernels (session 17), on their plan, then M = 1
      // on other K-slice counts (the plan's one-wave rule against more waves).
      if (g_fail == 0) {
        for (int64_t M : {1, 8, 16})
          bench<__nv_bfloat16>(GLU_LAYOUT_NK, M, N, 4096, bw, nullptr, kRsSched);
        for (int64_t fs : {1, 2, 4, 6, 8, 16})
          bench<__nv_bfloat16>(GLU_LAYOUT_NK, 1, N, 4096, bw, nullptr, kRsSched, fs);
        // Depth variants (checked above on their own cases), M = 1 and 8, on
        // the plan's K slices (sized for 4 resident blocks per SM) and on
        // the one-wave count for the variant's own residency.
        for (const RsDepth& dv : g_rs_depths) {
          g_rs_depth = &dv;
          std::printf("rs depth variant: DEPTH=%d minB=%d\n", dv.depth, dv.minb);
          const int64_t n_tiles = (N + GLU_SKINNY_BN - 1) / GLU_SKINNY_BN;
          const int64_t own = std::max<int64_t>(1, dv.minb * g_sms / n_tiles);
          for (int64_t M : {1, 8}) {
            bench<__nv_bfloat16>(GLU_LAYOUT_NK, M, N, 4096, bw, nullptr, kRsSched);
            bench<__nv_bfloat16>(GLU_LAYOUT_NK, M, N, 4096, bw, nullptr, kRsSched, own);
          }
          g_rs_depth = nullptr;
        }
      }
      if (g_fail == 0)
        for (const TileVariant& v : g_tile_variants)
          for (int64_t M : {1, 16, 32})
            if (M <= v.m_pad) bench<__nv_bfloat16>(GLU_LAYOUT_NK, M, N, 4096, bw, &v);
      bw_probe::run_all(N, bw, g_sms);
    }
  }
  if (argc > 1 && std::strcmp(argv[1], "bench") == 0) {
    const double bw = copy_bandwidth();
    std::printf("device-to-device copy: %.0f GB/s (read + write)\n", bw);
    for (int64_t N : {11008, 14336})
      for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN})
        for (int64_t M : {1, 8, 16, 32, 64}) {
          bench<__nv_bfloat16>(layout, M, N, 4096, bw);
          bench<__nv_bfloat16>(layout, M, N, 4096, bw, nullptr, 0);
          if (M == 1 || M == 64) bench<__half>(layout, M, N, 4096, bw);
          if (layout == GLU_LAYOUT_NK && M <= GLU_SKINNY_RS_MAX_M)
            bench<__nv_bfloat16>(layout, M, N, 4096, bw, nullptr, kRsSched);
        }
  }
  return g_fail ? 1 : 0;
}
