// The exact-f32 fused kernel fused_glu_simt_* (kernels/fused_glu_simt.cu)
// and the elementwise kernels of kernels/act_and_mul.cu, run by the host
// emulator (kernels/emu/cuda_emu.h) against double references:
//   * fused_glu_simt: f32/f16/bf16, both layouts, any M, N, K (odd sizes,
//     tails of its 64 x 64 tile and 16-deep k-block), pointers off the
//     16-byte grid;
//   * act_and_mul, act_inplace, mul_bias (the baselines), glu_bwd, act_bwd
//     (the eager baseline's activation backward: out0 = b * act'(a)) and
//     narrow (f32 -> f16/bf16, one rounding, bit-exact): every activation,
//     the 16-byte vector path and the scalar path (odd n, a row stride that
//     breaks the vectors, a pointer off the 16-byte grid), grids smaller
//     than the work (grid-stride loop).
// Outputs are poisoned, with a front canary and a guard page after them.
//   g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -I kernels/emu/include -I kernels/emu
//       -I kernels kernels/emu/simt_elt_test.cpp -o /tmp/emu_se && /tmp/emu_se
#include "cuda_emu.h"

#include "act_and_mul.cu"
#include "fused_glu_simt.cu"

#include "emu_harness.h"

using namespace emut;
typedef void (*EltK)(GluEltParams);

static unsigned grid_for(int64_t work, int variant) {
  const int64_t full = (work + GLU_ELT_THREADS - 1) / GLU_ELT_THREADS;
  return (unsigned)std::max<int64_t>(1, variant == 0 ? full : std::min<int64_t>(full, 3));
}

// ---- fused_glu_simt ------------------------------------------------------------------------
typedef void (*GluK)(GluParams);
template <typename T>
static void run_simt(GluK k, const char* name, int layout, int64_t M, int64_t N, int64_t K,
                     int act, bool bias, int round) {
  const int off = (int)((M + N + K) % 2);  // a pointer off the 16-byte grid
  FusedCase<T> c(M, N, K, layout, act, bias, off);
  const std::string label = fmt("%s M=%lld N=%lld K=%lld act=%d bias=%d off=%d %s", name,
                                (long long)M, (long long)N, (long long)K, act, (int)bias, off,
                                round_name(round));
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round));
  emu::launch(label, dim3((unsigned)((N + GLU_SIMT_BN - 1) / GLU_SIMT_BN),
                          (unsigned)((M + GLU_SIMT_BM - 1) / GLU_SIMT_BM)),
              dim3(GLU_SIMT_THREADS), 0, [&] { k(c.p); });
  c.check(label);
}

// ---- act_and_mul, act_inplace, mul_bias (ops 0, 1, 2) ------------------------------------------
template <typename T>
static void run_fwd_elt(int op, EltK k, const char* name, int64_t rows, int64_t n, bool vec,
                        bool bias, int act, int round) {
  const int64_t ld = vec ? 2 * n : 2 * n + 1;  // a, b: the halves of one [rows, 2n] buffer
  auto ab = rand_vec<T>(rows * ld + 8, -3, 3);
  auto ba = rand_vec<T>(n + 8, -0.5, 0.5), bb = rand_vec<T>(n + 8, -0.5, 0.5);
  Dev<T> dab(ab), dba(ba), dbb(bb);
  Out<T> o(rows * n);
  GluEltParams p{};
  p.a = dab.p;
  p.b = dab.p + n;
  p.bias_a = bias ? dba.p : nullptr;
  p.bias_b = bias ? dbb.p : nullptr;
  p.out0 = o.p;
  p.rows = rows;
  p.n = n;
  p.ld_a = p.ld_b = ld;
  p.ld_out0 = n;
  p.act = act;
  p.beta = 1.7f;
  const std::string label = fmt("%s rows=%lld n=%lld ld=%lld bias=%d %s act=%d %s", name,
                                (long long)rows, (long long)n, (long long)ld, (int)bias,
                                vec ? "vector" : "scalar", act, round_name(round));
  set_round(round, (uint64_t)(rows * 7 + n + act + round + op));
  emu::launch(label, dim3(grid_for(rows * n, round)), dim3(GLU_ELT_THREADS), 0, [&] { k(p); });
  Checker ck;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const double a = DT<T>::to(ab[r * ld + j]), b = DT<T>::to(ab[r * ld + n + j]);
      const double bav = bias ? DT<T>::to(ba[j]) : 0, bbv = bias ? DT<T>::to(bb[j]) : 0;
      double ref, allow;
      if (op == 0) {
        ref = ref_act(a + bav, act, 1.7f) * (b + bbv);
        allow = elt_act_allow(a, bav, b + bbv, std::fabs(b) + std::fabs(bbv), act, 1.7f, DT<T>::u,
                              DT<T>::tiny);
      } else if (op == 1) {
        ref = ref_act(a + bav, act, 1.7f);
        allow = elt_act_allow(a, bav, 1.0, 0.0, act, 1.7f, DT<T>::u, DT<T>::tiny);
      } else {
        ref = a * (b + bbv);
        allow = elt_mul_allow(a, b, bbv, DT<T>::u, DT<T>::tiny);
      }
      ck.add(DT<T>::to(o.p[r * n + j]), ref, allow);
    }
  const bool ok = ck.pass(DT<T>::norm_tol) && o.canary_intact();
  std::printf("%s %s: bad %d, worst err/bound %.3g\n", ok ? "ok  " : "FAIL", label.c_str(), ck.bad,
              ck.worst_ratio);
  g_tally.add(ok);
}

