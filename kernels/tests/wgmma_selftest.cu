// Standalone GPU self-test (and quick timing) of the Hopper kernels
// fused_glu_wgmma_{nk,kn}_{bf16,f16}, their staged-epilogue variants
// fused_glu_wgmma_staged_* and their cluster-schedule variants
// fused_glu_wgmma_cluster_* (two CTAs multicasting the weight stage)
// against a double-precision CPU reference.
// No Rust, no libcuda link: cuTensorMapEncodeTiled comes from the runtime's
// driver entry point. Not compiled by build.rs.
//   build (no GPU needed; scripts/check-kernels.sh does this with BUILD_SELFTEST=1):
//     $NVCC -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -cudart static \
//           -I kernels kernels/tests/wgmma_selftest.cu -o target/kcheck/wgmma_selftest
//   run on an H100/H200: ./wgmma_selftest [--no-perf]   (exit 0 = all passed,
//     77 = skipped: not a compute capability 9.0 device)
// Cases run from simplest to fullest, so the first failing line localises a
// bug: K=16 (one wgmma k16: TMA box + swizzle + fragment map), K=64 (the k16
// descriptor advance), K=512 (pipeline ring wraps twice), several tiles
// (tile order), tails (TMA zero fill, store predication), then biases and
// every activation (epilogue). Each line prints the first mismatching
// (row, col) with got/want and which rows/cols mod 8/64 the errors hit.
#include "../fused_glu_wgmma.cu"
#include "../fused_glu_wgmma_staged.cu"

#define SELFTEST_SEED 1234
#include "selftest_common.cuh"

static double ref_act(double z, int act, double beta) {
  switch (act) {
    case GLU_ACT_SILU: return z / (1.0 + std::exp(-z));
    case GLU_ACT_SWISH: return z / (1.0 + std::exp(-beta * z));
    case GLU_ACT_SIGMOID: return 1.0 / (1.0 + std::exp(-z));
    case GLU_ACT_GELU_ERF: return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
    case GLU_ACT_GELU_TANH:
      return 0.5 * z * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (z + 0.044715 * z * z * z)));
    case GLU_ACT_RELU: return z > 0 ? z : 0.0;
    default: return z;
  }
}

// A [rows, K] row-major 16-bit matrix, box {64 (k), box_rows} (nk weights and
// x: {64, 128}; kn weights: {64, 64}).
template <typename T>
static CUtensorMap make_map(const void* base, int64_t rows, int64_t K, uint32_t box_rows = 128) {
  static_assert(kWgBK == 64, "map_ld's box is 64 elements wide");
  return map_ld<T>(base, rows, K, K, box_rows);
}

typedef void (*WgKernel)(const CUtensorMap, const CUtensorMap, const CUtensorMap, GluParams);
typedef void (*WgStagedKernel)(const CUtensorMap, const CUtensorMap, const CUtensorMap,
                               const CUtensorMap, GluParams);
// When set, launch() runs this staged-epilogue kernel (fused_glu_wgmma_staged_*)
// instead of the one it is given.
static WgStagedKernel g_staged = nullptr;

// Persistent grid size cap: small in the correctness cases so that CTAs
// walk several tiles (cross-tile pipeline), the SM count for timing.
static int64_t g_grid_cap = 5;
// Set while the kernel given to launch() is a cluster variant
// (fused_glu_wgmma_cluster_*): the grid is then 2 x min(pair units,
// max(g_grid_cap / 2, 1)) CTAs, as src/cuda/hopper.rs wgmma_cluster_grid.
static bool g_cluster = false;

