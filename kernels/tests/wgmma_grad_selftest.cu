// Standalone GPU self-test (and timing) of the Hopper backward GEMM kernels
// of kernels/fused_glu_wgmma_train.cu against a double-precision CPU
// reference, independent of the Rust launch code (the tensor maps are built
// here as src/cuda/hopper.rs builds them, so a failure here and not in
// tests/gpu_train.rs points at the kernel, the reverse at the Rust side):
//   fused_glu_wgmma_dx{,32}_{nk,kn}_*  dX = dG·Wgᵀ + dU·Wuᵀ (two K segments)
//   fused_glu_wgmma_dw{,32}_*          dWg, dWu (A read M-major), stored or
//                                      accumulated
// Not compiled by build.rs.
//   build (no GPU; scripts/check-kernels.sh does this with BUILD_SELFTEST=1):
//     $NVCC -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -cudart static \
//           -I kernels kernels/tests/wgmma_grad_selftest.cu -o target/kcheck/wgmma_grad_selftest
//   run on an H100/H200: ./wgmma_grad_selftest [--no-perf]   (exit 0 = all passed,
//                        77 = skipped: not a compute capability 9.x device)
//                        ./wgmma_grad_selftest --small   a few small cases, for
//                          compute-sanitizer (racecheck/memcheck) in run.sh
// Cases go from one k16 step to tails and many tiles per CTA (grid capped at
// 5), so the first failing line localises a bug; each prints the first bad
// (row, col) and which rows/cols mod 8 / mod 128 the errors hit.
#include "../fused_glu_wgmma_train.cu"

#define SELFTEST_SEED 4242
#include "selftest_common.cuh"

typedef void (*DxKernel)(const CUtensorMap, const CUtensorMap, const CUtensorMap, const CUtensorMap,
                         const CUtensorMap, const CUtensorMap, GluParams, GluTrainParams);
typedef void (*DwKernel)(const CUtensorMap, const CUtensorMap, const CUtensorMap, GluParams, GluGemmOut);

template <typename T> struct Kern;
template <> struct Kern<__nv_bfloat16> {
  static DxKernel dx(int lay, bool f32) {
    if (lay == GLU_LAYOUT_NK) return f32 ? fused_glu_wgmma_dx32_nk_bf16 : fused_glu_wgmma_dx_nk_bf16;
    return f32 ? fused_glu_wgmma_dx32_kn_bf16 : fused_glu_wgmma_dx_kn_bf16;
  }
  static DwKernel dw(bool f32) { return f32 ? fused_glu_wgmma_dw32_bf16 : fused_glu_wgmma_dw_bf16; }
};
template <> struct Kern<__half> {
  static DxKernel dx(int lay, bool f32) {
    if (lay == GLU_LAYOUT_NK) return f32 ? fused_glu_wgmma_dx32_nk_f16 : fused_glu_wgmma_dx_nk_f16;
    return f32 ? fused_glu_wgmma_dx32_kn_f16 : fused_glu_wgmma_dx_kn_f16;
  }
  static DwKernel dw(bool f32) { return f32 ? fused_glu_wgmma_dw32_f16 : fused_glu_wgmma_dw_f16; }
};

static int g_fail = 0, g_cases = 0;
static int64_t g_grid_cap = 5;

// Logical weight element W(n, k) (output feature n, input k) of a weight
// stored NK ([N, K]) or KN ([K, N]).
template <typename T>
static double w_at(const std::vector<T>& w, int lay, int64_t N, int64_t K, int64_t n, int64_t k) {
  return HT<T>::to(lay == GLU_LAYOUT_NK ? w[n * K + k] : w[k * N + n]);
}