// op 0: act_bwd, 1: glu_bwd. `vec`: 16-byte friendly shape and pointers.
template <typename T>
static void run_bwd(int op, EltK k, const char* name, int64_t rows, int64_t n, bool vec, int act,
                    int round) {
  const int64_t ld = vec ? n : n + 1;  // ld + 1 breaks the vector path
  auto a = rand_vec<T>(rows * ld + 8, -4, 4), b = rand_vec<T>(rows * ld + 8, -1, 1),
       c = rand_vec<T>(rows * ld + 8, -1, 1);
  Dev<T> da(a), db(b), dc(c);
  Out<T> o0(rows * ld), o1(rows * ld);
  const int off = vec ? 0 : 1;  // a pointer off the 16-byte grid
  GluEltParams p{};
  p.a = da.p + off;
  p.b = db.p;
  p.c = dc.p;
  p.out0 = o0.p;
  p.out1 = op == 1 ? o1.p : nullptr;
  p.rows = rows;
  p.n = n;
  p.ld_a = p.ld_b = p.ld_c = p.ld_out0 = p.ld_out1 = ld;
  p.act = act;
  p.beta = 1.7f;
  const std::string label = fmt("%s rows=%lld n=%lld ld=%lld %s act=%d %s", name, (long long)rows,
                                (long long)n, (long long)ld, vec ? "vector" : "scalar", act,
                                round_name(round));
  set_round(round, (uint64_t)(rows * 7 + n + act + round));
  emu::launch(label, dim3(grid_for(rows * n, round)), dim3(GLU_ELT_THREADS), 0, [&] { k(p); });
  Checker ck0, ck1;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const double g = DT<T>::to(a[r * ld + j + off]), bv = DT<T>::to(b[r * ld + j]),
                   cv = DT<T>::to(c[r * ld + j]);
      double a0, a1, sc;
      if (op == 0) {  // out0 = b * act'(a)
        const double ref = bv * ref_act_grad(g, act, 1.7f, &sc);
        const double allow = 2 * DT<T>::u * std::fabs(ref) +
                             act_eval_slack(g, 1.7f) * std::fabs(bv) * sc + DT<T>::tiny;
        ck0.add(DT<T>::to(o0.p[r * ld + j]), ref, allow);
      } else {  // dGate = c * b * act'(a), dUp = c * act(a)
        elt_bwd_allow(g, bv, cv, act, 1.7f, DT<T>::u, DT<T>::tiny, &a0, &a1);
        ck0.add(DT<T>::to(o0.p[r * ld + j]), cv * bv * ref_act_grad(g, act, 1.7f), a0);
        ck1.add(DT<T>::to(o1.p[r * ld + j]), cv * ref_act(g, act, 1.7f), a1);
      }
    }
  bool ok = ck0.pass(DT<T>::norm_tol) && o0.canary_intact();
  if (op == 1) ok = ok && ck1.pass(DT<T>::norm_tol) && o1.canary_intact();
  std::printf("%s %s: bad %d/%d, worst err/bound %.3g\n", ok ? "ok  " : "FAIL", label.c_str(),
              ck0.bad, ck1.bad, std::max(ck0.worst_ratio, ck1.worst_ratio));
  g_tally.add(ok);
}

