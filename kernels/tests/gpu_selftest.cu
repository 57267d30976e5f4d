// Standalone GPU self-test of every kernel in kernels/*.cu against a double
// precision CPU reference (no Rust needed). Not compiled by build.rs (it only
// compiles kernels/*.cu).
//   build (no GPU needed):
//     $NVCC -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a \
//           -gencode=arch=compute_80,code=sm_80 -I kernels \
//           kernels/tests/gpu_selftest.cu -o gpu_selftest
//   run on the GPU machine: ./gpu_selftest      (exit 0 = all passed, ~seconds;
//     then prints the mma.sync throughput probes, see mma_perf_probe.cuh;
//     ./gpu_selftest --no-perf skips them)
// Checks (error model in selftest_ref.h, itself tested on the host by
// selftest_ref_test.cpp): every element within tol_rel(T)*|ref| + the
// standard f32 dot-product bound gamma_K * sum|x_k w_k| propagated through
// act(g)*u + an f32 act-evaluation slack; plus a normwise relative error
// ||got-ref||/||ref|| <= 1e-2 (bf16), 2e-3 (f16), 1e-5 (f32). NaN/inf never
// passes unless the reference is NaN. Padding columns must stay untouched.
// The tensor-core shapes straddle every edge of the 128 x 128 x 32 tile.
#include "../act_and_mul.cu"
#include "../fused_glu_mma.cu"
#include "../fused_glu_simt.cu"
#include "../probe.cu"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); std::exit(2); } } while (0)

static int g_fail = 0, g_checks = 0;

#include "selftest_ref.h"
#include "mma_perf_probe.cuh"

template <typename T> struct HT;
template <> struct HT<float> {
  static float from(float v) { return v; }
  static float to(float v) { return v; }
  static constexpr double u = 1.0 / 16777216.0;  // 2^-24
  static constexpr double tiny = 1e-30;  // results below ~f32 normal range may flush
  static constexpr double norm_tol = 1e-5;
  static constexpr const char* name = "f32";
};
template <> struct HT<__half> {
  static __half from(float v) { return __float2half_rn(v); }
  static float to(__half v) { return __half2float(v); }
  static constexpr double u = 1.0 / 2048.0;  // 2^-11
  static constexpr double tiny = 5.960464477539063e-08;
  static constexpr double norm_tol = 2e-3;
  static constexpr const char* name = "f16";
};
template <> struct HT<__nv_bfloat16> {
  static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
  static float to(__nv_bfloat16 v) { return __bfloat162float(v); }
  static constexpr double u = 1.0 / 256.0;  // 2^-8
  static constexpr double tiny = 1e-30;  // results below ~f32 normal range may flush
  static constexpr double norm_tol = 1e-2;
  static constexpr const char* name = "bf16";
};

static std::mt19937 rng(1234);
static float urand(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }

template <typename T>
static std::vector<T> rand_vec(size_t n, float lo, float hi) {
  std::vector<T> v(n);
  for (auto& e : v) e = HT<T>::from(urand(lo, hi));
  return v;
}

