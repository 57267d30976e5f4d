// The Hopper training kernels (kernels/fused_glu_wgmma_train.cu) run by the
// host emulator (kernels/emu/cuda_emu.h + cuda_emu_hopper.h) against double
// references: the forward that also saves the pre-activations (pre, and its
// staged form prestaged: bit-identical to pre), the backward's first stage
// recomputing g and u (dgu, and dgustaged: bit-identical to dgu), dX =
// dG·Wgᵀ + dU·Wuᵀ in one pass (dx, dx32) and the weight gradients (dw,
// dw32, stored and accumulated), bf16 and f16, both weight layouts, tails of
// every tile edge, persistent grids smaller than the tile count. Maps,
// parameters and grids mirror src/cuda/hopper.rs (launch_wgmma_epi,
// launch_wgmma_dx, launch_wgmma_dw).
//   g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -I kernels/emu/include -I kernels/emu
//       -I kernels kernels/emu/train_test.cpp -o /tmp/emu_train && /tmp/emu_train
#include "cuda_emu.h"

#include "fused_glu_wgmma_train.cu"

#include "emu_harness.h"

using namespace emut;

// encode_map_ld of src/cuda/hopper.rs: [rows, inner] inside rows ld apart.
static CUtensorMap map_ld(const void* p, uint64_t rows, uint64_t inner, uint64_t ld,
                          uint32_t box_rows) {
  CUtensorMap m;
  const uint64_t dims[2] = {inner, rows}, strides[1] = {ld * 2};
  const uint32_t box[2] = {64, box_rows};
  emu::encode_tiled(&m, 2, p, dims, strides, box);
  return m;
}
// encode_pre_map: [M, 2N] as {N, 2, M}, box {64, 1, 64}.
static CUtensorMap map_pre(const void* p, uint64_t m, uint64_t n) {
  CUtensorMap t;
  const uint64_t dims[3] = {n, 2, m}, strides[2] = {n * 2, 2 * n * 2};
  const uint32_t box[3] = {64, 1, 64};
  emu::encode_tiled(&t, 3, p, dims, strides, box);
  return t;
}

template <typename T>
static double dv(const T& v) {
  return (double)DT<T>::to(v);
}

// Elementwise tally of one output array against a reference with an
// allowance per element; prints one line.
struct Cmp {
  Checker ck;
  std::string label;
  template <typename G>
  void add(double got, double ref, double allow, G where) {
    if (!ck.add(got, ref, allow) && ck.bad <= 3) {
      std::printf("    %s: %s got %.9g ref %.9g allow %.3g\n", label.c_str(), where().c_str(), got,
                  ref, allow);
    }
  }
  bool done(double norm_tol) {
    const bool ok = ck.pass(norm_tol);
    std::printf("%s %s: bad %d, worst err/bound %.3g, normwise %.3g\n", ok ? "ok  " : "FAIL",
                label.c_str(), ck.bad, ck.worst_ratio, ck.normwise());
    g_tally.add(ok);
    return ok;
  }
};

static void bit_identity(const std::string& what, const void* a, const void* b, size_t bytes) {
  const bool same = memcmp(a, b, bytes) == 0;
  std::printf("%s %s\n", same ? "ok  " : "FAIL", what.c_str());
  g_tally.add(same);
}

typedef void (*TrainK)(CUtensorMap, CUtensorMap, CUtensorMap, GluParams, GluTrainParams);
typedef void (*PreStagedK)(CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap,
                           GluParams);
typedef void (*DguStagedK)(CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap, GluParams,
                           GluTrainParams);

