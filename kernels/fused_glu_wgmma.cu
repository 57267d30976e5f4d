// Fused gated feed-forward for Hopper (sm_90a): TMA + wgmma, warp-specialised.
// out[m,n] = act(x[m,:]*Wg[:,n] + bg[n]) * (x[m,:]*Wu[:,n] + bu[n])
//
// Kernels: fused_glu_wgmma_{nk,kn}_{bf16,f16}(tmap_x, tmap_wg, tmap_wu, GluParams p)
//   nk: w[n*K + k] (nn.Linear / checkpoint layout; a concatenated gate_up
//       [2N,K] tensor is two tensor maps, no copy); B is K-major.
//   kn: w[k*N + n]; B is N-major (wgmma transpose bit, see
//       glu_wgmma_desc_mn_sw128); the same tiling otherwise.
//
// Tiling (constants in glu_hopper_layout.cuh, mirrored by src/cuda/hopper.rs)
//   CTA tile     128 rows x 128 output columns, k-step 64
//   grid         persistent: glu_wgmma_grid() CTAs (<= one per SM), CTA b
//                takes tiles b, b + gridDim.x, ... in grouped order
//                (glu_tile_of: 16 m tiles per group)
//   B tile       128 gate rows then 128 up rows of the NK weights = the n256
//                operand of one wgmma m64n256k16 per k16 and consumer
//   threads      384 = 3 warpgroups:
//                  WG0  producer: setmaxnreg.dec 40, one thread issues TMA
//                  WG1  consumer rows 0..63,  setmaxnreg.inc 232
//                  WG2  consumer rows 64..127
//                each consumer holds 128 f32 accumulators: gate column c in
//                acc[i], up column c in acc[i + 64] (see glu_wgmma_acc_rc)
//   pipeline     kWgStages = 4 stages x 48 KiB, full[]/empty[] mbarriers;
//                consumers keep one wgmma group in flight and release the
//                previous stage when it retires
//   smem         x box [128][64] + Wg box [128][64] + Wu box [128][64], all
//                CU_TENSOR_MAP_SWIZZLE_128B, 1024-aligned (kWgSmemBytes,
//                dynamic; the launcher raises the limit)
//   epilogue     registers: + biases, act(gate)*up in f32, one rounding,
//                4-byte predicated stores; the activation is a template
//                parameter (one kernel body per activation, chosen once)
// Assumptions (checked by the Rust side): cc 9.0; K % 8 == 0 and N % 8 == 0
//   (TMA global strides are multiples of 16 B); x, w_gate, w_up, out 16-byte
//   aligned; biases 2-byte aligned, read as scalars. M, N, K tails: TMA
//   zero-fills out-of-range box elements (zero k contributes nothing, zero
//   rows/columns are never stored); stores are predicated. Tensor maps
//   (inner dimension first; 16-bit, swizzle 128B, OOB zero fill): x {K, M}
//   box {64, 128}; nk: Wg, Wu {K, N} box {64, 128}; kn: Wg, Wu {N, K} box
//   {64, 64}.
#include "glu_wgmma_body.cuh"

#define GLU_WGMMA_KERNEL(NAME, T, LAYOUT)                                                          \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                              \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, GluParams p) {                      \
    const GluTrainParams none{};                                                                   \
    fused_glu_wgmma_dispatch<T, LAYOUT, GLU_EPI_OUT>(&tmap_x, &tmap_wg, &tmap_wu, nullptr, nullptr, p, none);        \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_KERNEL(fused_glu_wgmma_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_WGMMA_KERNEL(fused_glu_wgmma_nk_f16, __half, GLU_LAYOUT_NK)
GLU_WGMMA_KERNEL(fused_glu_wgmma_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_WGMMA_KERNEL(fused_glu_wgmma_kn_f16, __half, GLU_LAYOUT_KN)

// Tail split (Path::FusedWgmmaTailSplit): the same kernel on the
// glu_split_unit schedule; the last partial wave's tiles are cut along K
// into ts.parts parts, the last part of each adds the others' f32 partial
// sums (from ts.ws, in part order) before its epilogue. Grid: up to
// ts.width CTAs; ts.flags zero on entry, left zero.
#define GLU_WGMMA_SPLIT_KERNEL(NAME, T, LAYOUT)                                                    \
  extern "C" __global__ void __launch_bounds__(kWgThreads, 1)                                      \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, GluParams p, GluTailSplit ts) {             \
    const GluTrainParams none{};                                                                   \
    fused_glu_wgmma_dispatch<T, LAYOUT, GLU_EPI_OUT, true>(&tmap_x, &tmap_wg, &tmap_wu, nullptr,  \
                                                           nullptr, p, none, &ts);                 \
  } \
  GLU_EMU_KERNEL(NAME, true, 1)

GLU_WGMMA_SPLIT_KERNEL(fused_glu_wgmma_split_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_WGMMA_SPLIT_KERNEL(fused_glu_wgmma_split_nk_f16, __half, GLU_LAYOUT_NK)
GLU_WGMMA_SPLIT_KERNEL(fused_glu_wgmma_split_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_WGMMA_SPLIT_KERNEL(fused_glu_wgmma_split_kn_f16, __half, GLU_LAYOUT_KN)

// Cluster schedule (Path::FusedWgmmaCluster): clusters of two CTAs take the
// m tiles 2i, 2i + 1 of one column tile together and multicast the weight
// stage, each CTA loading one half (fused_glu_wgmma_body, CLUSTER). The
// cluster shape is compiled in, so a plain launch works; the grid must be
// even (the launcher: 2 x min(pair units, resident clusters) CTAs,
// src/cuda/hopper.rs wgmma_cluster_grid).
// sm_80 / compute_80 passes (no clusters there): the same entry points
// without the attribute; their body traps (GLU_HOPPER is 0) and the launcher
// never selects them below compute capability 9.0.
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 900)
#define GLU_CLUSTER_DIMS_2
#else
#define GLU_CLUSTER_DIMS_2 __cluster_dims__(2, 1, 1)
#endif
#define GLU_WGMMA_CLUSTER_KERNEL(NAME, T, LAYOUT)                                                  \
  extern "C" __global__ void GLU_CLUSTER_DIMS_2 __launch_bounds__(kWgThreads, 1)                   \
      NAME(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_wg, \
           const __grid_constant__ CUtensorMap tmap_wu, GluParams p) {                              \
    const GluTrainParams none{};                                                                   \
    fused_glu_wgmma_dispatch<T, LAYOUT, GLU_EPI_OUT, false, true>(&tmap_x, &tmap_wg, &tmap_wu,     \
                                                                  nullptr, nullptr, p, none);      \
  } \
  GLU_EMU_KERNEL(NAME, true, 2)

GLU_WGMMA_CLUSTER_KERNEL(fused_glu_wgmma_cluster_nk_bf16, __nv_bfloat16, GLU_LAYOUT_NK)
GLU_WGMMA_CLUSTER_KERNEL(fused_glu_wgmma_cluster_nk_f16, __half, GLU_LAYOUT_NK)
GLU_WGMMA_CLUSTER_KERNEL(fused_glu_wgmma_cluster_kn_bf16, __nv_bfloat16, GLU_LAYOUT_KN)
GLU_WGMMA_CLUSTER_KERNEL(fused_glu_wgmma_cluster_kn_f16, __half, GLU_LAYOUT_KN)
