// Shared pieces of the emulator's kernel tests (kernels/emu/*_test.cpp):
// dtype traits, random inputs, device buffers with a poisoned front canary,
// the fused reference with selftest_ref.h's error model, and a tally.
// Include after cuda_emu.h and the kernel source under test.
#pragma once
#include <cinttypes>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/selftest_ref.h"

namespace emut {

template <typename T> struct DT;
template <> struct DT<__nv_bfloat16> {
  static constexpr const char* name = "bf16";
  static constexpr double u = 1.0 / 256.0, tiny = 1e-30, norm_tol = 1e-2;
  static float to(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
};
template <> struct DT<__half> {
  static constexpr const char* name = "f16";
  static constexpr double u = 1.0 / 2048.0, tiny = 5.960464477539063e-8, norm_tol = 2e-3;
  static float to(__half v) { return __half2float(v); }
  static __half from(float v) { return __float2half_rn(v); }
};
template <> struct DT<float> {
  static constexpr const char* name = "f32";
  static constexpr double u = 1.0 / 16777216.0, tiny = 1e-30, norm_tol = 1e-5;
  static float to(float v) { return v; }
  static float from(float v) { return v; }
};

// EMU_SEED (environment, default 0) changes the inputs and every launch's
// schedule seed: a loop over seeds explores more interleavings.
inline uint64_t seed_offset() {
  static const uint64_t s = getenv("EMU_SEED") ? strtoull(getenv("EMU_SEED"), nullptr, 10) : 0;
  return s;
}
inline std::mt19937_64& rng() {
  static std::mt19937_64 r(20261130 + seed_offset() * 7919);
  return r;
}
template <typename T>
std::vector<T> rand_vec(int64_t n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v((size_t)n);
  for (auto& e : v) e = DT<T>::from((float)d(rng()));
  return v;
}

// A device copy of a host vector (emu::Buffer: ends at a no-access page).
template <typename T>
struct Dev {
  emu::Buffer buf;
  T* p = nullptr;
  explicit Dev(const std::vector<T>& h) : buf(h.size() * sizeof(T)) {
    p = buf.as<T>();
    memcpy(p, h.data(), h.size() * sizeof(T));
  }
};

// An output of n elements poisoned with 0xFF (NaN in every dtype), after
// a 16-byte-aligned front canary of `front` elements that must stay poisoned.
template <typename T>
struct Out {
  static constexpr int64_t front = 64;
  emu::Buffer buf;
  T* p = nullptr;
  int64_t n;
  explicit Out(int64_t n_) : buf((size_t)(n_ + front) * sizeof(T)), n(n_) {
    memset(buf.as<char>(), 0xff, buf.bytes());
    p = buf.as<T>() + front;
  }
  bool canary_intact() const {
    const unsigned char* c = buf.as<unsigned char>();
    for (size_t i = 0; i < (size_t)front * sizeof(T); ++i)
      if (c[i] != 0xff) return false;
    return true;
  }
};

struct Tally {
  int checks = 0, fails = 0;
  void add(bool ok) {
    ++checks;
    fails += !ok;
  }
};
inline Tally g_tally;

// Checks out ([M, N], row stride N) against the double reference of the
// fused forward. Prints one line; returns pass.
template <typename T>
bool check_fused(const std::string& label, const T* x, const T* wg, const T* wu, const T* bg,
                 const T* bu, const Out<T>& out,
                 int64_t M, int64_t N, int64_t K, int layout, int act, double beta,
                 double in_rel = 0.0, double norm_tol = -1.0) {
  Checker ck;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double g = bg ? DT<T>::to(bg[n]) : 0, u = bu ? DT<T>::to(bu[n]) : 0;
      double ga = std::fabs(g), ua = std::fabs(u);
      for (int64_t k = 0; k < K; ++k) {
        const double xv = DT<T>::to(x[(size_t)(m * K + k)]);
        const int64_t wi = layout == GLU_LAYOUT_KN ? k * N + n : n * K + k;
        const double pg = xv * DT<T>::to(wg[(size_t)wi]), pu = xv * DT<T>::to(wu[(size_t)wi]);
        g += pg;
        u += pu;
        ga += std::fabs(pg);
        ua += std::fabs(pu);
      }
      const double ref = ref_act(g, act, beta) * u;
      const double allow = fused_allow(g, u, ga, ua, K, act, beta, DT<T>::u, DT<T>::tiny, in_rel);
      const double v = DT<T>::to(out.p[m * N + n]);
      if (!ck.add(v, ref, allow) && ck.bad <= 3)
        std::printf("    %s: m=%" PRId64 " n=%" PRId64 " got %.9g ref %.9g allow %.3g\n",
                    label.c_str(), m, n, v, ref, allow);
    }
  const bool canary = out.canary_intact();
  const bool ok = ck.pass(norm_tol < 0 ? DT<T>::norm_tol : norm_tol) && canary;
  std::printf("%s %s: bad %d, worst err/bound %.3g, normwise %.3g%s\n", ok ? "ok  " : "FAIL",
              label.c_str(), ck.bad, ck.worst_ratio, ck.normwise(),
              canary ? "" : ", WRITE BEFORE THE OUTPUT");
  g_tally.add(ok);
  return ok;
}

// One fused forward problem: random x, Wg, Wu (uniform in [-1, 1]) and
// biases (in [-0.5, 0.5]) on the device, a poisoned output, and the
// GluParams of a launch on them (beta 1.7). `off` shifts x and w_gate by
// that many elements (off the 16-byte grid, for the any-alignment kernel).
template <typename T>
struct FusedCase {
  int64_t M, N, K;
  int layout, act, off;
  bool bias;
  std::vector<T> x, wg, wu, bg, bu;
  Dev<T> dx, dwg, dwu, dbg, dbu;
  Out<T> out;
  GluParams p{};
  FusedCase(int64_t m, int64_t n, int64_t k, int layout_, int act_, bool bias_, int off_ = 0)
      : M(m), N(n), K(k), layout(layout_), act(act_), off(off_), bias(bias_),
        x(rand_vec<T>(m * k + off_, -1, 1)), wg(rand_vec<T>(n * k + off_, -1, 1)),
        wu(rand_vec<T>(n * k, -1, 1)), bg(rand_vec<T>(n, -0.5, 0.5)),
        bu(rand_vec<T>(n, -0.5, 0.5)), dx(x), dwg(wg), dwu(wu), dbg(bg), dbu(bu), out(m * n) {
    p.x = dx.p + off;
    p.w_gate = dwg.p + off;
    p.w_up = dwu.p;
    p.b_gate = bias ? dbg.p : nullptr;
    p.b_up = bias ? dbu.p : nullptr;
    p.out = out.p;
    p.m = M;
    p.n = N;
    p.k = K;
    p.layout = layout;
    p.act = act;
    p.beta = 1.7f;
  }
  // Checks `o` (default: this case's output) against the double reference.
  bool check(const std::string& label, double in_rel = 0.0, double norm_tol = -1.0,
             const Out<T>* o = nullptr) const {
    return check_fused<T>(label, x.data() + off, wg.data() + off, wu.data(),
                          bias ? bg.data() : nullptr, bias ? bu.data() : nullptr, o ? *o : out, M,
                          N, K, layout, act, 1.7f, in_rel, norm_tol);
  }
};

inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
  char b[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(b, sizeof b, f, ap);
  va_end(ap);
  return b;
}

// Emulator settings by round (emu::apply_round), the seed moved by EMU_SEED.
inline void set_round(int r, uint64_t seed) { emu::apply_round(r, seed + seed_offset() * 1000003); }
inline const char* round_name(int r) {
  return r == 0 ? "rr/late" : r == 1 ? "rand/early/skew" : "rand/late/mma-early/skew";
}

// The activation sweeps: f(act, layout, f16, bias, round) for every
// activation, weight layout and 16-bit dtype. Each kernel (layout, dtype)
// gets biases on and off across the activations and each activation both
// across the kernels; the emulator's rounds rotate.
template <typename F>
inline void for_each_act_layout_dtype(F f) {
  for (int act = 0; act < 7; ++act)
    for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN})
      for (int f16 = 0; f16 < 2; ++f16)
        f(act, layout, f16 == 1, (act + layout + f16) % 2 == 0, (act + 2 * layout + f16) % 3);
}

inline int finish(const char* what) {
  const emu::Stats& s = emu::g_stats;
  std::printf("%s: emulated %llu launches, %llu blocks, %llu barriers, %llu warp ldmatrix.x4, "
              "%llu warp mma, %llu cp.async (%llu zero-fill), %llu TMA loads, %llu TMA stores, "
              "%llu warpgroup wgmma\n",
              what, (unsigned long long)s.launches, (unsigned long long)s.blocks,
              (unsigned long long)s.barriers, (unsigned long long)s.ldmatrix,
              (unsigned long long)s.mma, (unsigned long long)s.cp_async,
              (unsigned long long)s.zero_fill, (unsigned long long)s.tma_loads,
              (unsigned long long)s.tma_stores, (unsigned long long)s.wgmma);
  std::printf("%s: %d checks, %d failed\n", what, g_tally.checks, g_tally.fails);
  return g_tally.fails ? 1 : 0;
}

}  // namespace emut