#define PICK4(prefix, lay, f16)                                                   \
  (lay == GLU_LAYOUT_NK ? (f16 ? prefix##_nk_f16 : prefix##_nk_bf16)           \
                        : (f16 ? prefix##_kn_f16 : prefix##_kn_bf16))

// ---- forward with saved pre-activations, and the gradient stage ---------------------
template <typename T>
static void run_pre_dgu(int layout, int64_t M, int64_t N, int64_t K, int act, bool bias,
                        int round, int64_t sms) {
  const bool f16 = std::is_same<T, __half>::value;
  const char* lay = layout == GLU_LAYOUT_NK ? "nk" : "kn";
  const char* tn = f16 ? "f16" : "bf16";
  FusedCase<T> fc(M, N, K, layout, act, bias);
  const std::vector<T>&x = fc.x, &wg = fc.wg, &wu = fc.wu, &bg = fc.bg, &bu = fc.bu;
  const Dev<T>&dx = fc.dx, &dwg = fc.dwg, &dwu = fc.dwu;
  auto dout = rand_vec<T>(M * N, -1, 1);
  Dev<T> ddo(dout);
  GluParams p = fc.p;
  const CUtensorMap tx = map_ld(dx.p, M, K, K, kWgBM);
  const CUtensorMap tg =
      layout == GLU_LAYOUT_NK ? map_ld(dwg.p, N, K, K, kWgBN) : map_ld(dwg.p, K, N, N, kWgBK);
  const CUtensorMap tu =
      layout == GLU_LAYOUT_NK ? map_ld(dwu.p, N, K, K, kWgBN) : map_ld(dwu.p, K, N, N, kWgBK);
  const unsigned grid = (unsigned)glu_wgmma_grid(M, N, sms);
  const std::string shape = fmt("%s_%s M=%lld N=%lld K=%lld act=%d bias=%d grid=%u %s", lay, tn,
                                (long long)M, (long long)N, (long long)K, act, (int)bias, grid,
                                round_name(round));
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round));

  // Reference g, u (double, bias included) and their |.| sums.
  std::vector<double> G(M * N), U(M * N), GA(M * N), UA(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double g = bias ? dv(bg[n]) : 0, u = bias ? dv(bu[n]) : 0, ga = std::fabs(g), ua = std::fabs(u);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t wi = layout == GLU_LAYOUT_KN ? k * N + n : n * K + k;
        const double pg = dv(x[m * K + k]) * dv(wg[wi]), pu = dv(x[m * K + k]) * dv(wu[wi]);
        g += pg;
        u += pu;
        ga += std::fabs(pg);
        ua += std::fabs(pu);
      }
      G[m * N + n] = g;
      U[m * N + n] = u;
      GA[m * N + n] = ga;
      UA[m * N + n] = ua;
    }
  const double gamma = (double)(K + 4) * kUAcc;

  // pre: out and aux = [g | u] (rounded to T).
  const Out<T>& out = fc.out;
  Out<T> aux(M * 2 * N);
  {
    GluParams q = p;
    GluTrainParams tp{};
    tp.aux = aux.p;
    tp.ld_aux = 2 * N;
    tp.epi = GLU_EPI_OUT_PRE;
    TrainK k = PICK4(fused_glu_wgmma_pre, layout, f16);
    emu::launch("fused_glu_wgmma_pre_" + shape, dim3(grid), dim3(kWgThreads), kWgSmemBytes,
                [&] { k(tx, tg, tu, q, tp); }, true);
    fc.check("fused_glu_wgmma_pre_" + shape + " (out)");
    Cmp c;
    c.label = "fused_glu_wgmma_pre_" + shape + " (aux = g | u)";
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n)
        for (int h = 0; h < 2; ++h) {
          const double ref = h ? U[m * N + n] : G[m * N + n];
          const double allow = 2 * DT<T>::u * std::fabs(ref) + gamma * (h ? UA : GA)[m * N + n] + DT<T>::tiny;
          c.add(dv(aux.p[m * 2 * N + h * N + n]), ref, allow,
                [&] { return fmt("m=%lld n=%lld half %d", (long long)m, (long long)n, h); });
        }
    c.done(DT<T>::norm_tol);
    if (!aux.canary_intact()) {
      std::printf("FAIL %s: write before aux\n", c.label.c_str());
      g_tally.add(false);
    }
  }
  // prestaged: the same through shared memory and TMA stores, bit for bit.
  {
    Out<T> out2(M * N), aux2(M * 2 * N);
    GluParams q = p;
    q.out = out2.p;
    const CUtensorMap to = map_ld(out2.p, M, N, N, 64), ta = map_pre(aux2.p, M, N);
    PreStagedK k = PICK4(fused_glu_wgmma_prestaged, layout, f16);
    emu::launch("fused_glu_wgmma_prestaged_" + shape, dim3(grid), dim3(kWgThreads),
                kWgSmemBytesStaged, [&] { k(tx, tg, tu, to, ta, q); }, true);
    bit_identity("fused_glu_wgmma_prestaged_" + shape + ": out bit-identical to pre", out.p,
                 out2.p, (size_t)(M * N) * sizeof(T));
    bit_identity("fused_glu_wgmma_prestaged_" + shape + ": aux bit-identical to pre", aux.p,
                 aux2.p, (size_t)(M * 2 * N) * sizeof(T));
  }
  // dgu: aux = [dGate | dUp] from d_out, g and u recomputed in f32.
  Out<T> dgu(M * 2 * N);
  {
    GluParams q = p;
    GluTrainParams tp{};
    tp.d_out = ddo.p;
    tp.aux = dgu.p;
    tp.ld_aux = 2 * N;
    tp.epi = GLU_EPI_DGU;
    TrainK k = PICK4(fused_glu_wgmma_dgu, layout, f16);
    emu::launch("fused_glu_wgmma_dgu_" + shape, dim3(grid), dim3(kWgThreads), kWgSmemBytes,
                [&] { k(tx, tg, tu, q, tp); }, true);
    Cmp c;
    c.label = "fused_glu_wgmma_dgu_" + shape;
    const double beta = 1.7f;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const double g = G[m * N + n], u = U[m * N + n], d = dv(dout[m * N + n]);
        const double eg = gamma * GA[m * N + n], eu = gamma * UA[m * N + n];
        const double a = ref_act(g, act, beta), da = ref_act_grad(g, act, beta);
        const double hstep = 1e-4 * (1.0 + std::fabs(g));
        // |act''| over [g - eg, g + eg], by differences (ReLU: its jump).
        const double dda = std::fabs(ref_act_grad(g + hstep, act, beta) -
                                     ref_act_grad(g - hstep, act, beta)) / (2 * hstep);
        double a0, a1;
        elt_bwd_allow(g, u, d, act, beta, DT<T>::u, DT<T>::tiny, &a0, &a1);
        // Propagated accumulation error of g and u.
        const double r0 = d * u * da, r1 = d * a;
        double p0 = std::fabs(d) * (std::fabs(da) * eu + std::fabs(u) * dda * eg);
        const double p1 = std::fabs(d) * std::fabs(da) * eg;
        if (act == GLU_ACT_RELU && std::fabs(g) <= eg) p0 = std::fabs(d * u) + 1;  // the jump
        c.add(dv(dgu.p[m * 2 * N + n]), r0, a0 + 2 * p0,
              [&] { return fmt("dGate m=%lld n=%lld", (long long)m, (long long)n); });
        c.add(dv(dgu.p[m * 2 * N + N + n]), r1, a1 + 2 * p1,
              [&] { return fmt("dUp m=%lld n=%lld", (long long)m, (long long)n); });
      }
    c.done(DT<T>::norm_tol);
  }
  // dgustaged: d_out through shared memory, TMA stores; bit for bit.
  {
    Out<T> dgu2(M * 2 * N);
    GluParams q = p;
    GluTrainParams tp{};
    tp.d_out = ddo.p;
    tp.aux = dgu2.p;
    tp.ld_aux = 2 * N;
    tp.epi = GLU_EPI_DGU_TMA;
    const CUtensorMap ta = map_pre(dgu2.p, M, N);
    DguStagedK k = PICK4(fused_glu_wgmma_dgustaged, layout, f16);
    emu::launch("fused_glu_wgmma_dgustaged_" + shape, dim3(grid), dim3(kWgThreads),
                kWgSmemBytesStaged, [&] { k(tx, tg, tu, ta, q, tp); }, true);
    bit_identity("fused_glu_wgmma_dgustaged_" + shape + ": bit-identical to dgu", dgu.p, dgu2.p,
                 (size_t)(M * 2 * N) * sizeof(T));
  }
}