// Device buffer with an element offset (to create misaligned pointers).
template <typename T> struct DBuf {
  char* base = nullptr;
  T* p = nullptr;
  size_t n = 0;
  DBuf(const std::vector<T>& h, size_t off_elems = 0) : n(h.size()) {
    CK(cudaMalloc(&base, (h.size() + off_elems + 16) * sizeof(T)));
    p = reinterpret_cast<T*>(base) + off_elems;
    if (!h.empty()) CK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> get() const {
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  ~DBuf() { cudaFree(base); }
};

// ---- fused kernels ----------------------------------------------------------
typedef void (*GluKernel)(GluParams);

// in_rel / norm_tol: the input error model and normwise bound of the tf32
// kernels (norm_tol < 0: the dtype's).
template <typename T>
static void test_fused(const char* kname, GluKernel kern, bool mma, int layout, int64_t M,
                       int64_t N, int64_t K, int act, bool bias, size_t misalign,
                       double in_rel = 0.0, double norm_tol = -1.0,
                       int mma_threads = GLU_MMA_THREADS,
                       size_t mma_smem = GLU_MMA_SMEM_BYTES) {
  auto x = rand_vec<T>(M * K, -1, 1);
  auto wg = rand_vec<T>(N * K, -1, 1), wu = rand_vec<T>(N * K, -1, 1);
  auto bg = rand_vec<T>(N, -0.5, 0.5), bu = rand_vec<T>(N, -0.5, 0.5);
  DBuf<T> dx(x, misalign), dwg(wg, misalign), dwu(wu, 0), dbg(bg, misalign), dbu(bu, 0);
  std::vector<T> o(M * N, HT<T>::from(12345.f));
  DBuf<T> dout(o, misalign);
  GluParams p{};
  p.x = dx.p; p.w_gate = dwg.p; p.w_up = dwu.p;
  p.b_gate = bias ? dbg.p : nullptr; p.b_up = bias ? dbu.p : nullptr;
  p.out = dout.p; p.m = M; p.n = N; p.k = K; p.layout = layout; p.act = act;
  p.beta = 1.7f; p.reserved = 0;
  dim3 grid, block;
  size_t smem = 0;
  if (mma) {
    grid = dim3((N + GLU_MMA_BN - 1) / GLU_MMA_BN, (M + GLU_MMA_BM - 1) / GLU_MMA_BM);
    block = dim3(mma_threads);
    smem = mma_smem;
    CK(cudaFuncSetAttribute((const void*)kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  } else {
    grid = dim3((N + GLU_SIMT_BN - 1) / GLU_SIMT_BN, (M + GLU_SIMT_BM - 1) / GLU_SIMT_BM);
    block = dim3(GLU_SIMT_THREADS);
  }
  kern<<<grid, block, smem>>>(p);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  auto got = dout.get();
  const double beta = 1.7f;
  Checker ck;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double g = bias ? HT<T>::to(bg[n]) : 0, u = bias ? HT<T>::to(bu[n]) : 0;
      double ga = std::fabs(g), ua = std::fabs(u);
      for (int64_t k = 0; k < K; ++k) {
        double xv = HT<T>::to(x[m * K + k]);
        int64_t wi = layout == GLU_LAYOUT_KN ? k * N + n : n * K + k;
        double pg = xv * HT<T>::to(wg[wi]), pu = xv * HT<T>::to(wu[wi]);
        g += pg; u += pu;
        ga += std::fabs(pg); ua += std::fabs(pu);
      }
      const double ref = ref_act(g, act, beta) * u;
      const double allow = fused_allow(g, u, ga, ua, K, act, beta, HT<T>::u, HT<T>::tiny, in_rel);
      const double v = HT<T>::to(got[m * N + n]);
      if (!ck.add(v, ref, allow) && ck.bad <= 3)
        std::printf("    %s m=%lld n=%lld got %.9g ref %.9g allow %.3g\n", kname, (long long)m,
                    (long long)n, v, ref, allow);
    }
  const bool ok = ck.pass(norm_tol < 0 ? HT<T>::norm_tol : norm_tol);
  ++g_checks;
  if (!ok) ++g_fail;
  std::printf("%s %-24s M=%lld N=%lld K=%lld act=%d bias=%d mis=%zu: %s (bad %d, worst err/bound %.3g, normwise %.3g)\n",
              ok ? "ok  " : "FAIL", kname, (long long)M, (long long)N, (long long)K, act, bias,
              misalign, ok ? "pass" : "MISMATCH", ck.bad, ck.worst_ratio, ck.normwise());
}

// ---- elementwise ------------------------------------------------------------
typedef void (*EltKernel)(GluEltParams);

template <typename T>
static void test_elt(const char* kname, EltKernel kern, int op, int64_t rows, int64_t n, int64_t ld,
                     int act, bool bias, size_t misalign, int grid, float arange = 4.0f) {
  auto a = rand_vec<T>(rows * ld, -arange, arange), b = rand_vec<T>(rows * ld, -2, 2),
       c = rand_vec<T>(rows * ld, -2, 2);
  auto ba = rand_vec<T>(n, -1, 1), bb = rand_vec<T>(n, -1, 1);
  if (rows * ld > 3) { a[1] = HT<T>::from(NAN); a[2] = HT<T>::from(0.f); }
  const T init_v = HT<T>::from(777.f);
  std::vector<T> init(rows * ld, init_v);
  DBuf<T> da(a, misalign), db(b, 0), dc(c, 0), dba(ba, 0), dbb(bb, 0), do0(init, 0), do1(init, 0);
  GluEltParams p{};
  p.a = da.p; p.b = db.p; p.c = dc.p;
  p.bias_a = bias ? dba.p : nullptr; p.bias_b = bias ? dbb.p : nullptr;
  p.out0 = do0.p; p.out1 = do1.p; p.rows = rows; p.n = n;
  p.ld_a = p.ld_b = p.ld_c = p.ld_out0 = p.ld_out1 = ld; p.act = act; p.beta = 0.8f;
  kern<<<grid, GLU_ELT_THREADS>>>(p);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  auto o0 = do0.get(), o1 = do1.get();
  const double beta = 0.8f, tiny = HT<T>::tiny;
  Checker ck;
  int untouched_bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < ld; ++j) {
      size_t i = r * ld + j;
      double g0 = HT<T>::to(o0[i]), g1 = HT<T>::to(o1[i]);
      if (j >= n) {  // padding columns: never written (777 is 776 in bf16: compare as T)
        const double sentinel = HT<T>::to(init_v);
        const bool ok = g0 == sentinel && (op != 3 || g1 == sentinel);
        if (!ok && untouched_bad++ < 3)
          std::printf("    %s r=%lld c=%lld (padding) overwritten: %g,%g\n", kname, (long long)r,
                      (long long)j, g0, g1);
        continue;
      }
      double av = HT<T>::to(a[i]), bv = HT<T>::to(b[i]), cv = HT<T>::to(c[i]);
      double bav = bias ? HT<T>::to(ba[j]) : 0, bbv = bias ? HT<T>::to(bb[j]) : 0;
      bool ok = true;
      double r0 = 0, r1 = 0;
      if (op == 0 || op == 1) {  // act(a + ba) [* (b + bb)]
        const double U = op == 0 ? bv + bbv : 1.0;
        const double Ub = op == 0 ? std::fabs(bv) + std::fabs(bbv) : 0.0;
        r0 = ref_act(av + bav, act, beta) * U;
        ok = ck.add(g0, r0, elt_act_allow(av, bav, U, Ub, act, beta, HT<T>::u, tiny));
      } else if (op == 2) {  // a * (b + bb)
        r0 = av * (bv + bbv);
        ok = ck.add(g0, r0, elt_mul_allow(av, bv, bbv, HT<T>::u, tiny));
      } else if (op == 4) {  // act_bwd: out0 = b * act'(a)
        r0 = bv * ref_act_grad(av, act, beta);
        double allow0, allow1;
        elt_bwd_allow(av, 1.0, bv, act, beta, HT<T>::u, tiny, &allow0, &allow1);
        ok = ck.add(g0, r0, allow0);
      } else {  // glu_bwd: out0 = d * u * act'(g), out1 = d * act(g)
        r0 = cv * bv * ref_act_grad(av, act, beta);
        r1 = cv * ref_act(av, act, beta);
        double allow0, allow1;
        elt_bwd_allow(av, bv, cv, act, beta, HT<T>::u, tiny, &allow0, &allow1);
        ok = ck.add(g0, r0, allow0);
        ok = ck.add(g1, r1, allow1) && ok;
      }
      if (!ok && ck.bad <= 3)
        std::printf("    %s r=%lld c=%lld a=%.9g got %.9g,%.9g ref %.9g,%.9g\n", kname, (long long)r,
                    (long long)j, av, g0, g1, r0, r1);
    }
  const bool pass = ck.pass(HT<T>::norm_tol) && untouched_bad == 0;
  ++g_checks;
  if (!pass) ++g_fail;
  std::printf("%s %-18s rows=%lld n=%lld ld=%lld act=%d bias=%d mis=%zu grid=%d a=+-%g: %s (worst err/bound %.3g, normwise %.3g)\n",
              pass ? "ok  " : "FAIL", kname, (long long)rows, (long long)n, (long long)ld, act, bias,
              misalign, grid, arange, pass ? "pass" : "MISMATCH", ck.worst_ratio, ck.normwise());
}

// narrow_{f16,bf16}: out0 (T) = round_T(a) for f32 a, bit-exact against the
// host's round-to-nearest-even conversion, including NaN, +-Inf, values past
// T's range (-> Inf for f16) and subnormals; padding columns never written.
template <typename T>
static void test_narrow(const char* kname, EltKernel kern, int64_t rows, int64_t n, int64_t ld,
                        int grid) {
  auto a = rand_vec<float>(rows * ld, -3, 3);
  const float specials[] = {NAN, INFINITY, -INFINITY, 1e6f, -7e4f, 3e-8f, -1e-40f, 0.f, -0.f,
                            1.00390625f /* bf16 tie */, 1.000244140625f /* f16 tie */};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0] && (int64_t)i < rows * ld; ++i)
    a[i * 3 % (rows * ld)] = specials[i];
  const T init_v = HT<T>::from(777.f);
  DBuf<float> da(a, 0);
  DBuf<T> d0(std::vector<T>(rows * ld, init_v), 0);
  GluEltParams p{};
  p.a = da.p; p.out0 = d0.p; p.rows = rows; p.n = n; p.ld_a = ld; p.ld_out0 = ld;
  kern<<<grid, GLU_ELT_THREADS>>>(p);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  auto o = d0.get();
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < ld; ++j) {
      const size_t i = r * ld + j;
      const T want = j < n ? HT<T>::from(a[i]) : init_v;
      uint16_t gb, wb;
      std::memcpy(&gb, &o[i], 2);
      std::memcpy(&wb, &want, 2);
      const bool both_nan = HT<T>::to(o[i]) != HT<T>::to(o[i]) && HT<T>::to(want) != HT<T>::to(want);
      if (gb != wb && !both_nan) {
        if (bad < 3)
          std::printf("    %s r=%lld c=%lld a=%.9g got %04x want %04x\n", kname, (long long)r,
                      (long long)j, a[i], gb, wb);
        ++bad;
      }
    }
  ++g_checks;
  if (bad) ++g_fail;
  std::printf("%s %-18s rows=%lld n=%lld ld=%lld grid=%d: %s (%d wrong)\n", bad ? "FAIL" : "ok  ",
              kname, (long long)rows, (long long)n, (long long)ld, grid, bad ? "MISMATCH" : "pass",
              bad);
}

