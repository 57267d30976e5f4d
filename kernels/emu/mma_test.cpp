// The portable tensor-core kernel fused_glu_mma_* (kernels/fused_glu_mma.cu)
// run by the host emulator (kernels/emu/cuda_emu.h) against the double
// reference: bf16, f16 and tf32, both weight layouts, every activation,
// biases on and off, tails of every tile size (BM = BN = 128, BK = 32, the
// k16 / k8 steps, the 16-byte chunks), several row tiles for the grouped
// tile order, under three emulator schedules.
//   g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -I kernels/emu/include -I kernels/emu
//       -I kernels kernels/emu/mma_test.cpp -o /tmp/emu_mma && /tmp/emu_mma
#include "cuda_emu.h"

#include "fused_glu_mma.cu"
#include "tests/mma_variants.cuh"

#include "emu_harness.h"

using namespace emut;
typedef void (*GluKernel)(GluParams);

template <typename T>
static void run_case(const char* kname, GluKernel kern, int layout, int64_t M, int64_t N,
                     int64_t K, int act, bool bias, int round, double in_rel = 0.0,
                     double norm_tol = -1.0, int threads = GLU_MMA_THREADS,
                     uint32_t smem = GLU_MMA_SMEM_BYTES) {
  FusedCase<T> c(M, N, K, layout, act, bias);
  const std::string label = fmt("%s M=%" PRId64 " N=%" PRId64 " K=%" PRId64 " act=%d bias=%d %s",
                                kname, M, N, K, act, (int)bias, round_name(round));
  set_round(round, (uint64_t)(M * 131 + N * 7 + K + round));
  emu::launch(label, dim3((unsigned)((N + GLU_MMA_BN - 1) / GLU_MMA_BN),
                          (unsigned)((M + GLU_MMA_BM - 1) / GLU_MMA_BM)),
              dim3(threads), smem, [&] { kern(c.p); });
  c.check(label, in_rel, norm_tol);
}

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  struct Shape {
    int64_t m, n, k;
  };
  // 16-bit: K, N multiples of 8. Tails of BM/BN (128), BK (32), k16, n8.
  const Shape shapes[] = {{1, 8, 8},      {7, 24, 40},    {129, 136, 72}, {128, 128, 32},
                          {130, 264, 264}, {33, 8, 520},  {257, 120, 96}, {1100, 16, 16}};
  int i = 0;
  for (const Shape& s : shapes) {
    if (quick && i > 3) break;
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK}) {
      // Over the 8 shapes every kernel (layout, dtype) gets all 7 activations
      // (the quick cases all 7 between them).
      const int act = (int)((i + 3 * layout) % 7);
      const bool bias = (i + layout) % 2 == 0;
      const int round = (i + layout) % 3;
      if (layout == GLU_LAYOUT_KN) {
        run_case<__nv_bfloat16>("fused_glu_mma_kn_bf16", fused_glu_mma_kn_bf16, layout, s.m, s.n,
                                s.k, act, bias, round);
        run_case<__half>("fused_glu_mma_kn_f16", fused_glu_mma_kn_f16, layout, s.m, s.n, s.k,
                         (act + 1) % 7, !bias, (round + 1) % 3);
      } else {
        run_case<__nv_bfloat16>("fused_glu_mma_nk_bf16", fused_glu_mma_nk_bf16, layout, s.m, s.n,
                                s.k, act, bias, round);
        run_case<__half>("fused_glu_mma_nk_f16", fused_glu_mma_nk_f16, layout, s.m, s.n, s.k,
                         (act + 1) % 7, !bias, (round + 1) % 3);
      }
    }
    ++i;
  }
  // tf32: K, N multiples of 4; the per-product input error 2^-9 (+ margin).
  const double tf32_rel = 1.05 / 512.0;
  const Shape tf32_shapes[] = {{1, 4, 4}, {127, 124, 12}, {129, 132, 20}, {130, 68, 36}};
  i = 0;
  for (const Shape& s : tf32_shapes) {
    if (quick && i > 1) break;
    for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK})
      run_case<float>(layout ? "fused_glu_mma_nk_tf32" : "fused_glu_mma_kn_tf32",
                      layout ? fused_glu_mma_nk_tf32 : fused_glu_mma_kn_tf32, layout, s.m, s.n,
                      s.k, (int)((i * 3 + layout) % 7), (i + layout) % 2 == 1, (i + layout) % 3,
                      tf32_rel, 1e-2);
    ++i;
  }
  // The probe variants (kernels/tests/mma_variants.cuh): 8 warps, 8 stages,
  // the mbarrier loops. K = 520 and 264: more k-tiles than 8 stages, ring
  // wrap-around with a k tail; K = 40 / 8: fewer k-tiles than the prologue.
  const Shape vshapes[] = {{7, 24, 40}, {130, 264, 264}, {33, 8, 520}, {257, 136, 8}};
  i = 0;
  for (const MmaVariant& v : kMmaVariants) {
    for (const Shape& s : vshapes) {
      if (quick && i % 2) { ++i; continue; }
      for (int layout : {GLU_LAYOUT_KN, GLU_LAYOUT_NK})
        run_case<__nv_bfloat16>(fmt("%s_%s_bf16", v.name, layout ? "nk" : "kn").c_str(),
                                v.kern[layout], layout, s.m, s.n, s.k,
                                (int)((s.m + s.k + layout + i) % 7), (i + layout) % 2 == 0,
                                (i + layout) % 3, 0.0, -1.0, v.threads, v.smem);
      ++i;
    }
  }
  return finish("emu mma_test");
}
