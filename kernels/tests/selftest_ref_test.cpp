// Host check of the self-test's error model (kernels/tests/selftest_ref.h):
//   g++ -std=c++17 -O2 -Wall -I kernels kernels/tests/selftest_ref_test.cpp -o /tmp/srt && /tmp/srt
// 1. A host emulation of a correct kernel (f32 fmaf accumulation, the f32
//    activation formulas of glu_common.cuh, one rounding to bf16/f16/f32)
//    passes the elementwise bound and the normwise threshold, for every
//    activation, K from 8 to 4096, and pre-activations down to -12 (GELU
//    cancellation regime).
// 2. Mutated "kernels" fail: a wrong output element, a missing k-tail (8
//    terms), a dropped bias, the old cancelling GELU forms in f32, a NaN.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "tests/selftest_ref.h"
static_assert(sizeof(&elt_mul_allow) > 0, "used by gpu_selftest.cu");

static int failures = 0;
#define EXPECT(c, ...) do { if (!(c)) { ++failures; std::printf("FAIL line %d: ", __LINE__); \
  std::printf(__VA_ARGS__); std::printf("\n"); } } while (0)

// ---- f32 activation formulas, mirrored from glu_common.cuh ----------------
static bool g_old_gelu = false;  // mutation: the cancelling forms
static float act_f(float z, int act, float beta) {
  switch (act) {
    case GLU_ACT_SILU: return z / (1.0f + expf(-z));
    case GLU_ACT_SWISH: return z / (1.0f + expf(-beta * z));
    case GLU_ACT_SIGMOID: return 1.0f / (1.0f + expf(-z));
    case GLU_ACT_GELU_ERF:
      if (g_old_gelu) return 0.5f * z * (1.0f + erff(z * 0.70710678118654752440f));
      return 0.5f * z * erfcf(-z * 0.70710678118654752440f);
    case GLU_ACT_GELU_TANH: {
      const float k0 = 0.79788456080286535588f;
      const float u = k0 * (z + 0.044715f * z * z * z);
      if (g_old_gelu) return 0.5f * z * (1.0f + tanhf(u));
      return z / (1.0f + expf(-2.0f * u));
    }
    case GLU_ACT_RELU: return z > 0.0f ? z : (z != z ? z : 0.0f);
    default: return z;
  }
}
static float sg(float x) { return 1.0f / (1.0f + expf(-x)); }
static float grad_f(float z, int act, float beta) {
  switch (act) {
    case GLU_ACT_SILU: return sg(z) * (1.0f + z * sg(-z));
    case GLU_ACT_SWISH: { const float bz = beta * z; return sg(bz) + bz * sg(bz) * sg(-bz); }
    case GLU_ACT_SIGMOID: return sg(z) * sg(-z);
    case GLU_ACT_GELU_ERF:
      return 0.5f * erfcf(-z * 0.70710678118654752440f) +
             z * 0.39894228040143267794f * expf(-0.5f * z * z);
    case GLU_ACT_GELU_TANH: {
      const float k0 = 0.79788456080286535588f, k1 = 0.044715f;
      const float u = k0 * (z + k1 * z * z * z);
      const float s = sg(2.0f * u), sm = sg(-2.0f * u);
      const float du = k0 * (1.0f + 3.0f * k1 * z * z);
      return s + z * 2.0f * s * sm * du;
    }
    case GLU_ACT_RELU: return z > 0.0f ? 1.0f : (z != z ? z : 0.0f);
    default: return 1.0f;
  }
}

// ---- formats ----------------------------------------------------------------
struct Fmt { const char* name; int p, emin; double u, tiny, norm; };
static const Fmt kBF16{"bf16", 8, -126, 1.0 / 256, 1e-30, 1e-2};
static const Fmt kF16{"f16", 11, -14, 1.0 / 2048, 5.960464477539063e-08, 2e-3};
static const Fmt kF32{"f32", 24, -126, 1.0 / 16777216, 1e-30, 1e-5};
static double rnd(double x, const Fmt& f) {  // round to nearest even, p bits
  if (x == 0 || !std::isfinite(x)) return x;
  if (f.p == 24) return (double)(float)x;
  int e = (int)std::floor(std::log2(std::fabs(x)));
  if (e < f.emin) e = f.emin;
  const double scale = std::ldexp(1.0, e - (f.p - 1));
  return std::nearbyint(x / scale) * scale;
}

