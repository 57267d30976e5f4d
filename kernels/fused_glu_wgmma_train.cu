// Training variants of the Hopper fused kernel (sm_90a): the same tile loop
// as fused_glu_wgmma.cu (TMA + wgmma, warp-specialised, persistent; see the
// top of that file for the tiling and assumptions) with the epilogues of
// glu_params.cuh:
//   GLU_EPI_OUT_PRE  forward for SaveMode::PreActivations: out, plus the
//                    biased pre-activations g | u into aux [M, 2N] (rounded
//                    to T), in one pass instead of two GEMMs + act_and_mul;
//   GLU_EPI_DGU      backward for SaveMode::Recompute: recomputes g and u
//                    and writes dGate | dUp into aux [M, 2N] from d_out,
//                    replacing two GEMMs + glu_bwd; the [M, 2N] gate
//                    gradient then feeds the dX and dW GEMMs.
// Kernels: fused_glu_wgmma_{pre,dgu}_{nk,kn}_{bf16,f16}(tmap_x, tmap_wg,
//          tmap_wu, GluParams p, GluTrainParams tp): pre = GLU_EPI_OUT_PRE,
//          dgu = GLU_EPI_DGU (tp.epi must match; it is informational);
//          fused_glu_wgmma_prestaged_{nk,kn}_{bf16,f16}(tmap_x, tmap_wg,
//          tmap_wu, tmap_out, tmap_aux, GluParams p): GLU_EPI_OUT_PRE_TMA,
//          the staged form of `pre` (below);
//          fused_glu_wgmma_dgustaged_{nk,kn}_{bf16,f16}(tmap_x, tmap_wg,
//          tmap_wu, tmap_aux, GluParams p, GluTrainParams tp):
//          GLU_EPI_DGU_TMA, the staged form of `dgu` (below).
// Extra assumptions (checked by the Rust side): aux and d_out 4-byte
// aligned, tp.ld_aux even and >= 2N; d_out is [M, N] row-major.
#include "glu_wgmma_body.cuh"

// One kernel per epilogue: with both epilogues' 14 bodies behind one
// switch, ptxas spilled (80 B) where each alone needs no local memory.
#define GLU_WGMMA_TRAIN_KERNEL(NAME, T, LAYOUT, EPI)                                              \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                                     \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, GluParams p, GluTrainParams tp) {          \
    fused_glu_wgmma_dispatch<T, LAYOUT, EPI>(&tmap_x, &tmap_wg, &tmap_wu, nullptr, nullptr, p, tp);                  \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_pre_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, GLU_EPI_OUT_PRE)
GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_pre_nk_f16, __half, GLU_LAYOUT_NK, GLU_EPI_OUT_PRE)
GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_pre_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, GLU_EPI_OUT_PRE)
GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_pre_kn_f16, __half, GLU_LAYOUT_KN, GLU_EPI_OUT_PRE)
GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_dgu_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, GLU_EPI_DGU)
GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_dgu_nk_f16, __half, GLU_LAYOUT_NK, GLU_EPI_DGU)
GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_dgu_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, GLU_EPI_DGU)
GLU_WGMMA_TRAIN_KERNEL(fused_glu_wgmma_dgu_kn_f16, __half, GLU_LAYOUT_KN, GLU_EPI_DGU)

