// The Hopper fused kernel (sm_90a) with a staged epilogue: the tile loop of
// fused_glu_wgmma.cu (see the top of that file for the tiling, pipeline and
// assumptions), but each consumer warpgroup writes its 64 x 128 output tile
// to shared memory in the TMA 128B-swizzle layout (two 64 x 64 boxes,
// conflict-free 4-byte writes: the 8 rows of a fragment store land in 8
// different 16-byte chunks), then one thread stores it with
// cp.async.bulk.tensor, which clips rows >= M and columns >= N. The store
// runs while the consumers start the next tile's main loop; before the
// buffer is rewritten the storing thread waits for the bulk group's reads.
// Shared memory: kWgSmemBytesStaged (ring, 2 x 16 KiB staging, barriers).
//
// Kernels: fused_glu_wgmma_staged_{nk,kn}_{bf16,f16}(tmap_x, tmap_wg,
//          tmap_wu, tmap_out, GluParams p); tmap_out: out {N, M}, box
//          {64, 64}, 128B swizzle (p.out is not read).
#include "glu_wgmma_body.cuh"

#define GLU_WGMMA_STAGED_KERNEL(NAME, T, LAYOUT)                                                  \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                                     \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, const __grid_constant__ CUtensorMap tmap_out, \
           GluParams p) {                                                                          \
    const GluTrainParams none{};                                                                   \
    fused_glu_wgmma_dispatch<T, LAYOUT, GLU_EPI_OUT_TMA>(&tmap_x, &tmap_wg, &tmap_wu, &tmap_out, nullptr, p, none); \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_STAGED_KERNEL(fused_glu_wgmma_staged_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_WGMMA_STAGED_KERNEL(fused_glu_wgmma_staged_nk_f16, __half, GLU_LAYOUT_NK)
GLU_WGMMA_STAGED_KERNEL(fused_glu_wgmma_staged_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_WGMMA_STAGED_KERNEL(fused_glu_wgmma_staged_kn_f16, __half, GLU_LAYOUT_KN)