template <typename T>
static void run_narrow(EltK k, const char* name, int64_t rows, int64_t n, int round) {
  std::vector<float> a((size_t)(rows * n));
  std::uniform_real_distribution<double> d(-3, 3);
  for (auto& v : a) v = (float)d(rng()) * (float)std::ldexp(1.0, (int)(rng()() % 40) - 20);
  a[0] = std::nanf("");
  if (a.size() > 1) a[1] = 65504.0f * 1.001f;  // f16 overflow -> inf
  Dev<float> da(a);
  Out<T> o(rows * n);
  GluEltParams p{};
  p.a = da.p;
  p.out0 = o.p;
  p.rows = rows;
  p.n = n;
  p.ld_a = p.ld_out0 = n;
  const std::string label =
      fmt("%s rows=%lld n=%lld %s", name, (long long)rows, (long long)n, round_name(round));
  set_round(round, (uint64_t)(rows + n + round));
  emu::launch(label, dim3(grid_for(rows * n, round)), dim3(GLU_ELT_THREADS), 0, [&] { k(p); });
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const T want = DT<T>::from(a[i]);
    const bool nan_ok = std::isnan(a[i]) && std::isnan(DT<T>::to(o.p[i]));
    if (!nan_ok && memcmp(&want, &o.p[i], sizeof(T)) != 0) ++bad;
  }
  const bool ok = bad == 0 && o.canary_intact();
  std::printf("%s %s: %d of %zu not the round-to-nearest-even value\n", ok ? "ok  " : "FAIL",
              label.c_str(), bad, a.size());
  g_tally.add(ok);
}

int main() {
  int i = 0;
  for (int act = 0; act < 7; ++act) {
    const bool vec = act % 2 == 0;
    const int round = act % 3;
    run_bwd<float>(0, act_bwd_f32, "act_bwd_f32", 5, vec ? 64 : 37, vec, act, round);
    run_bwd<__half>(0, act_bwd_f16, "act_bwd_f16", 3, vec ? 136 : 129, vec, act, (round + 1) % 3);
    run_bwd<__nv_bfloat16>(0, act_bwd_bf16, "act_bwd_bf16", 7, vec ? 72 : 7, vec, act,
                           (round + 2) % 3);
    run_bwd<__nv_bfloat16>(1, glu_bwd_bf16, "glu_bwd_bf16", 4, vec ? 264 : 131, !vec, act, round);
    ++i;
  }
  struct Shape {
    int64_t m, n, k;
  };
  const Shape simt[] = {{1, 1, 1}, {7, 13, 29}, {65, 66, 17}, {130, 3, 100}, {64, 64, 16}};
  i = 0;
  for (const Shape& s : simt) {
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
      const int act = (int)((s.m + s.n + s.k + layout + i) % 7);
      const bool bias = (i + layout) % 2 == 0;
      // The 16-bit kernel's biases: not !bias, which with the dtype chosen
      // by the same parity ran f16 always with biases, bf16 always without;
      // each (layout, dtype) gets both over its 2-3 shapes.
      const bool bias16 = (i / 2 + layout) % 2 == 1;
      const int r = (i + layout) % 3;
      const bool kn = layout == GLU_LAYOUT_KN;
      run_simt<float>(kn ? fused_glu_simt_kn_f32 : fused_glu_simt_nk_f32,
                      kn ? "fused_glu_simt_kn_f32" : "fused_glu_simt_nk_f32", layout, s.m, s.n,
                      s.k, act, bias, r);
      if ((i + layout) % 2)
        run_simt<__half>(kn ? fused_glu_simt_kn_f16 : fused_glu_simt_nk_f16,
                         kn ? "fused_glu_simt_kn_f16" : "fused_glu_simt_nk_f16", layout, s.m, s.n,
                         s.k, (act + 1) % 7, bias16, (r + 1) % 3);
      else
        run_simt<__nv_bfloat16>(kn ? fused_glu_simt_kn_bf16 : fused_glu_simt_nk_bf16,
                                kn ? "fused_glu_simt_kn_bf16" : "fused_glu_simt_nk_bf16", layout,
                                s.m, s.n, s.k, (act + 1) % 7, bias16, (r + 1) % 3);
    }
    ++i;
  }
  for (int act = 0; act < 7; ++act) {
    const bool vec = act % 2 == 1;
    run_fwd_elt<__nv_bfloat16>(0, act_and_mul_bf16, "act_and_mul_bf16", 3, vec ? 64 : 33, vec,
                               act % 3 != 0, act, act % 3);
    run_fwd_elt<float>(1, act_inplace_f32, "act_inplace_f32", 2, vec ? 40 : 9, vec, act % 2 == 0,
                       act, (act + 1) % 3);
  }
  run_fwd_elt<__half>(2, mul_bias_f16, "mul_bias_f16", 5, 48, true, true, 0, 0);
  run_fwd_elt<__half>(2, mul_bias_f16, "mul_bias_f16", 5, 21, false, true, 0, 1);
  run_narrow<__half>(narrow_f16, "narrow_f16", 3, 1000, 0);
  run_narrow<__half>(narrow_f16, "narrow_f16", 1, 7, 1);
  run_narrow<__nv_bfloat16>(narrow_bf16, "narrow_bf16", 5, 333, 2);
  run_narrow<__nv_bfloat16>(narrow_bf16, "narrow_bf16", 1, 1, 0);
  return finish("emu simt_elt_test");
}