// Compares got (rows x cols, row-major, as doubles) with want; prints one line.
static void report(const char* what, const char* tname, bool out_f32, const std::vector<double>& got,
                   const std::vector<double>& want, int64_t rows, int64_t cols, double tol, const char* shape) {
  double num = 0, den = 0, maxw = 0;
  for (double v : want) maxw = std::fmax(maxw, std::fabs(v));
  int64_t bad = 0, fr = -1, fc = -1;
  double fg = 0, fw = 0;
  uint32_t rmask = 0, cmask = 0;
  uint64_t cblk = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double g = got[r * cols + c], w = want[r * cols + c];
      num += (g - w) * (g - w);
      den += w * w;
      if (!(std::fabs(g - w) <= 8 * tol * (std::fabs(w) + 0.05 * maxw))) {
        if (bad == 0) { fr = r; fc = c; fg = g; fw = w; }
        ++bad;
        rmask |= 1u << (r % 8);
        cmask |= 1u << (c % 8);
        cblk |= 1ull << ((c % 128) / 8 % 64);
      }
    }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const bool ok = bad == 0 && rel <= tol && std::isfinite(rel);
  ++g_cases;
  if (!ok) ++g_fail;
  std::printf("%s %-4s %-4s out %-30s %s rel=%.2e bad=%lld", ok ? "ok  " : "FAIL", tname,
              out_f32 ? "f32" : "T", what, shape, rel, (long long)bad);
  if (bad)
    std::printf("\n     first bad (row %lld, col %lld) got %.6g want %.6g | rows%%8 mask %#x, cols%%8 mask %#x, "
                "(col%%128)/8 mask %#llx",
                (long long)fr, (long long)fc, fg, fw, rmask, cmask, (unsigned long long)cblk);
  std::printf("\n");
}

template <typename T>
static std::vector<double> read_back(const void* p, int64_t n, bool f32) {
  std::vector<double> v(n);
  if (f32) {
    std::vector<float> h(n);
    CK(cudaMemcpy(h.data(), p, n * 4, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; ++i) v[i] = h[i];
  } else {
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), p, n * 2, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; ++i) v[i] = HT<T>::to(h[i]);
  }
  return v;
}