// ---- probes -----------------------------------------------------------------
static void test_probes() {
  DBuf<float> f(std::vector<float>(256, -1.f));
  mma_fragment_probe<<<1, 32>>>(f.p);
  CK(cudaDeviceSynchronize());
  auto v = f.get();
  int bad = 0;
  for (int half = 0; half < 2; ++half)
    for (int r = 0; r < 16; ++r)
      for (int c = 0; c < 8; ++c)
        if (v[half * 128 + r * 8 + c] != (float)(r * 16 + c)) {
          if (bad < 5) std::printf("    fragment probe %s r=%d c=%d got %g\n", half ? "KN" : "NK", r, c, v[half * 128 + r * 8 + c]);
          ++bad;
        }
  ++g_checks; if (bad) ++g_fail;
  std::printf("%s mma_fragment_probe\n", bad ? "FAIL" : "ok  ");

  GluParams p{};
  p.x = (void*)0x1000; p.w_gate = (void*)0x2000; p.w_up = (void*)0x3000; p.b_gate = nullptr;
  p.b_up = (void*)0x5000; p.out = (void*)0x6000; p.m = 7; p.n = -8; p.k = 1LL << 40;
  p.layout = 1; p.act = 4; p.beta = 1.5f; p.reserved = 0;
  GluEltParams e{};
  e.a = (void*)0x11; e.b = (void*)0x12; e.c = (void*)0x13; e.bias_a = (void*)0x14; e.bias_b = nullptr;
  e.out0 = (void*)0x16; e.out1 = (void*)0x17; e.rows = 21; e.n = 22; e.ld_a = 23; e.ld_b = 24;
  e.ld_c = 25; e.ld_out0 = 26; e.ld_out1 = 27; e.act = 5; e.beta = -2.0f;
  DBuf<unsigned long long> o(std::vector<unsigned long long>(29, 0));
  glu_params_probe<<<1, 1>>>(p, e, o.p);
  CK(cudaDeviceSynchronize());
  auto w = o.get();
  uint32_t b1, b2;
  std::memcpy(&b1, &p.beta, 4); std::memcpy(&b2, &e.beta, 4);
  unsigned long long want[29] = {7, (unsigned long long)-8LL, 1ULL << 40, 1, 4, b1, 0, 0x1000, 0x2000, 0x3000, 0,
                                 0x5000, 0x6000, 21, 22, 23, 24, 25, 26, 27, 5, b2,
                                 0x11, 0x12, 0x13, 0x14, 0, 0x16, 0x17};
  bad = 0;
  for (int i = 0; i < 29; ++i) if (w[i] != want[i]) { std::printf("    params probe [%d] %llx != %llx\n", i, w[i], want[i]); ++bad; }
  ++g_checks; if (bad) ++g_fail;
  std::printf("%s glu_params_probe\n", bad ? "FAIL" : "ok  ");
}

