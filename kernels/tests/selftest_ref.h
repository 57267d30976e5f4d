// Host-side reference and error model of kernels/tests/gpu_selftest.cu, kept
// in plain C++ so kernels/tests/selftest_ref_test.cpp can check the model
// itself on the host (a correct f32-emulated kernel passes, a wrong one fails):
//   g++ -std=c++17 -O2 -I kernels kernels/tests/selftest_ref_test.cpp -o /tmp/srt && /tmp/srt
#pragma once
#include <cmath>
#include <cstdint>
#include "glu_params.cuh"

// ---- host reference (double) ------------------------------------------------
static double sigm(double z) { return 1.0 / (1.0 + std::exp(-z)); }
static const double kK0 = 0.79788456080286535588;  // sqrt(2/pi)
static const double kK1 = 0.044715;

static double ref_act(double z, int act, double beta) {
  switch (act) {
    case GLU_ACT_SILU: return z * sigm(z);
    case GLU_ACT_SWISH: return z * sigm(beta * z);
    case GLU_ACT_SIGMOID: return sigm(z);
    case GLU_ACT_GELU_ERF: return 0.5 * z * std::erfc(-z / std::sqrt(2.0));
    case GLU_ACT_GELU_TANH: return z * sigm(2.0 * kK0 * (z + kK1 * z * z * z));
    case GLU_ACT_RELU: return z > 0 ? z : (z != z ? z : 0.0);
    default: return z;
  }
}
// Analytic derivative; *scale (optional) receives the sum of the absolute
// values of the terms of the formula the kernels evaluate (the magnitude
// their f32 rounding errors scale with, e.g. near a root of act').
static double ref_act_grad(double z, int act, double beta, double* scale = nullptr) {
  double d, sc;
  switch (act) {
    case GLU_ACT_SILU: {
      double s = sigm(z);
      d = s * (1.0 + z * (1.0 - s)); sc = s + std::fabs(z) * s * (1.0 - s);
      break;
    }
    case GLU_ACT_SWISH: {
      double s = sigm(beta * z);
      d = s + beta * z * s * (1.0 - s); sc = s + std::fabs(beta * z) * s * (1.0 - s);
      break;
    }
    case GLU_ACT_SIGMOID: {
      double s = sigm(z);
      d = sc = s * (1.0 - s);
      break;
    }
    case GLU_ACT_GELU_ERF: {
      double Phi = 0.5 * std::erfc(-z / std::sqrt(2.0));
      double phi = std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI);
      d = Phi + z * phi; sc = Phi + std::fabs(z) * phi;
      break;
    }
    case GLU_ACT_GELU_TANH: {
      double s = sigm(2.0 * kK0 * (z + kK1 * z * z * z));
      double du = kK0 * (1.0 + 3.0 * kK1 * z * z);
      d = s + 2.0 * z * s * (1.0 - s) * du; sc = s + std::fabs(2.0 * z * s * (1.0 - s) * du);
      break;
    }
    case GLU_ACT_RELU: d = z > 0 ? 1.0 : (z != z ? z : 0.0); sc = 1.0; break;
    default: d = 1.0; sc = 1.0; break;
  }
  if (scale) *scale = sc;
  return d;
}

// Error model (units: unit roundoff u = 2^-p of each format)
//   * the output is rounded once to T: tol_rel(T) = 2 u_T (margin x2);
//   * a dot product accumulated in f32 (tensor core or fmaf) of k terms plus
//     a bias has |err| <= gamma * (sum_k |x_k w_k| + |b|), gamma = (k + 4) u_acc,
//     u_acc = 2^-23 (allows truncating tensor-core adders): the standard
//     worst-case bound, propagated through out = act(g) * u:
//       |act'(g)| * errg * |u| + |act(g)| * erru;
//   * f32 evaluation of act (expf/erfcf/division, argument products like
//     beta*z or z/sqrt2): relative (16 + 4 (1 + beta^2) z^2) u_32;
//   * an absolute floor `tiny` (1e-30; f16: its smallest subnormal 2^-24):
//     f32 intermediates may flush results below ~1e-36 to 0 (e.g. exp
//     overflow in z / (1 + exp(-2u)) near z = -10), which is harmless.
// NaN (or inf) never passes unless the reference is NaN (then got must be NaN).
static const double kU32 = 1.0 / 16777216.0;  // 2^-24
static const double kUAcc = 2.0 * kU32;       // 2^-23
static double act_eval_slack(double z, double beta) {
  return (16.0 + 4.0 * (1.0 + beta * beta) * z * z) * kU32;
}