// dX [M, K] from dgu [M, 2N] and weights stored `lay`; the kernel runs the
// flipped layout (as launch_wgmma_dx).
template <typename T>
static void dx_case(const char* what, int64_t M, int64_t N, int64_t K, int lay, bool f32) {
  auto dgu = rand_vec<T>(M * 2 * N, 1.0f);
  const float ws = 1.0f / std::sqrt((float)N);
  auto wg = rand_vec<T>(N * K, ws), wu = rand_vec<T>(N * K, ws);
  Dev d_dgu(M * 2 * N * 2), d_w(2 * N * K * 2), d_dx(M * K * 4);
  CK(cudaMemcpy(d_dgu.p, dgu.data(), M * 2 * N * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d_w.p, wg.data(), N * K * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy((char*)d_w.p + N * K * 2, wu.data(), N * K * 2, cudaMemcpyHostToDevice));
  CK(cudaMemset(d_dx.p, 0xFF, M * K * 4));  // NaN poison
  const char* pg = (const char*)d_w.p;
  const char* pu = pg + N * K * 2;
  const int64_t h = K / 2;
  const CUtensorMap x1 = map_ld<T>(d_dgu.p, M, N, 2 * N, 128);
  const CUtensorMap x2 = map_ld<T>((const char*)d_dgu.p + N * 2, M, N, 2 * N, 128);
  CUtensorMap g1, u1, g2, u2;
  if (lay == GLU_LAYOUT_NK) {  // kernel KN: [N rows, h cols], ld K
    g1 = map_ld<T>(pg, N, h, K, 64);
    u1 = map_ld<T>(pg + h * 2, N, h, K, 64);
    g2 = map_ld<T>(pu, N, h, K, 64);
    u2 = map_ld<T>(pu + h * 2, N, h, K, 64);
  } else {  // kernel NK: [h rows, N cols], the second half h rows on
    g1 = map_ld<T>(pg, h, N, N, 128);
    u1 = map_ld<T>(pg + h * N * 2, h, N, N, 128);
    g2 = map_ld<T>(pu, h, N, N, 128);
    u2 = map_ld<T>(pu + h * N * 2, h, N, N, 128);
  }
  const int klay = lay == GLU_LAYOUT_NK ? GLU_LAYOUT_KN : GLU_LAYOUT_NK;
  GluParams p{};
  p.x = d_dgu.p; p.m = M; p.n = h; p.k = N; p.layout = klay; p.act = GLU_ACT_IDENTITY; p.beta = 1.f;
  GluTrainParams tp{};
  tp.aux = d_dx.p; tp.ld_aux = K; tp.epi = f32 ? GLU_EPI_DX_F32 : GLU_EPI_DX;
  DxKernel k = Kern<T>::dx(klay, f32);
  CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
  k<<<(unsigned)glu_wgmma_grid(M, h, g_grid_cap), kWgThreads, kWgSmemBytes>>>(x1, g1, u1, x2, g2, u2, p, tp);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  const auto got = read_back<T>(d_dx.p, M * K, f32);
  std::vector<double> want(M * K, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const double a = HT<T>::to(dgu[m * 2 * N + n]), b = HT<T>::to(dgu[m * 2 * N + N + n]);
      for (int64_t kk = 0; kk < K; ++kk)
        want[m * K + kk] += a * w_at(wg, lay, N, K, n, kk) + b * w_at(wu, lay, N, K, n, kk);
    }
  char shape[96];
  std::snprintf(shape, sizeof shape, "dx  w=%s M=%-4lld N=%-4lld K=%-4lld", lay == GLU_LAYOUT_NK ? "nk" : "kn",
                (long long)M, (long long)N, (long long)K);
  report(what, HT<T>::name, f32, got, want, M, K, f32 ? 1e-4 : HT<T>::tol, shape);
}

// dWg, dWu (stored `lay`) from x [M, K] and dgu [M, 2N], as launch_wgmma_dw.
template <typename T>
static void dw_case(const char* what, int64_t M, int64_t N, int64_t K, int lay, bool f32, bool acc) {
  auto x = rand_vec<T>(M * K, 1.0f), dgu = rand_vec<T>(M * 2 * N, 1.0f);
  const size_t gs = f32 ? 4 : 2;
  Dev d_x(M * K * 2), d_dgu(M * 2 * N * 2), d_dwg(N * K * gs), d_dwu(N * K * gs);
  CK(cudaMemcpy(d_x.p, x.data(), M * K * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d_dgu.p, dgu.data(), M * 2 * N * 2, cudaMemcpyHostToDevice));
  // Initial gradients: random (accumulate) or NaN poison (store).
  std::vector<double> init_g(N * K, 0.0), init_u(N * K, 0.0);
  for (void* dst : {d_dwg.p, d_dwu.p}) {
    std::vector<double>& init = dst == d_dwg.p ? init_g : init_u;
    if (!acc) {
      CK(cudaMemset(dst, 0xFF, N * K * gs));
      continue;
    }
    if (f32) {
      std::vector<float> h(N * K);
      std::uniform_real_distribution<float> d(-1.f, 1.f);
      for (int64_t i = 0; i < N * K; ++i) init[i] = h[i] = d(rng);
      CK(cudaMemcpy(dst, h.data(), N * K * 4, cudaMemcpyHostToDevice));
    } else {
      auto h = rand_vec<T>(N * K, 1.0f);
      for (int64_t i = 0; i < N * K; ++i) init[i] = HT<T>::to(h[i]);
      CK(cudaMemcpy(dst, h.data(), N * K * 2, cudaMemcpyHostToDevice));
    }
  }
  CUtensorMap a, bg, bu;
  GluGemmOut go{};
  int64_t rows, half;
  char* dwg = (char*)d_dwg.p;
  char* dwu = (char*)d_dwu.p;
  if (lay == GLU_LAYOUT_NK) {
    const int64_t h = K / 2;
    a = map_ld<T>(d_dgu.p, M, 2 * N, 2 * N, 64);
    bg = map_ld<T>(d_x.p, M, h, K, 64);
    bu = map_ld<T>((const char*)d_x.p + h * 2, M, h, K, 64);
    rows = 2 * N; half = h;
    go.ptr[0] = dwg; go.ptr[1] = dwg + h * gs; go.ptr[2] = dwu; go.ptr[3] = dwu + h * gs;
    go.ld = K; go.split = N;
  } else {
    a = map_ld<T>(d_x.p, M, K, K, 64);
    bg = map_ld<T>(d_dgu.p, M, N, 2 * N, 64);
    bu = map_ld<T>((const char*)d_dgu.p + N * 2, M, N, 2 * N, 64);
    rows = K; half = N;
    go.ptr[0] = dwg; go.ptr[1] = dwu; go.ptr[2] = nullptr; go.ptr[3] = nullptr;
    go.ld = N; go.split = K;
  }
  go.accumulate = acc ? 1 : 0;
  GluParams p{};
  p.x = d_dgu.p; p.m = rows; p.n = half; p.k = M; p.layout = GLU_LAYOUT_KN; p.act = GLU_ACT_IDENTITY; p.beta = 1.f;
  DwKernel k = Kern<T>::dw(f32);
  CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
  k<<<(unsigned)glu_wgmma_grid(rows, half, g_grid_cap), kWgThreads, kWgSmemBytes>>>(a, bg, bu, p, go);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  // Reference in the storage layout: NK [N, K], KN [K, N].
  const int64_t R = lay == GLU_LAYOUT_NK ? N : K, C = lay == GLU_LAYOUT_NK ? K : N;
  for (int which = 0; which < 2; ++which) {
    std::vector<double> want(which == 0 ? init_g : init_u);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const double d = HT<T>::to(dgu[m * 2 * N + which * N + n]);
        for (int64_t kk = 0; kk < K; ++kk) {
          const double v = d * HT<T>::to(x[m * K + kk]);
          want[lay == GLU_LAYOUT_NK ? n * K + kk : kk * N + n] += v;
        }
      }
    const auto got = read_back<T>(which == 0 ? d_dwg.p : d_dwu.p, N * K, f32);
    char shape[112];
    std::snprintf(shape, sizeof shape, "%s w=%s M=%-4lld N=%-4lld K=%-4lld acc=%d", which == 0 ? "dWg" : "dWu",
                  lay == GLU_LAYOUT_NK ? "nk" : "kn", (long long)M, (long long)N, (long long)K, acc);
    report(what, HT<T>::name, f32, got, want, R, C, f32 ? 1e-4 : HT<T>::tol, shape);
  }
}