// tf32 mode (fused_case with f = kF32): the kernel emulation reads each f32
// input as the tf32 tensor cores do, the low 13 mantissa bits dropped
// (truncation, the worst case of the 2^-9 input model gpu_selftest uses).
static bool g_tf32 = false;
static const double kTf32Rel = 1.05 / 512.0;  // gpu_selftest's tf32_rel
static float tf32(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  b &= 0xffffe000u;
  std::memcpy(&v, &b, 4);
  return v;
}
static float in_val(double v) { return g_tf32 ? tf32((float)v) : (float)v; }

enum Mut { NONE, SWAP_ELEM, DROP_KTAIL, DROP_BIAS, NAN_ELEM };

// Returns true when the emulated kernel passes the self-test's checks.
static bool fused_case(const Fmt& f, int64_t M, int64_t N, int64_t K, int act, Mut mut,
                       double* worst, unsigned seed) {
  std::mt19937 r(seed);
  std::uniform_real_distribution<float> U(-1, 1), B(-0.5, 0.5);
  std::vector<double> x(M * K), wg(N * K), wu(N * K), bg(N), bu(N);
  for (auto& e : x) e = rnd(U(r), f);
  for (auto& e : wg) e = rnd(U(r), f);
  for (auto& e : wu) e = rnd(U(r), f);
  for (auto& e : bg) e = rnd(B(r), f);
  for (auto& e : bu) e = rnd(B(r), f);
  const double beta = 1.7f;
  std::vector<double> got(M * N), ref(M * N), allow(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      // kernel emulation (NK layout)
      float g = 0.0f, u = 0.0f;
      const int64_t kend = mut == DROP_KTAIL ? K - 8 : K;
      for (int64_t k = 0; k < kend; ++k) {
        g = fmaf(in_val(x[m * K + k]), in_val(wg[n * K + k]), g);
        u = fmaf(in_val(x[m * K + k]), in_val(wu[n * K + k]), u);
      }
      const float bgf = mut == DROP_BIAS ? 0.0f : (float)bg[n];
      const float v = act_f(g + bgf, act, (float)beta) * (u + (float)bu[n]);
      got[m * N + n] = rnd(v, f);
      // reference
      double gd = bg[n], ud = bu[n], ga = std::fabs(bg[n]), ua = std::fabs(bu[n]);
      for (int64_t k = 0; k < K; ++k) {
        const double pg = x[m * K + k] * wg[n * K + k], pu = x[m * K + k] * wu[n * K + k];
        gd += pg; ud += pu; ga += std::fabs(pg); ua += std::fabs(pu);
      }
      ref[m * N + n] = ref_act(gd, act, beta) * ud;
      allow[m * N + n] = fused_allow(gd, ud, ga, ua, K, act, beta, f.u, f.tiny, g_tf32 ? kTf32Rel : 0.0);
    }
  if (mut == SWAP_ELEM) {  // swap element 0 with the most different one
    int64_t j = 0;
    for (int64_t i = 1; i < M * N; ++i)
      if (std::fabs(ref[i] - ref[0]) > std::fabs(ref[j] - ref[0])) j = i;
    std::swap(got[0], got[j]);
  }
  if (mut == NAN_ELEM) got[M * N / 2] = NAN;
  Checker ck;
  for (int64_t i = 0; i < M * N; ++i) ck.add(got[i], ref[i], allow[i]);
  if (worst) *worst = std::fmax(*worst, ck.worst_ratio);
  return ck.pass(g_tf32 ? 1e-2 : f.norm);
}