// Allowance for one fused output out = act(g) * u, g and u dot products of
// k terms (+ bias) accumulated in f32: ga, ua = sum |x_k w_k| (+ |bias|),
// u_t = unit roundoff of the output type, tiny = its smallest subnormal.
// in_rel: relative error of each product from the inputs themselves (0 when
// they are exact in the kernel; 2^-9 for tf32, whose tensor cores keep 10
// mantissa bits of each f32 operand).
static double fused_allow(double g, double u, double ga, double ua, int64_t k, int act,
                          double beta, double u_t, double tiny, double in_rel = 0.0) {
  const double a = ref_act(g, act, beta);
  const double ref = a * u;
  const double gamma = (double)(k + 4) * kUAcc + in_rel;
  // The gate's error eg moves g anywhere in [g - eg, g + eg]; where act has
  // a kink there (ReLU at 0: act' jumps from 0 to 1), act'(g) alone would
  // allow nothing for a computed gate that lands on the other side. Take
  // the largest |act'| at g and at both ends of the interval (first run on
  // an H200, 2026-11-30: tf32's 2^-9 input error put ReLU gates of ~1e-3
  // across 0, "got 4e-4, ref 0").
  const double eg = gamma * ga;
  double da = std::fabs(ref_act_grad(g, act, beta));
  if (std::isfinite(eg) && eg > 0.0)
    da = std::fmax(da, std::fmax(std::fabs(ref_act_grad(g - eg, act, beta)),
                                 std::fabs(ref_act_grad(g + eg, act, beta))));
  return 2.0 * u_t * std::fabs(ref) +
         gamma * (da * ga * std::fabs(u) + std::fabs(a) * ua) +
         act_eval_slack(g, beta) * std::fabs(ref) + tiny;
}

// Elementwise allowances (inputs exact in T, f32 arithmetic, one rounding).
// act_and_mul / act_inplace: ref = act(a + ba) * U, U = b + bb (or 1, Ub = 0).
static double elt_act_allow(double av, double bav, double U, double Ub, int act, double beta,
                            double u_t, double tiny) {
  const double z = av + bav;
  const double A = ref_act(z, act, beta), dA = ref_act_grad(z, act, beta);
  const double r = A * U;
  return 2.0 * u_t * std::fabs(r) +
         4 * kU32 * (std::fabs(dA) * (std::fabs(av) + std::fabs(bav)) * std::fabs(U) + std::fabs(A) * Ub) +
         act_eval_slack(z, beta) * std::fabs(r) + tiny;
}
// mul_bias: ref = a * (b + bb).
static double elt_mul_allow(double av, double bv, double bbv, double u_t, double tiny) {
  const double r = av * (bv + bbv);
  return 2.0 * u_t * std::fabs(r) + 4 * kU32 * std::fabs(av) * (std::fabs(bv) + std::fabs(bbv)) + tiny;
}
// glu_bwd: r0 = d * u * act'(g), r1 = d * act(g).
static void elt_bwd_allow(double g, double uv, double d, int act, double beta, double u_t,
                          double tiny, double* allow0, double* allow1) {
  double sc;
  const double dA = ref_act_grad(g, act, beta, &sc), A = ref_act(g, act, beta);
  // A NaN gate gives NaN references except for the identity's dG = d * u
  // (its derivative is 1 everywhere): its allowance must stay finite.
  const double slack = std::isnan(g) ? 0.0 : act_eval_slack(g, beta);
  const double r0 = d * uv * dA, r1 = d * A;
  *allow0 = 2.0 * u_t * std::fabs(r0) + slack * std::fabs(d * uv) * sc + tiny;
  *allow1 = 2.0 * u_t * std::fabs(r1) + slack * std::fabs(r1) + tiny;
}

// Per-test accumulator: elementwise bound + normwise relative error.
struct Checker {
  int bad = 0;
  double worst_ratio = 0;  // max |got-ref| / allowance
  double err2 = 0, ref2 = 0;
  bool nan_bad = false;
  // Returns true when the element passes.
  bool add(double got, double ref, double allow) {
    if (std::isnan(ref)) {
      if (!std::isnan(got)) { ++bad; return false; }
      return true;
    }
    if (!std::isfinite(got)) { ++bad; nan_bad = true; return false; }
    const double e = std::fabs(got - ref);
    err2 += e * e;
    ref2 += ref * ref;
    if (allow > 0) worst_ratio = std::fmax(worst_ratio, e / allow);
    if (!(e <= allow)) { ++bad; return false; }
    return true;
  }
  double normwise() const { return ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2); }
  bool pass(double norm_tol) const {
    return bad == 0 && (ref2 == 0 ? err2 == 0 : normwise() <= norm_tol);
  }
};