// Timing at the training bench's shape (bf16, NK = [2N, K] storage, f32
// gradients): dX and dW each 4·M·N·K flops.
static void perf(int64_t M, int64_t N, int64_t K) {
  using T = __nv_bfloat16;
  Dev d_dgu(M * 2 * N * 2), d_x(M * K * 2), d_w(2 * N * K * 2), d_dx(M * K * 4), d_dw(2 * N * K * 4);
  {
    auto v = rand_vec<T>(M * 2 * N, 1.0f);
    CK(cudaMemcpy(d_dgu.p, v.data(), v.size() * 2, cudaMemcpyHostToDevice));
    auto xv = rand_vec<T>(M * K, 1.0f);
    CK(cudaMemcpy(d_x.p, xv.data(), xv.size() * 2, cudaMemcpyHostToDevice));
    auto w = rand_vec<T>(2 * N * K, 0.02f);
    CK(cudaMemcpy(d_w.p, w.data(), w.size() * 2, cudaMemcpyHostToDevice));
  }
  const int64_t h = K / 2;
  const char* pg = (const char*)d_w.p;
  const char* pu = pg + N * K * 2;
  const CUtensorMap x1 = map_ld<T>(d_dgu.p, M, N, 2 * N, 128);
  const CUtensorMap x2 = map_ld<T>((const char*)d_dgu.p + N * 2, M, N, 2 * N, 128);
  const CUtensorMap g1 = map_ld<T>(pg, N, h, K, 64), u1 = map_ld<T>(pg + h * 2, N, h, K, 64);
  const CUtensorMap g2 = map_ld<T>(pu, N, h, K, 64), u2 = map_ld<T>(pu + h * 2, N, h, K, 64);
  GluParams pdx{};
  pdx.x = d_dgu.p; pdx.m = M; pdx.n = h; pdx.k = N; pdx.layout = GLU_LAYOUT_KN; pdx.act = GLU_ACT_IDENTITY;
  GluTrainParams tp{};
  tp.aux = d_dx.p; tp.ld_aux = K; tp.epi = GLU_EPI_DX_F32;
  const CUtensorMap a = map_ld<T>(d_dgu.p, M, 2 * N, 2 * N, 64);
  const CUtensorMap bg = map_ld<T>(d_x.p, M, h, K, 64), bu = map_ld<T>((const char*)d_x.p + h * 2, M, h, K, 64);
  GluParams pdw{};
  pdw.x = d_dgu.p; pdw.m = 2 * N; pdw.n = h; pdw.k = M; pdw.layout = GLU_LAYOUT_KN; pdw.act = GLU_ACT_IDENTITY;
  char* dw = (char*)d_dw.p;
  GluGemmOut go{};
  go.ptr[0] = dw; go.ptr[1] = dw + h * 4; go.ptr[2] = dw + N * K * 4; go.ptr[3] = dw + N * K * 4 + h * 4;
  go.ld = K; go.split = N; go.accumulate = 0;
  // The training forward (GLU_EPI_OUT_PRE: out plus the [M, 2N]
  // pre-activations) and the Recompute backward's first stage (GLU_EPI_DGU:
  // dGate | dUp from d_out), for the step's other pieces (session 16: the
  // training bench's step is ~1.3 ms over dX + dW + the inference forward,
  // kernels/NOTES-training.md). Compare "pre" with wgmma_selftest's direct
  // epilogue at the same shape.
  Dev d_out(M * N * 2), d_pre(M * 2 * N * 2), d_dout(M * N * 2);
  {
    auto v = rand_vec<T>(M * N, 1.0f);
    CK(cudaMemcpy(d_dout.p, v.data(), v.size() * 2, cudaMemcpyHostToDevice));
  }
  const CUtensorMap fx = map_ld<T>(d_x.p, M, K, K, 128);
  const CUtensorMap fg = map_ld<T>(pg, N, K, K, 128), fu = map_ld<T>(pu, N, K, K, 128);
  GluParams pf{};
  pf.x = d_x.p; pf.w_gate = pg; pf.w_up = pu; pf.out = d_out.p;
  pf.m = M; pf.n = N; pf.k = K; pf.layout = GLU_LAYOUT_NK; pf.act = GLU_ACT_SILU; pf.beta = 1.0f;
  GluTrainParams tpre{}, tdgu{};
  tpre.aux = d_pre.p; tpre.ld_aux = 2 * N; tpre.epi = GLU_EPI_OUT_PRE;
  tdgu.d_out = d_dout.p; tdgu.aux = d_pre.p; tdgu.ld_aux = 2 * N; tdgu.epi = GLU_EPI_DGU;
  for (auto k : {fused_glu_wgmma_pre_nk_bf16, fused_glu_wgmma_dgu_nk_bf16})
    CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kWgSmemBytes));
  static const char* const names[] = {"dx ", "dw ", "pre", "dgu"};
  for (int which = 0; which < 4; ++which) {
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    auto run = [&] {
      if (which == 0)
        fused_glu_wgmma_dx32_kn_bf16<<<(unsigned)glu_wgmma_grid(M, h, g_grid_cap), kWgThreads, kWgSmemBytes>>>(
            x1, g1, u1, x2, g2, u2, pdx, tp);
      else if (which == 1)
        fused_glu_wgmma_dw32_bf16<<<(unsigned)glu_wgmma_grid(2 * N, h, g_grid_cap), kWgThreads, kWgSmemBytes>>>(
            a, bg, bu, pdw, go);
      else
        (which == 2 ? fused_glu_wgmma_pre_nk_bf16 : fused_glu_wgmma_dgu_nk_bf16)
            <<<(unsigned)glu_wgmma_grid(M, N, g_grid_cap), kWgThreads, kWgSmemBytes>>>(
                fx, fg, fu, pf, which == 2 ? tpre : tdgu);
    };
    for (int i = 0; i < 2; ++i) run();
    CK(cudaDeviceSynchronize());
    const int iters = 10;
    CK(cudaEventRecord(e0));
    for (int i = 0; i < iters; ++i) run();
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    CK(cudaGetLastError());
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    const double us = 1000.0 * ms / iters;
    std::printf("perf %s (bf16, NK weights, %s) M=%lld N=%lld K=%lld: %9.1f us %6.1f TFLOP/s (4MNK)\n",
                names[which], which < 2 ? "f32 out" : which == 2 ? "out + pre-activations" : "dGate|dUp from d_out",
                (long long)M, (long long)N, (long long)K, us, 4.0 * M * N * K / (us * 1e-6) / 1e12);
    CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
  }
}