// Staged variant of the pre-activation epilogue (GLU_EPI_OUT_PRE_TMA): out,
// g and u pass one after another through each consumer's shared-memory tile
// and leave with TMA stores (see fused_glu_wgmma_staged.cu). tmap_out: out
// {N, M}, box {64, 64}; tmap_aux: the pre-activations [M, 2N] viewed as
// {N, 2, M} (strides 2N and 4N bytes), box {64, 1, 64}; both 128B swizzle.
#define GLU_WGMMA_PRESTAGED_KERNEL(NAME, T, LAYOUT)                                                \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                                      \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, const __grid_constant__ CUtensorMap tmap_out, \
           const __grid_constant__ CUtensorMap tmap_aux, GluParams p) {                             \
    const GluTrainParams none{};                                                                    \
    fused_glu_wgmma_dispatch<T, LAYOUT, GLU_EPI_OUT_PRE_TMA>(&tmap_x, &tmap_wg, &tmap_wu, &tmap_out, \
                                                             &tmap_aux, p, none);                   \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_PRESTAGED_KERNEL(fused_glu_wgmma_prestaged_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_WGMMA_PRESTAGED_KERNEL(fused_glu_wgmma_prestaged_nk_f16, __half, GLU_LAYOUT_NK)
GLU_WGMMA_PRESTAGED_KERNEL(fused_glu_wgmma_prestaged_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_WGMMA_PRESTAGED_KERNEL(fused_glu_wgmma_prestaged_kn_f16, __half, GLU_LAYOUT_KN)

// Staged variant of the gradient epilogue (GLU_EPI_DGU_TMA): d_out (16-byte
// aligned) comes into each consumer's shared-memory tile with coalesced
// 16-byte loads, dGate replaces it there and leaves with a TMA store, then
// dUp; tmap_aux: the gradient buffer [M, 2N] viewed as {N, 2, M}, box
// {64, 1, 64}, 128B swizzle (as for prestaged).
#define GLU_WGMMA_DGUSTAGED_KERNEL(NAME, T, LAYOUT)                                                \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                                      \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, const __grid_constant__ CUtensorMap tmap_aux, \
           GluParams p, GluTrainParams tp) {                                                       \
    fused_glu_wgmma_dispatch<T, LAYOUT, GLU_EPI_DGU_TMA>(&tmap_x, &tmap_wg, &tmap_wu, nullptr,    \
                                                         &tmap_aux, p, tp);                         \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_DGUSTAGED_KERNEL(fused_glu_wgmma_dgustaged_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_WGMMA_DGUSTAGED_KERNEL(fused_glu_wgmma_dgustaged_nk_f16, __half, GLU_LAYOUT_NK)
GLU_WGMMA_DGUSTAGED_KERNEL(fused_glu_wgmma_dgustaged_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_WGMMA_DGUSTAGED_KERNEL(fused_glu_wgmma_dgustaged_kn_f16, __half, GLU_LAYOUT_KN)

// dX of the backward (GLU_EPI_DX / GLU_EPI_DX_F32, glu_params.cuh): the tile
// loop over two K segments, (tmap_x, tmap_wg, tmap_wu) then (tmap_x2,
// tmap_wg2, tmap_wu2), one accumulator tile, written as aux[r, c] (gate
// half) and aux[r, p.n + c] (up half): dX = dGate·Wgᵀ + dUp·Wuᵀ in one pass,
// rounded once (dx32: stored as f32). p.n is half of the model's K, p.k the
// model's N; the activation is not used (identity). tp.aux = dX, tp.ld_aux
// = its row length (2 p.n); the Rust side builds the maps
// (src/cuda/hopper.rs, launch_wgmma_dx).
#define GLU_WGMMA_DX_KERNEL(NAME, T, LAYOUT, EPI)                                                 \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                                     \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, const __grid_constant__ CUtensorMap tmap_x2, \
           const __grid_constant__ CUtensorMap tmap_wg2, const __grid_constant__ CUtensorMap tmap_wu2, \
           GluParams p, GluTrainParams tp) {                                                       \
    fused_glu_wgmma_body<T, LAYOUT, GLU_ACT_IDENTITY, EPI>(&tmap_x, &tmap_wg, &tmap_wu, nullptr,  \
                                                           nullptr, p, tp, &tmap_x2, &tmap_wg2,   \
                                                           &tmap_wu2);                            \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, GLU_EPI_DX)
GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx_nk_f16, __half, GLU_LAYOUT_NK, GLU_EPI_DX)
GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, GLU_EPI_DX)
GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx_kn_f16, __half, GLU_LAYOUT_KN, GLU_EPI_DX)
GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx32_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK, GLU_EPI_DX_F32)
GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx32_nk_f16, __half, GLU_LAYOUT_NK, GLU_EPI_DX_F32)
GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx32_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN, GLU_EPI_DX_F32)
GLU_WGMMA_DX_KERNEL(fused_glu_wgmma_dx32_kn_f16, __half, GLU_LAYOUT_KN, GLU_EPI_DX_F32)

// Weight gradients of the backward (GLU_EPI_DW / GLU_EPI_DW_F32,
// glu_params.cuh): C = Aᵀ·B over the batch rows, A read M-major from tmap_x
// ([batch, rows of C] row-major), the two 128-column halves of a tile from
// tmap_wg and tmap_wu (KN form: [batch, columns]); the tile goes to the
// destinations of `go` (two row segments x two halves), stored or added.
// The Rust side (src/cuda/hopper.rs, launch_wgmma_dw) uses it as
//   NK weights: rows = [dG | dU]ᵀ (2N), halves = x[:, :K/2], x[:, K/2:],
//               segment 0 -> dWg, segment 1 -> dWu (row split N);
//   KN weights: rows = xᵀ (K), halves = dG, dU -> dWg, dWu.
#define GLU_WGMMA_DW_KERNEL(NAME, T, EPI)                                                          \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                                     \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, GluParams p,                \
           const __grid_constant__ GluGemmOut go) {              \
    const GluTrainParams none{};                                                                   \
    fused_glu_wgmma_body<T, GLU_LAYOUT_KN, GLU_ACT_IDENTITY, EPI>(                                 \
        &tmap_x, &tmap_wg, &tmap_wu, nullptr, nullptr, p, none, nullptr, nullptr, nullptr, &go);   \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_DW_KERNEL(fused_glu_wgmma_dw_bf16, __nv_bfloat16, GLU_EPI_DW)
GLU_WGMMA_DW_KERNEL(fused_glu_wgmma_dw_f16, __half, GLU_EPI_DW)
GLU_WGMMA_DW_KERNEL(fused_glu_wgmma_dw32_bf16, __nv_bfloat16, GLU_EPI_DW_F32)
GLU_WGMMA_DW_KERNEL(fused_glu_wgmma_dw32_f16, __half, GLU_EPI_DW_F32)