static bool elt_case(const Fmt& f, int op, int act, float range, double* worst, unsigned seed) {
  std::mt19937 r(seed);
  std::uniform_real_distribution<float> A(-range, range), B(-2, 2), Bi(-1, 1);
  const double beta = 0.8f;
  Checker ck;
  for (int i = 0; i < 4096; ++i) {
    // Element 1 has a NaN input, as in the GPU self-test.
    const double av = i == 1 ? NAN : rnd(A(r), f), bv = rnd(B(r), f), cv = rnd(B(r), f);
    const double bav = rnd(Bi(r), f), bbv = rnd(Bi(r), f);
    if (op == 0) {
      const float v = act_f((float)av + (float)bav, act, (float)beta) * ((float)bv + (float)bbv);
      ck.add(rnd(v, f), ref_act(av + bav, act, beta) * (bv + bbv),
             elt_act_allow(av, bav, bv + bbv, std::fabs(bv) + std::fabs(bbv), act, beta, f.u, f.tiny));
    } else {
      const float v0 = (float)cv * (float)bv * grad_f((float)av, act, (float)beta);
      const float v1 = (float)cv * act_f((float)av, act, (float)beta);
      double a0, a1;
      elt_bwd_allow(av, bv, cv, act, beta, f.u, f.tiny, &a0, &a1);
      ck.add(rnd(v0, f), cv * bv * ref_act_grad(av, act, beta), a0);
      ck.add(rnd(v1, f), cv * ref_act(av, act, beta), a1);
    }
  }
  if (worst) *worst = std::fmax(*worst, ck.worst_ratio);
  return ck.pass(f.norm);
}

int main() {
  const Fmt* fmts[] = {&kBF16, &kF16, &kF32};
  struct S { int64_t m, n, k; };
  const S shapes[] = {{8, 8, 8}, {16, 16, 40}, {8, 8, 1000}, {4, 8, 4096}};
  unsigned seed = 1;
  for (const Fmt* f : fmts) {
    double worst = 0;
    for (int act = 0; act < 7; ++act)
      for (auto s : shapes)
        EXPECT(fused_case(*f, s.m, s.n, s.k, act, NONE, &worst, seed++),
               "correct fused %s act %d K=%lld rejected", f->name, act, (long long)s.k);
    std::printf("fused %-4s correct emulation: worst err/bound %.3g\n", f->name, worst);
    for (int act = 0; act < 7; ++act) {
      EXPECT(!fused_case(*f, 16, 16, 40, act, SWAP_ELEM, nullptr, seed++), "%s swap accepted", f->name);
      EXPECT(!fused_case(*f, 16, 16, 40, act, DROP_BIAS, nullptr, seed++), "%s no-bias accepted act %d", f->name, act);
      EXPECT(!fused_case(*f, 8, 8, 4096, act, DROP_KTAIL, nullptr, seed++), "%s k-tail drop accepted act %d", f->name, act);
      EXPECT(!fused_case(*f, 16, 16, 40, act, NAN_ELEM, nullptr, seed++), "%s NaN accepted", f->name);
    }
    double w2 = 0;
    for (int op : {0, 3})
      for (int act = 0; act < 7; ++act)
        for (float range : {4.0f, 12.0f})
          EXPECT(elt_case(*f, op, act, range, &w2, seed++), "correct elt %s op %d act %d range %g rejected",
                 f->name, op, act, range);
    std::printf("elt   %-4s correct emulation: worst err/bound %.3g\n", f->name, w2);
  }
  // tf32: every activation, shapes with thousands of outputs, so that some
  // gates land within their error of 0 (the first H200 run of the tf32
  // kernel failed ReLU there: the bound took act'(g) = 0 for a computed
  // gate on the other side of the kink). A dropped k-tail is still caught.
  g_tf32 = true;
  {
    double worst = 0;
    const S tshapes[] = {{256, 128, 64}, {128, 128, 332}, {32, 32, 1000}};
    for (int act = 0; act < 7; ++act)
      for (auto s : tshapes)
        EXPECT(fused_case(kF32, s.m, s.n, s.k, act, NONE, &worst, seed++),
               "correct tf32 act %d K=%lld rejected", act, (long long)s.k);
    std::printf("fused tf32 correct emulation: worst err/bound %.3g\n", worst);
    for (int act = 0; act < 7; ++act)
      EXPECT(!fused_case(kF32, 8, 8, 4096, act, DROP_KTAIL, nullptr, seed++), "tf32 k-tail drop accepted act %d", act);
  }
  g_tf32 = false;
  // The old cancelling GELU forms must be rejected in f32 (the H200 run's
  // 19 "failures" were exactly this).
  g_old_gelu = true;
  for (int act : {GLU_ACT_GELU_ERF, GLU_ACT_GELU_TANH})
    EXPECT(!elt_case(kF32, 0, act, 12.0f, nullptr, 99), "old GELU form act %d accepted in f32", act);
  g_old_gelu = false;
  if (failures) {
    std::printf("selftest_ref_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("selftest_ref_test: OK (correct emulations pass, mutations fail)\n");
  return 0;
}
