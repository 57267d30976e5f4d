// Variants of the portable kernel's body (fused_glu_mma.cu) that exist only
// to be checked and timed against the production kernels: gpu_selftest.cu
// checks each on the tile-edge shapes before mma_perf_probe.cuh times it,
// and the host emulator runs them (kernels/emu/mma_test.cpp). Included after
// fused_glu_mma.cu, whose anonymous-namespace body they instantiate. Not in
// the crate's fatbins. kernels/NOTES-mma.md says what each one tests.
//   P5 fused_glu_mma8w_*   8 warps (2 x 4 warps of 64 x 32, 128 accumulators,
//                          fragment double buffer), 4 stages: the production
//                          kernel until session 16 (297 against 375 TFLOP/s).
//   P6 fused_glu_mma_s8_*  16 warps, 8 stages (192 KiB; sm_90 only: 7 k-tiles
//                          in flight instead of 3), one __syncthreads per k-tile.
//   P7 fused_glu_mma_mb_*  16 warps, 4 stages, no __syncthreads in the main
//                          loop: per-stage full / empty mbarriers, the refill
//                          3 k-tiles ahead (LAG 1).
//   P7 fused_glu_mma_mb8_* the same on 8 stages, refill 6 ahead, warps up to
//                          2 k-tiles apart (LAG 2; 192 KiB, sm_90 only).
//   P8 fused_glu_mma8w_mb_* P5's 8 warps (fragment double buffer) on the
//                          mbarrier ring, 4 stages, LAG 1: the 8-warp tile
//                          moves 2/3 of the 16-warp one's shared-memory
//                          bytes per MAC; what held it back (P2 615 against
//                          P5 297) is what this loop removes, if the
//                          coupling of loads and math is the cause.
#pragma once

#define GLU_MMA8W_THREADS 256
static_assert(WarpGrid<2>::kThreads == GLU_MMA8W_THREADS, "P5 launch size");

#define GLU_MMA_VARIANT(NAME, T, LAYOUT, THREADS, WM, S, MBAR)                            \
  extern "C" __global__ void __launch_bounds__(THREADS, 1) NAME(GluParams p) {           \
    fused_glu_mma_body<T, LAYOUT, WM, S, MBAR>(p);                                       \
  }
GLU_MMA_VARIANT(fused_glu_mma8w_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, 256, 2, 4, false)
GLU_MMA_VARIANT(fused_glu_mma8w_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, 256, 2, 4, false)
GLU_MMA_VARIANT(fused_glu_mma_s8_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, 512, 4, 8, false)
GLU_MMA_VARIANT(fused_glu_mma_s8_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, 512, 4, 8, false)
GLU_MMA_VARIANT(fused_glu_mma_mb_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, 512, 4, 4, true)
GLU_MMA_VARIANT(fused_glu_mma_mb_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, 512, 4, 4, true)
GLU_MMA_VARIANT(fused_glu_mma_mb8_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, 512, 4, 8, true)
GLU_MMA_VARIANT(fused_glu_mma_mb8_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, 512, 4, 8, true)
GLU_MMA_VARIANT(fused_glu_mma8w_mb_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, 256, 2, 4, true)
GLU_MMA_VARIANT(fused_glu_mma8w_mb_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, 256, 2, 4, true)

// One variant: its kernels per layout (KN, NK), launch size and shared memory.
struct MmaVariant {
  const char* probe;  // "P7": the perf line that times it
  const char* name;   // "fused_glu_mma_mb" -> fused_glu_mma_mb_{kn,nk}_bf16
  void (*kern[2])(GluParams);
  int threads;
  uint32_t smem;
};
static const MmaVariant kMmaVariants[] = {
    {"P5", "fused_glu_mma8w", {fused_glu_mma8w_kn_bf16, fused_glu_mma8w_nk_bf16}, 256,
     glu_mma_smem_bytes(4, false)},
    {"P6", "fused_glu_mma_s8", {fused_glu_mma_s8_kn_bf16, fused_glu_mma_s8_nk_bf16}, 512,
     glu_mma_smem_bytes(8, false)},
    {"P7", "fused_glu_mma_mb", {fused_glu_mma_mb_kn_bf16, fused_glu_mma_mb_nk_bf16}, 512,
     glu_mma_smem_bytes(4, true)},
    {"P7", "fused_glu_mma_mb8", {fused_glu_mma_mb8_kn_bf16, fused_glu_mma_mb8_nk_bf16}, 512,
     glu_mma_smem_bytes(8, true)},
    {"P8", "fused_glu_mma8w_mb", {fused_glu_mma8w_mb_kn_bf16, fused_glu_mma8w_mb_nk_bf16}, 256,
     glu_mma_smem_bytes(4, true)},
};