template <typename T>
static void launch(WgKernel k, const void* x, const void* wg, const void* wu, const void* bg,
                   const void* bu, void* out, int64_t M, int64_t N, int64_t K, int act,
                   int layout = GLU_LAYOUT_NK) {
  CUtensorMap tx = make_map<T>(x, M, K), tg, tu;
  if (layout == GLU_LAYOUT_NK) {
    tg = make_map<T>(wg, N, K);
    tu = make_map<T>(wu, N, K);
  } else {  // [K, N] row-major: rows = K, inner = N
    tg = make_map<T>(wg, K, N, 64);
    tu = make_map<T>(wu, K, N, 64);
  }
  GluParams p{};
  p.x = x; p.w_gate = wg; p.w_up = wu; p.b_gate = bg; p.b_up = bu; p.out = out;
  p.m = M; p.n = N; p.k = K; p.layout = layout; p.act = act; p.beta = 1.7f; p.reserved = 0;
  int64_t grid = glu_wgmma_grid(M, N, g_grid_cap);
  if (g_cluster) {
    const int64_t pairs = ((M + kWgBM - 1) / kWgBM + 1) / 2 * ((N + kWgBN - 1) / kWgBN);
    const int64_t cap = g_grid_cap / 2 > 1 ? g_grid_cap / 2 : 1;
    grid = 2 * (pairs < cap ? (pairs > 1 ? pairs : 1) : cap);
  }
  if (g_staged) {
    CUtensorMap to = make_map<T>(out, M, N, 64);  // out [M, N], box {64, 64}
    g_staged<<<(unsigned)grid, kWgThreads, kWgSmemBytesStaged>>>(tx, tg, tu, to, p);
  } else {
    k<<<(unsigned)grid, kWgThreads, kWgSmemBytes>>>(tx, tg, tu, p);
  }
}

static int g_fail = 0, g_cases = 0;
static int64_t g_sm_count = 132;