// glu_bwd at the training bench's shape as src/cuda/train.rs launches it in
// the PreActivations backward (g, u: the [M, 2N] pre-activations, ld 2N;
// d_out [M, N]; dGate | dUp into [M, 2N]; grid as src/cuda/elementwise.rs):
// bytes moved and GB/s, for the step's non-GEMM time (session 16,
// kernels/NOTES-training.md). Print only.
static void elt_perf() {
  using T = __nv_bfloat16;
  const int64_t M = 8192, N = 11008;
  int dev = 0, sms = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  T *pre = nullptr, *dout = nullptr, *dgu = nullptr;
  CK(cudaMalloc(&pre, M * 2 * N * sizeof(T)));
  CK(cudaMalloc(&dout, M * N * sizeof(T)));
  CK(cudaMalloc(&dgu, M * 2 * N * sizeof(T)));
  CK(cudaMemset(pre, 0x3C, M * 2 * N * sizeof(T)));
  CK(cudaMemset(dout, 0x3C, M * N * sizeof(T)));
  GluEltParams p{};
  p.a = pre; p.b = pre + N; p.c = dout; p.out0 = dgu; p.out1 = dgu + N;
  p.rows = M; p.n = N;
  p.ld_a = p.ld_b = p.ld_out0 = p.ld_out1 = 2 * N; p.ld_c = N;
  p.act = GLU_ACT_SILU; p.beta = 1.0f;
  const int64_t want = (M * N + GLU_ELT_THREADS * 8 - 1) / (GLU_ELT_THREADS * 8);
  const int grid = (int)(want < (int64_t)sms * 16 ? want : (int64_t)sms * 16);
  // mma_probe::time_ms: one warm-up call, then one timed call, of 10 launches.
  const int iters = 10;
  const double us = 1000.0 * mma_probe::time_ms([&] {
    for (int i = 0; i < iters; ++i) glu_bwd_bf16<<<grid, GLU_ELT_THREADS>>>(p);
  }) / iters;
  const double bytes = (double)M * N * sizeof(T) * 5;  // g, u, d_out in; dGate, dUp out
  std::printf("perf glu_bwd_bf16 M=%lld N=%lld (train backward, ld 2N, grid %d): %9.1f us %7.1f GB/s\n",
              (long long)M, (long long)N, grid, us, bytes / (us * 1e-6) / 1e9);
  CK(cudaFree(pre)); CK(cudaFree(dout)); CK(cudaFree(dgu));
}