// ---- dX = dG·Wgᵀ + dU·Wuᵀ ------------------------------------------------------------------
typedef void (*DxK)(CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap,
                    GluParams, GluTrainParams);

template <typename T, typename O>
static void run_dx(int layout, int64_t M, int64_t N, int64_t K, int round, int64_t sms) {
  const bool f16 = std::is_same<T, __half>::value, f32 = std::is_same<O, float>::value;
  auto dgu = rand_vec<T>(M * 2 * N, -1, 1);
  auto wg = rand_vec<T>(N * K, -1, 1), wu = rand_vec<T>(N * K, -1, 1);
  Dev<T> ddgu(dgu), dwg(wg), dwu(wu);
  Out<O> out(M * K);
  const int64_t h = K / 2;
  const CUtensorMap x1 = map_ld(ddgu.p, M, N, 2 * N, kWgBM), x2 = map_ld(ddgu.p + N, M, N, 2 * N, kWgBM);
  auto halves = [&](const T* w, CUtensorMap* a, CUtensorMap* b) {
    if (layout == GLU_LAYOUT_NK) {  // kernel's KN form
      *a = map_ld(w, N, h, K, kWgBK);
      *b = map_ld(w + h, N, h, K, kWgBK);
    } else {  // kernel's NK form
      *a = map_ld(w, h, N, N, kWgBN);
      *b = map_ld(w + h * N, h, N, N, kWgBN);
    }
  };
  CUtensorMap g1, u1, g2, u2;
  halves(dwg.p, &g1, &u1);
  halves(dwu.p, &g2, &u2);
  const int klay = layout == GLU_LAYOUT_NK ? GLU_LAYOUT_KN : GLU_LAYOUT_NK;
  GluParams p{};
  p.x = ddgu.p;
  p.m = M;
  p.n = h;
  p.k = N;
  p.layout = klay;
  p.act = GLU_ACT_IDENTITY;
  GluTrainParams tp{};
  tp.aux = out.p;
  tp.ld_aux = K;
  tp.epi = f32 ? GLU_EPI_DX_F32 : GLU_EPI_DX;
  DxK k = f32 ? PICK4(fused_glu_wgmma_dx32, klay, f16) : PICK4(fused_glu_wgmma_dx, klay, f16);
  const unsigned grid = (unsigned)glu_wgmma_grid(M, h, sms);
  const std::string label = fmt("fused_glu_wgmma_%s_%s_%s (weights %s) M=%lld N=%lld K=%lld grid=%u %s",
                                f32 ? "dx32" : "dx", klay == GLU_LAYOUT_NK ? "nk" : "kn",
                                f16 ? "f16" : "bf16", layout == GLU_LAYOUT_NK ? "NK" : "KN",
                                (long long)M, (long long)N, (long long)K, grid, round_name(round));
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round + 5));
  emu::launch(label, dim3(grid), dim3(kWgThreads), kWgSmemBytes,
              [&] { k(x1, g1, u1, x2, g2, u2, p, tp); }, true);
  Cmp c;
  c.label = label;
  const double u_o = f32 ? DT<float>::u : DT<T>::u, gamma = (double)(2 * N + 4) * kUAcc;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < K; ++j) {
      double s = 0, a = 0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t wi = layout == GLU_LAYOUT_NK ? n * K + j : j * N + n;
        const double t0 = dv(dgu[m * 2 * N + n]) * dv(wg[wi]);
        const double t1 = dv(dgu[m * 2 * N + N + n]) * dv(wu[wi]);
        s += t0 + t1;
        a += std::fabs(t0) + std::fabs(t1);
      }
      c.add((double)DT<O>::to(out.p[m * K + j]), s, 2 * u_o * std::fabs(s) + gamma * a + 1e-30,
            [&] { return fmt("m=%lld j=%lld", (long long)m, (long long)j); });
    }
  c.done(f32 ? 1e-5 : DT<T>::norm_tol);
}