// concat: w_up = w_gate + N*K inside one [2N,K] allocation (nk only).
// layout GLU_LAYOUT_KN: the same logical weights stored [K,N] (w[k*N + n]).
template <typename T>
static void run_case(const char* what, WgKernel kern, int64_t M, int64_t N, int64_t K, int act,
                     bool bias, bool concat, int layout = GLU_LAYOUT_NK) {
  auto x = rand_vec<T>(M * K, 1.0f);
  const float ws = 1.0f / std::sqrt((float)K);
  auto w = rand_vec<T>(2 * N * K, ws);  // gate rows then up rows (NK)
  auto b = rand_vec<T>(2 * N, 0.5f);
  Dev dx(M * K * 2), dwg(N * K * 2), dwu(N * K * 2), dgu(2 * N * K * 2), db(2 * N * 2), dout(M * N * 2);
  CK(cudaMemcpy(dx.p, x.data(), M * K * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dgu.p, w.data(), 2 * N * K * 2, cudaMemcpyHostToDevice));
  if (layout == GLU_LAYOUT_NK) {
    CK(cudaMemcpy(dwg.p, w.data(), N * K * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dwu.p, w.data() + N * K, N * K * 2, cudaMemcpyHostToDevice));
  } else {
    std::vector<T> g_kn(N * K), u_kn(N * K);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        g_kn[k * N + n] = w[n * K + k];
        u_kn[k * N + n] = w[(N + n) * K + k];
      }
    CK(cudaMemcpy(dwg.p, g_kn.data(), N * K * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dwu.p, u_kn.data(), N * K * 2, cudaMemcpyHostToDevice));
  }
  CK(cudaMemcpy(db.p, b.data(), 2 * N * 2, cudaMemcpyHostToDevice));
  CK(cudaMemset(dout.p, 0xFF, M * N * 2));  // NaN poison
  const char* g = concat ? (const char*)dgu.p : (const char*)dwg.p;
  const char* u = concat ? (const char*)dgu.p + N * K * 2 : (const char*)dwu.p;
  const char* bgp = bias ? (const char*)db.p : nullptr;
  const char* bup = bias ? (const char*)db.p + N * 2 : nullptr;
  launch<T>(kern, dx.p, g, u, bgp, bup, dout.p, M, N, K, act, layout);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<T> got(M * N);
  CK(cudaMemcpy(got.data(), dout.p, M * N * 2, cudaMemcpyDeviceToHost));

  std::vector<double> xf(M * K), wf(2 * N * K);
  for (int64_t i = 0; i < M * K; ++i) xf[i] = HT<T>::to(x[i]);
  for (int64_t i = 0; i < 2 * N * K; ++i) wf[i] = HT<T>::to(w[i]);
  double num = 0, den = 0;
  int64_t bad = 0, first_r = -1, first_c = -1;
  double first_got = 0, first_want = 0;
  uint32_t rows_mod8 = 0, cols_mod8 = 0, rows_mod64 = 0;  // bit sets of where errors are
  uint64_t colblk = 0;
  for (int64_t r = 0; r < M; ++r)
    for (int64_t c = 0; c < N; ++c) {
      double ga = bias ? HT<T>::to(b[c]) : 0, ua = bias ? HT<T>::to(b[N + c]) : 0;
      const double* xr = &xf[r * K];
      const double *wgr = &wf[c * K], *wur = &wf[(N + c) * K];
      for (int64_t k = 0; k < K; ++k) { ga += xr[k] * wgr[k]; ua += xr[k] * wur[k]; }
      const double want = ref_act(ga, act, 1.7f) * ua;
      const double v = HT<T>::to(got[r * N + c]);
      num += (v - want) * (v - want);
      den += want * want;
      // Element check, generous: catches a single wrong element the norm hides.
      const double scale = std::sqrt((std::fabs(ga) + std::fabs(ua) + 1.0));
      if (!(std::fabs(v - want) <= 4 * HT<T>::tol * (std::fabs(want) + scale))) {
        if (bad == 0) { first_r = r; first_c = c; first_got = v; first_want = want; }
        ++bad;
        rows_mod8 |= 1u << (r % 8); cols_mod8 |= 1u << (c % 8); rows_mod64 |= 1u << ((r % 64) / 8);
        colblk |= 1ull << ((c % 128) / 8 % 64);
      }
    }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const bool ok = bad == 0 && rel <= HT<T>::tol && std::isfinite(rel);
  ++g_cases;
  if (!ok) ++g_fail;
  std::printf("%s %-4s %s %-30s M=%-5lld N=%-5lld K=%-5lld act=%d bias=%d concat=%d rel=%.2e bad=%lld",
              ok ? "ok  " : "FAIL", HT<T>::name, layout == GLU_LAYOUT_NK ? "nk" : "kn", what, (long long)M, (long long)N, (long long)K, act,
              bias, concat, rel, (long long)bad);
  if (bad)
    std::printf("\n     first bad (row %lld, col %lld) got %.6g want %.6g | err rows%%8 mask %#x, "
                "cols%%8 mask %#x, (row%%64)/8 mask %#x, (col%%128)/8 mask %#llx",
                (long long)first_r, (long long)first_c, first_got, first_want, rows_mod8, cols_mod8,
                rows_mod64, (unsigned long long)colblk);
  std::printf("\n");
}