int main(int argc, char** argv) {
  test_probes();

  struct Shape { int64_t m, n, k; };
  // Tensor-core kernel: tile 128 x 128 (x2 projections) x 32. Tails around
  // every tile edge: M 127/128/129, N 8 below / at / above the tile, K in
  // {8, 24, 40} (partial k-tiles), K spanning more k-tiles than pipeline
  // stages, > 8 row tiles (a partial block-order group), large K.
  const Shape mma_shapes[] = {{128, 128, 32}, {1, 8, 8},      {127, 120, 24}, {129, 136, 40},
                              {128, 128, 8},  {130, 72, 40},  {257, 264, 328}, {64, 136, 1000},
                              {515, 264, 96}, {1100, 24, 136}, {255, 384, 64}, {129, 256, 4096}};
  for (auto s : mma_shapes)
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
      int act = (int)((s.m + s.n + s.k / 8 + layout) % 7);
      bool bias = (s.k / 8 + layout) % 2 == 0;
      if (layout == GLU_LAYOUT_KN) {
        test_fused<__nv_bfloat16>("fused_glu_mma_kn_bf16", fused_glu_mma_kn_bf16, true, layout, s.m, s.n, s.k, act, bias, 0);
        test_fused<__half>("fused_glu_mma_kn_f16", fused_glu_mma_kn_f16, true, layout, s.m, s.n, s.k, (act + 1) % 7, !bias, 0);
      } else {
        test_fused<__nv_bfloat16>("fused_glu_mma_nk_bf16", fused_glu_mma_nk_bf16, true, layout, s.m, s.n, s.k, act, bias, 0);
        test_fused<__half>("fused_glu_mma_nk_f16", fused_glu_mma_nk_f16, true, layout, s.m, s.n, s.k, (act + 1) % 7, !bias, 0);
      }
    }
  // Every activation on both layouts, one tail-heavy shape.
  for (int act = 0; act < 7; ++act) {
    test_fused<__nv_bfloat16>("fused_glu_mma_nk_bf16", fused_glu_mma_nk_bf16, true, GLU_LAYOUT_NK, 200, 136, 72, act, act % 2 == 0, 0);
    test_fused<__half>("fused_glu_mma_kn_f16", fused_glu_mma_kn_f16, true, GLU_LAYOUT_KN, 200, 136, 72, act, act % 2 == 1, 0);
  }

  // The probe variants (mma_variants.cuh: P5 8 warps, P6 8 stages, P7 and
  // P8 the mbarrier loops): the same tile edges, bf16, before the probes time them.
  // A variant that needs more shared memory than this GPU gives a block is
  // skipped here and there, with a line saying so.
  {
    int optin = 0, dev = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    int vi = 0;
    for (const MmaVariant& v : kMmaVariants) {
      ++vi;
      if (v.smem > (uint32_t)optin) {
        std::printf("skip %s: needs %u bytes of shared memory, this GPU gives %d\n", v.name,
                    v.smem, optin);
        continue;
      }
      for (auto s : mma_shapes)
        for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
          int act = (int)((s.m + s.n + s.k / 8 + layout + 3 + vi) % 7);
          bool bias = (s.k / 8 + layout + vi) % 2 == 1;
          char nm[64];
          std::snprintf(nm, sizeof nm, "%s_%s_bf16", v.name, layout ? "nk" : "kn");
          test_fused<__nv_bfloat16>(nm, v.kern[layout], true, layout, s.m, s.n, s.k, act, bias, 0,
                                    0.0, -1.0, v.threads, v.smem);
        }
    }
  }

  // tf32 (f32 inputs, opt-in): the same tile edges, every activation, both
  // layouts; per-product input error 2^-9 (+ margin), normwise 1e-2 (bf16's).
  // K, N multiples of 4 (16-byte chunks of f32).
  const double tf32_rel = 1.05 / 512.0;
  const Shape tf32_shapes[] = {{128, 128, 16}, {1, 4, 4},      {127, 124, 12}, {129, 132, 20},
                               {130, 68, 36},  {257, 260, 332}, {64, 136, 1000}, {515, 264, 96},
                               {255, 384, 64}, {129, 256, 4096}};
  for (auto s : tf32_shapes)
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
      int act = (int)((s.m + s.n + s.k / 4 + layout) % 7);
      bool bias = (s.k / 4 + layout) % 2 == 0;
      test_fused<float>(layout ? "fused_glu_mma_nk_tf32" : "fused_glu_mma_kn_tf32",
                        layout ? fused_glu_mma_nk_tf32 : fused_glu_mma_kn_tf32, true, layout, s.m,
                        s.n, s.k, act, bias, 0, tf32_rel, 1e-2);
    }
  for (int act = 0; act < 7; ++act)
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK})
      test_fused<float>(layout ? "fused_glu_mma_nk_tf32" : "fused_glu_mma_kn_tf32",
                        layout ? fused_glu_mma_nk_tf32 : fused_glu_mma_kn_tf32, true, layout, 200,
                        136, 72, act, (act + layout) % 2 == 0, 0, tf32_rel, 1e-2);

  const Shape simt_shapes[] = {{64, 64, 16}, {1, 1, 1}, {67, 33, 19}, {130, 129, 77}, {200, 70, 300}};
  for (auto s : simt_shapes)
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK})
      for (size_t mis : {0, 1}) {
        int act = (int)((s.m + s.k + layout + mis) % 7);
        bool bias = (s.n + mis) % 2 == 0;
        GluKernel f32k = layout ? fused_glu_simt_nk_f32 : fused_glu_simt_kn_f32;
        GluKernel f16k = layout ? fused_glu_simt_nk_f16 : fused_glu_simt_kn_f16;
        GluKernel b16k = layout ? fused_glu_simt_nk_bf16 : fused_glu_simt_kn_bf16;
        test_fused<float>(layout ? "fused_glu_simt_nk_f32" : "fused_glu_simt_kn_f32", f32k, false, layout, s.m, s.n, s.k, act, bias, mis);
        test_fused<__half>(layout ? "fused_glu_simt_nk_f16" : "fused_glu_simt_kn_f16", f16k, false, layout, s.m, s.n, s.k, act, bias, mis);
        test_fused<__nv_bfloat16>(layout ? "fused_glu_simt_nk_bf16" : "fused_glu_simt_kn_bf16", b16k, false, layout, s.m, s.n, s.k, act, bias, mis);
      }

  EltKernel ek[5][3] = {{act_and_mul_f32, act_and_mul_f16, act_and_mul_bf16},
                        {act_inplace_f32, act_inplace_f16, act_inplace_bf16},
                        {mul_bias_f32, mul_bias_f16, mul_bias_bf16},
                        {glu_bwd_f32, glu_bwd_f16, glu_bwd_bf16},
                        {act_bwd_f32, act_bwd_f16, act_bwd_bf16}};
  const char* en[5] = {"act_and_mul", "act_inplace", "mul_bias", "glu_bwd", "act_bwd"};
  struct EShape { int64_t rows, n, ld; size_t mis; int grid; };
  const EShape es[] = {{33, 64, 128, 0, 7}, {5, 37, 40, 0, 3}, {17, 48, 48, 1, 1000}, {3, 16, 16, 0, 1}};
  for (int op = 0; op < 5; ++op)
    for (auto s : es)
      for (int act = 0; act < 7; ++act) {
        char nm[64];
        bool bias = (act + op) % 2 == 0;
        std::snprintf(nm, sizeof nm, "%s_f32", en[op]);
        test_elt<float>(nm, ek[op][0], op, s.rows, s.n, s.ld, act, bias, s.mis, s.grid);
        std::snprintf(nm, sizeof nm, "%s_f16", en[op]);
        test_elt<__half>(nm, ek[op][1], op, s.rows, s.n, s.ld, act, bias, s.mis, s.grid);
        std::snprintf(nm, sizeof nm, "%s_bf16", en[op]);
        test_elt<__nv_bfloat16>(nm, ek[op][2], op, s.rows, s.n, s.ld, act, bias, s.mis, s.grid);
      }
  for (auto s : es) {
    test_narrow<__half>("narrow_f16", narrow_f16, s.rows, s.n, s.ld, s.grid);
    test_narrow<__nv_bfloat16>("narrow_bf16", narrow_bf16, s.rows, s.n, s.ld, s.grid);
  }
  // Deep negative / large pre-activations (GELU cancellation regime, exp
  // overflow in the sigmoid forms), f32.
  for (int op : {0, 3, 4})
    for (int act = 0; act < 7; ++act) {
      char nm[64];
      std::snprintf(nm, sizeof nm, "%s_f32", en[op]);
      test_elt<float>(nm, ek[op][0], op, 64, 64, 64, act, false, 0, 4, 12.0f);
    }

  std::printf("\n%d/%d checks passed\n", g_checks - g_fail, g_checks);
  // Throughput probes of the mma.sync kernel (print only; see
  // mma_perf_probe.cuh) and of the training step's elementwise pass.
  // Skipped with --no-perf.
  if (!(argc > 1 && std::strcmp(argv[1], "--no-perf") == 0)) {
    mma_probe::run();
    elt_perf();
  }
  return g_fail ? 1 : 0;
}