int main(int argc, char** argv) {
  load_encode();
  int dev = 0, sms = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  std::printf("device %s (cc %d.%d), %d SMs\n", prop.name, prop.major, prop.minor, sms);
  if (prop.major != 9) {
    std::printf("SKIPPED: needs compute capability 9.0 (exit %d)\n", SELFTEST_SKIP);
    return SELFTEST_SKIP;
  }
  using B = __nv_bfloat16;
  using H = __half;
  const int NK = GLU_LAYOUT_NK, KN = GLU_LAYOUT_KN;
  if (argc > 1 && std::strcmp(argv[1], "--small") == 0) {
    // Tails in every dimension, both layouts, T and f32 outputs, accumulate,
    // and one CTA walking several tiles (the cross-tile pipeline).
    dx_case<B>("tails (M, K/2, N)", 130, 136, 48, NK, true);
    dx_case<B>("tails (M, K/2, N)", 130, 136, 48, KN, false);
    dw_case<B>("tails (M, rows, cols)", 70, 136, 48, NK, false, true);
    dw_case<B>("tails (M, rows, cols)", 70, 136, 48, KN, true, false);
    g_grid_cap = 1;
    dx_case<B>("one CTA walks all tiles", 300, 72, 208, NK, false);
    dw_case<B>("one CTA walks all tiles", 40, 264, 208, NK, true, false);
    std::printf("wgmma_grad_selftest --small: %d/%d cases passed\n", g_cases - g_fail, g_cases);
    return g_fail ? 1 : 0;
  }
  // dX: one k16 of each segment, a k-tile, tails, many tiles per CTA.
  for (int lay : {NK, KN})
    for (bool f32 : {true, false}) {
      dx_case<B>("one k16 per segment", 128, 16, 256, lay, f32);
      dx_case<B>("k-tiles, one tile", 128, 192, 256, lay, f32);
      dx_case<B>("tails (M, K/2, N)", 300, 264, 208, lay, f32);
      dx_case<B>("many tiles per CTA", 520, 72, 1040, lay, f32);
    }
  dx_case<H>("f16 tails", 300, 264, 208, NK, false);
  dx_case<H>("f16 tails", 130, 136, 48, KN, true);
  // dW: one k16 of batch rows, a k-tile, tails, the NK row split inside a
  // tile (N = 1160), accumulate, many tiles per CTA.
  for (int lay : {NK, KN})
    for (bool f32 : {true, false})
      for (bool acc : {false, true}) {
        dw_case<B>("one k16 of batch rows", 16, 64, 256, lay, f32, acc);
        dw_case<B>("tails (M, rows, cols)", 300, 264, 208, lay, f32, acc);
      }
  dw_case<B>("row split inside a tile", 96, 1160, 208, NK, true, false);
  dw_case<B>("many tiles per CTA", 70, 520, 1040, KN, true, true);
  dw_case<B>("one batch row", 1, 8, 16, NK, true, false);
  dw_case<H>("f16 tails", 300, 264, 208, NK, false, true);
  dw_case<H>("f16 tails", 130, 136, 48, KN, true, false);
  std::printf("\n%d/%d cases passed\n", g_cases - g_fail, g_cases);
  if (!(argc > 1 && std::strcmp(argv[1], "--no-perf") == 0)) {
    g_grid_cap = sms;
    perf(8192, 11008, 4096);
  }
  return g_fail ? 1 : 0;
}