// Big shape: timing (4MNK flops) and a sampled check against the CPU.
template <typename T>
static void perf_case(WgKernel kern, int64_t M, int64_t N, int64_t K, int layout = GLU_LAYOUT_NK) {
  auto x = rand_vec<T>(M * K, 1.0f);
  auto w = rand_vec<T>(2 * N * K, 1.0f / std::sqrt((float)K));
  Dev dx(M * K * 2), dw(2 * N * K * 2), dout(M * N * 2);
  CK(cudaMemcpy(dx.p, x.data(), M * K * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw.p, w.data(), 2 * N * K * 2, cudaMemcpyHostToDevice));
  if (layout == GLU_LAYOUT_KN) {  // store gate and up [K,N]
    std::vector<T> kn(2 * N * K);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        kn[k * N + n] = w[n * K + k];
        kn[N * K + k * N + n] = w[(N + n) * K + k];
      }
    CK(cudaMemcpy(dw.p, kn.data(), 2 * N * K * 2, cudaMemcpyHostToDevice));
  }
  const char* g = (const char*)dw.p;
  const char* u = g + N * K * 2;
  for (int i = 0; i < 3; ++i) launch<T>(kern, dx.p, g, u, nullptr, nullptr, dout.p, M, N, K, GLU_ACT_SILU, layout);
  CK(cudaDeviceSynchronize());
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  const int iters = 20;
  CK(cudaEventRecord(e0));
  for (int i = 0; i < iters; ++i) launch<T>(kern, dx.p, g, u, nullptr, nullptr, dout.p, M, N, K, GLU_ACT_SILU, layout);
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  CK(cudaGetLastError());
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  const double us = 1000.0 * ms / iters;
  const double tflops = 4.0 * M * N * K / (us * 1e-6) / 1e12;
  std::vector<T> got(M * N);
  CK(cudaMemcpy(got.data(), dout.p, M * N * 2, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  std::uniform_int_distribution<int64_t> dr(0, M - 1), dc(0, N - 1);
  for (int s = 0; s < 3000; ++s) {
    const int64_t r = s < 4 ? (s & 1) * (M - 1) : dr(rng), c = s < 4 ? (s >> 1) * (N - 1) : dc(rng);
    double ga = 0, ua = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double xv = HT<T>::to(x[r * K + k]);
      ga += xv * HT<T>::to(w[c * K + k]);
      ua += xv * HT<T>::to(w[(N + c) * K + k]);
    }
    const double want = ref_act(ga, GLU_ACT_SILU, 1.0) * ua, v = HT<T>::to(got[r * N + c]);
    num += (v - want) * (v - want);
    den += want * want;
  }
  const double rel = std::sqrt(num / den);
  const bool ok = rel <= HT<T>::tol && std::isfinite(rel);
  ++g_cases;
  if (!ok) ++g_fail;
  std::printf("%s %-4s %s perf (%s) M=%-5lld N=%-5lld K=%-5lld  %9.1f us  %6.1f TFLOP/s (4MNK)  sampled rel=%.2e\n",
              ok ? "ok  " : "FAIL", HT<T>::name, layout == GLU_LAYOUT_NK ? "nk" : "kn",
              g_cluster ? "cluster, direct epilogue" : g_staged ? "staged epilogue" : "direct epilogue", (long long)M,
              (long long)N, (long long)K, us, tflops, rel);
  CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
}