// ---- dWg, dWu ------------------------------------------------------------------------------
typedef void (*DwK)(CUtensorMap, CUtensorMap, CUtensorMap, GluParams, GluGemmOut);

template <typename T, typename O>
static void run_dw(int layout, int64_t M, int64_t N, int64_t K, bool accumulate, int round,
                   int64_t sms) {
  const bool f16 = std::is_same<T, __half>::value, f32 = std::is_same<O, float>::value;
  auto x = rand_vec<T>(M * K, -1, 1);
  auto dgu = rand_vec<T>(M * 2 * N, -1, 1);
  auto old_g = rand_vec<O>(N * K, -1, 1), old_u = rand_vec<O>(N * K, -1, 1);
  Dev<T> dx(x), ddgu(dgu);
  Out<O> dwg(N * K), dwu(N * K);
  if (accumulate) {
    memcpy(dwg.p, old_g.data(), old_g.size() * sizeof(O));
    memcpy(dwu.p, old_u.data(), old_u.size() * sizeof(O));
  }
  const int64_t h = K / 2;
  CUtensorMap a, bg, bu;
  int64_t rows, half, ld, split;
  void* ptr[4];
  if (layout == GLU_LAYOUT_NK) {
    a = map_ld(ddgu.p, M, 2 * N, 2 * N, kWgBK);
    bg = map_ld(dx.p, M, h, K, kWgBK);
    bu = map_ld(dx.p + h, M, h, K, kWgBK);
    rows = 2 * N;
    half = h;
    ptr[0] = dwg.p;
    ptr[1] = dwg.p + h;
    ptr[2] = dwu.p;
    ptr[3] = dwu.p + h;
    ld = K;
    split = N;
  } else {
    a = map_ld(dx.p, M, K, K, kWgBK);
    bg = map_ld(ddgu.p, M, N, 2 * N, kWgBK);
    bu = map_ld(ddgu.p + N, M, N, 2 * N, kWgBK);
    rows = K;
    half = N;
    ptr[0] = dwg.p;
    ptr[1] = dwu.p;
    ptr[2] = ptr[3] = nullptr;
    ld = N;
    split = K;
  }
  GluParams p{};
  p.x = ddgu.p;
  p.m = rows;
  p.n = half;
  p.k = M;
  p.layout = GLU_LAYOUT_KN;
  p.act = GLU_ACT_IDENTITY;
  GluGemmOut go{};
  for (int i = 0; i < 4; ++i) go.ptr[i] = ptr[i];
  go.ld = ld;
  go.split = split;
  go.accumulate = accumulate;
  DwK k = f32 ? (f16 ? fused_glu_wgmma_dw32_f16 : fused_glu_wgmma_dw32_bf16)
              : (f16 ? fused_glu_wgmma_dw_f16 : fused_glu_wgmma_dw_bf16);
  const unsigned grid = (unsigned)glu_wgmma_grid(rows, half, sms);
  const std::string label =
      fmt("fused_glu_wgmma_%s_%s (weights %s) M=%lld N=%lld K=%lld acc=%d grid=%u %s",
          f32 ? "dw32" : "dw", f16 ? "f16" : "bf16", layout == GLU_LAYOUT_NK ? "NK" : "KN",
          (long long)M, (long long)N, (long long)K, (int)accumulate, grid, round_name(round));
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round + 9));
  emu::launch(label, dim3(grid), dim3(kWgThreads), kWgSmemBytes, [&] { k(a, bg, bu, p, go); },
              true);
  Cmp c;
  c.label = label;
  const double u_o = f32 ? DT<float>::u : DT<T>::u, gamma = (double)(M + 4) * kUAcc;
  for (int which = 0; which < 2; ++which)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < K; ++j) {
        double s = 0, sa = 0;
        for (int64_t m = 0; m < M; ++m) {
          const double t = dv(dgu[m * 2 * N + which * N + n]) * dv(x[m * K + j]);
          s += t;
          sa += std::fabs(t);
        }
        const int64_t idx = layout == GLU_LAYOUT_NK ? n * K + j : j * N + n;
        const std::vector<O>& old = which ? old_u : old_g;
        double base = accumulate ? (double)DT<O>::to(old[idx]) : 0.0;
        const double ref = s + base;
        const double allow = 2 * u_o * std::fabs(ref) + gamma * (sa + std::fabs(base)) + 1e-30;
        const O* got = which ? dwu.p : dwg.p;
        c.add((double)DT<O>::to(got[idx]), ref, allow, [&] {
          return fmt("%s n=%lld k=%lld", which ? "dWu" : "dWg", (long long)n, (long long)j);
        });
      }
  c.done(f32 ? 1e-5 : DT<T>::norm_tol);
  if (!dwg.canary_intact() || !dwu.canary_intact()) {
    std::printf("FAIL %s: write before a gradient\n", label.c_str());
    g_tally.add(false);
  }
}

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  struct Shape {
    int64_t m, n, k, sms;
  };
  const Shape fwd[] = {{1, 8, 8, 4}, {130, 136, 264, 3}, {257, 264, 72, 5}};
  int i = 0;
  for (const Shape& s : fwd) {
    if (quick && i > 1) break;
    for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN}) {
      const int act = (int)((s.m + s.n + s.k / 8 + layout + i) % 7);
      // Not the dtype's parity (i + layout) % 2 (bf16 always without
      // biases, f16 always with): each dtype gets both, in quick mode too,
      // and so does each kernel (layout, dtype) that runs twice.
      const bool bias = (i / 2 + layout) % 2 == 0;
      if ((i + layout) % 2)
        run_pre_dgu<__nv_bfloat16>(layout, s.m, s.n, s.k, act, bias, (i + layout) % 3, s.sms);
      else
        run_pre_dgu<__half>(layout, s.m, s.n, s.k, act, bias, (i + layout) % 3, s.sms);
    }
    ++i;
  }
  // Every activation through the four activation-bearing kernels (pre,
  // prestaged, dgu, dgustaged) in every layout and dtype, on a small shape
  // with M, N and K tails: the shapes above give each two or three of the
  // seven. Not in quick mode, which the mutants run.
  if (!quick)
    for_each_act_layout_dtype([](int act, int layout, bool f16, bool bias, int round) {
      if (f16)
        run_pre_dgu<__half>(layout, 33, 24, 72, act, bias, round, 2);
      else
        run_pre_dgu<__nv_bfloat16>(layout, 33, 24, 72, act, bias, round, 2);
    });
  // dX: K (the model's) a multiple of 16; its halves are the tile's columns.
  const Shape dxs[] = {{33, 64, 80, 4}, {300, 208, 272, 3}, {1, 8, 16, 2}};
  i = 0;
  for (const Shape& s : dxs) {
    if (quick && i > 1) break;
    for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN}) {
      const int r = (i + layout) % 3;
      if ((i + layout) % 2) {
        run_dx<__nv_bfloat16, __nv_bfloat16>(layout, s.m, s.n, s.k, r, s.sms);
        run_dx<__half, float>(layout, s.m, s.n, s.k, (r + 1) % 3, s.sms);
      } else {
        run_dx<__half, __half>(layout, s.m, s.n, s.k, r, s.sms);
        run_dx<__nv_bfloat16, float>(layout, s.m, s.n, s.k, (r + 1) % 3, s.sms);
      }
    }
    ++i;
  }
  // dW: NK needs K % 16 (two column halves), KN K % 8.
  const Shape dws[] = {{33, 64, 80, 4}, {200, 136, 144, 3}, {7, 8, 16, 2}};
  i = 0;
  for (const Shape& s : dws) {
    if (quick && i > 1) break;
    for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN}) {
      const int r = (i + layout) % 3;
      const bool acc = (i + layout) % 2 == 1;
      if ((i + layout) % 2) {
        run_dw<__nv_bfloat16, __nv_bfloat16>(layout, s.m, s.n, s.k, acc, r, s.sms);
        run_dw<__half, float>(layout, s.m, s.n, s.k, !acc, (r + 1) % 3, s.sms);
      } else {
        run_dw<__half, __half>(layout, s.m, s.n, s.k, acc, r, s.sms);
        run_dw<__nv_bfloat16, float>(layout, s.m, s.n, s.k, !acc, (r + 1) % 3, s.sms);
      }
    }
    ++i;
  }
  return finish("emu train_test");
}