template <typename T>
static void suite(WgKernel kern, bool perf) {
  CK(cudaFuncSetAttribute((const void*)kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
  const int I = GLU_ACT_IDENTITY;
  run_case<T>("one k16 (TMA/swizzle/frag)", kern, 128, 128, 16, I, false, false);
  run_case<T>("one k-tile (desc k advance)", kern, 128, 128, 64, I, false, false);
  run_case<T>("ring wraps (pipeline)", kern, 128, 128, 512, I, false, false);
  run_case<T>("2x2 tiles (tile order)", kern, 256, 256, 128, I, false, false);
  run_case<T>("M tail", kern, 129, 128, 64, I, false, false);
  run_case<T>("N tail", kern, 64, 136, 64, I, false, false);
  run_case<T>("K tail", kern, 128, 128, 72, I, false, false);
  run_case<T>("tiny", kern, 1, 8, 8, I, false, false);
  run_case<T>("tails", kern, 7, 120, 200, I, false, false);
  run_case<T>("concat", kern, 255, 264, 1024, I, false, true);
  for (int act = 0; act <= 6; ++act) run_case<T>("bias + act", kern, 127, 264, 136, act, true, act % 2 == 0);
  run_case<T>("silu no bias", kern, 257, 1000, 1024, GLU_ACT_SILU, false, true);
  run_case<T>("large K", kern, 130, 136, 4096, GLU_ACT_SILU, true, false);
  run_case<T>("many m tiles (group tail)", kern, 17 * 128 + 5, 24, 64, GLU_ACT_SILU, true, false);
  g_grid_cap = g_sm_count;
  run_case<T>("grid = #SMs", kern, 1000, 1000, 1024, GLU_ACT_SILU, true, true);
  g_grid_cap = 1;
  run_case<T>("one CTA walks all tiles", kern, 300, 264, 200, GLU_ACT_GELU_TANH, true, false);
  g_grid_cap = 5;
  if (perf) {
    g_grid_cap = g_sm_count;
    perf_case<T>(kern, 2048, 11008, 4096);
    perf_case<T>(kern, 8192, 11008, 4096);
    perf_case<T>(kern, 2048, 2816, 4096);
    perf_case<T>(kern, 512, 11008, 4096);
    g_grid_cap = 5;
  }
}

// KN weights: same kernel body with an N-major B operand (transpose bit).
template <typename T>
static void suite_kn(WgKernel kern, bool perf) {
  CK(cudaFuncSetAttribute((const void*)kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
  const int I = GLU_ACT_IDENTITY, KN = GLU_LAYOUT_KN;
  run_case<T>("one k16 (N-major desc)", kern, 128, 128, 16, I, false, false, KN);
  run_case<T>("one k-tile (k advance)", kern, 128, 128, 64, I, false, false, KN);
  run_case<T>("ring wraps", kern, 128, 128, 512, I, false, false, KN);
  run_case<T>("2x2 tiles", kern, 256, 256, 128, I, false, false, KN);
  run_case<T>("N tail: second box OOB", kern, 64, 72, 64, I, false, false, KN);
  run_case<T>("tails", kern, 7, 120, 200, I, false, false, KN);
  run_case<T>("tiny", kern, 1, 8, 8, I, false, false, KN);
  for (int act = 0; act <= 6; ++act) run_case<T>("bias + act", kern, 127, 264, 136, act, true, false, KN);
  run_case<T>("silu", kern, 257, 1000, 1024, GLU_ACT_SILU, false, false, KN);
  if (perf) {
    g_grid_cap = g_sm_count;
    perf_case<T>(kern, 2048, 11008, 4096, KN);
    perf_case<T>(kern, 8192, 11008, 4096, KN);
    g_grid_cap = 5;
  }
}

// The staged-epilogue kernels on the cases that exercise the epilogue:
// tails (TMA store clipping, a skipped second box), several tiles per CTA
// (staging buffer reuse), biases and every activation, KN weights.
template <typename T>
static void suite_staged(WgKernel direct, WgStagedKernel nk, WgStagedKernel kn, bool perf) {
  for (WgStagedKernel k : {nk, kn})
    CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kWgSmemBytesStaged));
  const int I = GLU_ACT_IDENTITY;
  g_staged = nk;
  run_case<T>("staged: one tile", direct, 128, 128, 64, I, false, false);
  run_case<T>("staged: ring wraps", direct, 128, 128, 512, I, false, false);
  run_case<T>("staged: 2x2 tiles", direct, 256, 256, 128, I, false, false);
  run_case<T>("staged: M tail", direct, 129, 128, 64, I, false, false);
  run_case<T>("staged: N tail (box 2 skipped)", direct, 64, 136, 64, I, false, false);
  run_case<T>("staged: tails", direct, 7, 120, 200, I, false, false);
  for (int act = 0; act <= 6; ++act)
    run_case<T>("staged: bias + act", direct, 127, 264, 136, act, true, act % 2 == 0);
  g_grid_cap = 1;
  run_case<T>("staged: one CTA walks all tiles", direct, 300, 264, 200, GLU_ACT_GELU_TANH, true, false);
  g_grid_cap = 5;
  if (perf) {
    g_grid_cap = g_sm_count;
    perf_case<T>(direct, 2048, 11008, 4096);
    perf_case<T>(direct, 8192, 11008, 4096);
    g_grid_cap = 5;
  }
  g_staged = kn;
  run_case<T>("staged kn: tails", direct, 129, 136, 200, GLU_ACT_SILU, true, false, GLU_LAYOUT_KN);
  run_case<T>("staged kn: 2x2 tiles", direct, 256, 256, 128, I, false, false, GLU_LAYOUT_KN);
  g_staged = nullptr;
}

// The cluster schedule: pairs of m tiles per cluster of two CTAs, the weight
// stage multicast. Odd m-tile counts (1, 3 tiles: rank 1 of the last pair
// has no tile), several pairs per cluster (cap 5 -> 2 clusters), one cluster
// walking every pair, both layouts, biases and every activation.
template <typename T>
static void suite_cluster(WgKernel nk, WgKernel kn, bool perf) {
  for (WgKernel k : {nk, kn})
    CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
  const int I = GLU_ACT_IDENTITY, KN = GLU_LAYOUT_KN;
  g_cluster = true;
  run_case<T>("cluster: one tile, no partner", nk, 128, 128, 64, I, false, false);
  run_case<T>("cluster: one pair, ring wraps", nk, 256, 128, 512, I, false, false);
  run_case<T>("cluster: 3 m tiles x 2 n tiles", nk, 300, 256, 128, I, false, false);
  run_case<T>("cluster: tiny", nk, 1, 8, 8, I, false, false);
  run_case<T>("cluster: tails", nk, 7, 120, 200, I, false, false);
  run_case<T>("cluster: concat", nk, 255, 264, 1024, I, false, true);
  for (int act = 0; act <= 6; ++act)
    run_case<T>("cluster: bias + act", nk, 257, 264, 136, act, true, act % 2 == 0);
  run_case<T>("cluster: many m tiles", nk, 17 * 128 + 5, 24, 64, GLU_ACT_SILU, true, false);
  run_case<T>("cluster kn: tails", kn, 129, 136, 200, GLU_ACT_SILU, true, false, KN);
  run_case<T>("cluster kn: 3x2 tiles", kn, 300, 256, 128, I, false, false, KN);
  run_case<T>("cluster kn: N tail, box 2 OOB", kn, 64, 72, 64, I, false, false, KN);
  g_grid_cap = 2;
  run_case<T>("cluster: one cluster walks all pairs", nk, 300, 264, 200, GLU_ACT_GELU_TANH, true, false);
  g_grid_cap = g_sm_count;
  run_case<T>("cluster: grid = #SMs", nk, 1000, 1000, 1024, GLU_ACT_SILU, true, true);
  g_grid_cap = 5;
  if (perf) {
    g_grid_cap = g_sm_count;
    perf_case<T>(nk, 2048, 11008, 4096);
    perf_case<T>(nk, 8192, 11008, 4096);
    perf_case<T>(kn, 8192, 11008, 4096, KN);
    g_grid_cap = 5;
  }
  g_cluster = false;
}

int main(int argc, char** argv) {
  // Line-buffered even into a file: a run stopped by `timeout` keeps every
  // line up to the case that hung.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const bool perf = !(argc > 1 && std::strcmp(argv[1], "--no-perf") == 0);
  // The cluster kernels alone, a few small cases (run.sh runs this first,
  // under a short timeout, and leaves the cluster path out of the rest of
  // the run when it fails).
  const bool cluster_smoke = argc > 1 && std::strcmp(argv[1], "--cluster-smoke") == 0;
  // Set by run.sh when the smoke test failed: skip the cluster suites.
  const char* skip_env = std::getenv("SWIGLU_SKIP_CLUSTER");
  const bool skip_cluster = skip_env && *skip_env && std::strcmp(skip_env, "0") != 0;
  const bool perf_only = argc > 1 && std::strcmp(argv[1], "--perf-only") == 0;
  // A few small cases (pipeline wrap, tails, bias + activation, both layouts):
  // short enough for compute-sanitizer's racecheck and memcheck.
  const bool small = argc > 1 && std::strcmp(argv[1], "--small") == 0;
  int dev = 0;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  std::printf("device: %s (cc %d.%d, %d SMs)  kernel smem %u B, %d threads, tile %dx%dx%d, %d stages\n",
              prop.name, prop.major, prop.minor, prop.multiProcessorCount, kWgSmemBytes, kWgThreads,
              kWgBM, kWgBN, kWgBK, kWgStages);
  g_sm_count = prop.multiProcessorCount;
  if (prop.major != 9 || prop.minor != 0) {
    std::printf("SKIPPED: needs compute capability 9.0 (exit %d)\n", SELFTEST_SKIP);
    return SELFTEST_SKIP;
  }
  load_encode();
  cudaFuncAttributes fa;
  CK(cudaFuncGetAttributes(&fa, (const void*)fused_glu_wgmma_nk_bf16));
  std::printf("fused_glu_wgmma_nk_bf16: %d regs, %zu B local\n", fa.numRegs, fa.localSizeBytes);
  {
    // How many two-CTA clusters of the cluster kernel can be resident: the
    // Rust launcher asks the same and caps its persistent grid there (SMs / 2
    // if the query fails); launch() below uses SMs / 2.
    const void* kc = (const void*)fused_glu_wgmma_cluster_nk_bf16;
    CK(cudaFuncSetAttribute(kc, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)(2 * (g_sm_count / 2)));
    cfg.blockDim = dim3(kWgThreads);
    cfg.dynamicSmemBytes = kWgSmemBytes;
    int clusters = 0;
    const cudaError_t e = cudaOccupancyMaxActiveClusters(&clusters, kc, &cfg);
    CK(cudaFuncGetAttributes(&fa, kc));
    std::printf("fused_glu_wgmma_cluster_nk_bf16: %d regs, %zu B local; at most %d clusters of 2 "
                "resident (%s), SMs / 2 = %lld\n",
                fa.numRegs, fa.localSizeBytes, clusters, cudaGetErrorString(e),
                (long long)(g_sm_count / 2));
    (void)cudaGetLastError();
  }
  if (cluster_smoke) {
    for (WgKernel k : {fused_glu_wgmma_cluster_nk_bf16, fused_glu_wgmma_cluster_kn_bf16})
      CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
    g_cluster = true;
    g_grid_cap = 2;
    run_case<__nv_bfloat16>("cluster smoke: one tile, no partner", fused_glu_wgmma_cluster_nk_bf16, 128, 128, 64, GLU_ACT_IDENTITY, false, false);
    run_case<__nv_bfloat16>("cluster smoke: 3x2 tiles, one cluster", fused_glu_wgmma_cluster_nk_bf16, 300, 256, 512, GLU_ACT_SILU, true, false);
    run_case<__nv_bfloat16>("cluster smoke: kn tails", fused_glu_wgmma_cluster_kn_bf16, 129, 136, 200, GLU_ACT_SILU, true, false, GLU_LAYOUT_KN);
    g_grid_cap = g_sm_count;
    run_case<__nv_bfloat16>("cluster smoke: grid = #SMs", fused_glu_wgmma_cluster_nk_bf16, 1000, 1000, 1024, GLU_ACT_SILU, true, true);
    g_cluster = false;
    std::printf("wgmma_selftest --cluster-smoke: %d/%d cases passed\n", g_cases - g_fail, g_cases);
    return g_fail ? 1 : 0;
  }
  if (perf_only) {  // timing only (experiments): the big bf16 shapes
    CK(cudaFuncSetAttribute((const void*)fused_glu_wgmma_nk_bf16,
                            cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
    g_grid_cap = g_sm_count;
    perf_case<__nv_bfloat16>(fused_glu_wgmma_nk_bf16, 2048, 11008, 4096);
    perf_case<__nv_bfloat16>(fused_glu_wgmma_nk_bf16, 8192, 11008, 4096);
    return 0;
  }
  if (small) {
    for (WgKernel k : {fused_glu_wgmma_nk_bf16, fused_glu_wgmma_kn_bf16})
      CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
    run_case<__nv_bfloat16>("ring wraps (pipeline)", fused_glu_wgmma_nk_bf16, 128, 128, 512, GLU_ACT_IDENTITY, false, false);
    run_case<__nv_bfloat16>("tails", fused_glu_wgmma_nk_bf16, 129, 136, 200, GLU_ACT_SILU, true, false);
    run_case<__nv_bfloat16>("kn tails", fused_glu_wgmma_kn_bf16, 129, 136, 200, GLU_ACT_SILU, true, false, GLU_LAYOUT_KN);
    g_grid_cap = 1;
    run_case<__nv_bfloat16>("one CTA walks all tiles", fused_glu_wgmma_nk_bf16, 300, 264, 200, GLU_ACT_GELU_TANH, true, false);
    g_grid_cap = 5;
    CK(cudaFuncSetAttribute((const void*)fused_glu_wgmma_staged_nk_bf16,
                            cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytesStaged));
    g_staged = fused_glu_wgmma_staged_nk_bf16;
    run_case<__nv_bfloat16>("staged: tails", fused_glu_wgmma_nk_bf16, 129, 136, 200, GLU_ACT_SILU, true, false);
    g_grid_cap = 1;
    run_case<__nv_bfloat16>("staged: one CTA walks all tiles", fused_glu_wgmma_nk_bf16, 300, 264, 200, GLU_ACT_SILU, true, false);
    g_staged = nullptr;
    if (!skip_cluster) {
      CK(cudaFuncSetAttribute((const void*)fused_glu_wgmma_cluster_nk_bf16,
                              cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
      g_cluster = true;
      g_grid_cap = 2;  // one cluster of two CTAs walks both pairs
      run_case<__nv_bfloat16>("cluster: 3 m tiles x 2 n tiles", fused_glu_wgmma_cluster_nk_bf16, 300, 136, 200, GLU_ACT_SILU, true, false);
      g_cluster = false;
      g_grid_cap = 5;
    }
    std::printf("wgmma_selftest --small: %d/%d cases passed\n", g_cases - g_fail, g_cases);
    return g_fail ? 1 : 0;
  }
  suite<__nv_bfloat16>(fused_glu_wgmma_nk_bf16, perf);
  suite<__half>(fused_glu_wgmma_nk_f16, false);
  suite_kn<__nv_bfloat16>(fused_glu_wgmma_kn_bf16, perf);
  suite_kn<__half>(fused_glu_wgmma_kn_f16, false);
  suite_staged<__nv_bfloat16>(fused_glu_wgmma_nk_bf16, fused_glu_wgmma_staged_nk_bf16,
                              fused_glu_wgmma_staged_kn_bf16, perf);
  suite_staged<__half>(fused_glu_wgmma_nk_f16, fused_glu_wgmma_staged_nk_f16,
                       fused_glu_wgmma_staged_kn_f16, false);
  if (skip_cluster) {
    std::printf("SKIPPED cluster suites: SWIGLU_SKIP_CLUSTER is set (the cluster smoke test failed)\n");
  } else {
    suite_cluster<__nv_bfloat16>(fused_glu_wgmma_cluster_nk_bf16, fused_glu_wgmma_cluster_kn_bf16, perf);
    suite_cluster<__half>(fused_glu_wgmma_cluster_nk_f16, fused_glu_wgmma_cluster_kn_f16, false);
  }
  std::printf("wgmma_selftest: %d/%d cases passed\n", g_cases - g_fail, g_cases);
  return g_fail ? 1 : 0;
}
