// Parameter blocks shared by every swiglu kernel and mirrored, field for
// field, by `src/cuda/params.rs`. Both sides assert the same offsets and
// sizes (static_assert here, `const` asserts there), so a change to one
// side that is not made on the other fails the build.
//
// Conventions
//   * Matrices are row-major. x is [M,K], out is [M,N].
//   * Weights: layout KN -> w[k*N + n]   ([K,N] row-major)
//              layout NK -> w[n*K + k]   ([N,K] row-major, nn.Linear / checkpoints)
//     A concatenated gate_up [2N,K] tensor is passed as w_gate = base,
//     w_up = base + N*K with layout NK: no copy.
//   * Biases are optional: a null pointer means "no bias".
//   * Everything accumulates in f32; the output is rounded once.
#pragma once
#include <stdint.h>

#define GLU_ACT_SILU 0
#define GLU_ACT_SWISH 1      // z * sigmoid(beta * z)
#define GLU_ACT_SIGMOID 2    // GLU
#define GLU_ACT_GELU_ERF 3
#define GLU_ACT_GELU_TANH 4
#define GLU_ACT_RELU 5
#define GLU_ACT_IDENTITY 6   // bilinear

#define GLU_LAYOUT_KN 0
#define GLU_LAYOUT_NK 1

// Tile shape of the portable tensor-core kernel (fused_glu_mma_*).
// One block computes a GLU_MMA_BM x GLU_MMA_BN tile of `out`, i.e. the same
// columns of both the gate and the up projection.
#define GLU_MMA_BM 128
#define GLU_MMA_BN 128
#define GLU_MMA_BK 32
#define GLU_MMA_STAGES 4
// 16 warps (4 x 4 warps of 32 x 32 outputs) since session 16: on an H200
// (2026-11-30, gpu_selftest P3/P5 at 4096x11008x4096) 375 TFLOP/s against
// 297 with 8 warps (2 x 4 of 64 x 32); not measured on sm_80..sm_89.
#define GLU_MMA_THREADS 512
// Dynamic shared memory the launcher must provide (bytes).
#define GLU_MMA_SMEM_BYTES \
  (GLU_MMA_STAGES * (GLU_MMA_BM * GLU_MMA_BK + 2 * GLU_MMA_BN * GLU_MMA_BK) * 2)

// Tile shape of the generic SIMT kernel (fused_glu_simt_*): any alignment,
// exact f32 arithmetic, every dtype. Static shared memory only.
#define GLU_SIMT_BM 64
#define GLU_SIMT_BN 64
#define GLU_SIMT_THREADS 256

// Elementwise kernels use a 1-D grid-stride loop of this many threads/block.
#define GLU_ELT_THREADS 256

// The fused forward: out = act(x*Wg + bg) * (x*Wu + bu).
struct GluParams {
  const void* x;       // [M,K]
  const void* w_gate;  // see layout
  const void* w_up;    // see layout
  const void* b_gate;  // [N] or null
  const void* b_up;    // [N] or null
  void* out;           // [M,N]
  int64_t m;
  int64_t n;
  int64_t k;
  int32_t layout;      // GLU_LAYOUT_*
  int32_t act;         // GLU_ACT_*
  float beta;          // Swish beta (ignored by other activations)
  int32_t reserved;    // must be 0
};

// Epilogues of the Hopper kernel's training variants
// (fused_glu_wgmma_{pre,dgu}_*, fused_glu_wgmma_train.cu): with g = x*Wg + bg and u = x*Wu + bu in f32,
//   GLU_EPI_OUT_PRE: out = act(g) * u, and aux[r, c] = g, aux[r, N + c] = u
//                    (the pre-activations a PreActivations forward saves);
//   GLU_EPI_DGU:     d = d_out[r, c]; aux[r, c] = d * u * act'(g) (dGate),
//                    aux[r, N + c] = d * act(g) (dUp); out is not written
//                    (the backward's first stage, recomputing g and u).
// aux is [M, ld_aux] row-major in the input type, ld_aux >= 2N.
#define GLU_EPI_OUT 0
#define GLU_EPI_OUT_PRE 1
#define GLU_EPI_DGU 2
// As GLU_EPI_OUT, staged in shared memory and stored with TMA
// (fused_glu_wgmma_staged_*, fused_glu_wgmma_staged.cu).
#define GLU_EPI_OUT_TMA 3
// As GLU_EPI_OUT_PRE, staged: out, then g, then u go through the same
// shared-memory tile and leave with TMA stores (fused_glu_wgmma_prestaged_*
// in fused_glu_wgmma_train.cu; aux through a [M][2][N] tensor map).
#define GLU_EPI_OUT_PRE_TMA 4
// As GLU_EPI_DGU, staged: d_out comes into the shared-memory tile with
// coalesced 16-byte loads, dGate replaces it there and leaves with a TMA
// store, then dUp (fused_glu_wgmma_dgustaged_* in fused_glu_wgmma_train.cu;
// aux through the [M][2][N] tensor map; d_out 16-byte aligned).
#define GLU_EPI_DGU_TMA 5
// The backward's dX on the same tile loop (fused_glu_wgmma_dx{,32}_* in
// fused_glu_wgmma_train.cu): two K segments, x·W over (x, w_gate, w_up) and
// then over a second map triple, accumulate into one tile whose gate half
// is written to aux[r, c] and up half to aux[r, N + c] (no bias, no
// activation, out not written): with x := dGate, then dUp, and the two
// halves := the two column halves of Wgᵀ, then Wuᵀ,
// aux = dX = dGate·Wgᵀ + dUp·Wuᵀ ([M, 2N], N = K_model / 2), rounded once.
// GLU_EPI_DX writes aux in the input type, GLU_EPI_DX_F32 in f32.
#define GLU_EPI_DX 6
#define GLU_EPI_DX_F32 7
// The backward's weight gradients on the same tile loop
// (fused_glu_wgmma_dw{,32}_*): A is read M-major (transposed) from a
// [contraction, M'] matrix, B as KN from two maps; tile row r (< p.m),
// column c (< p.n) of half h (0 gate, 1 up) goes to
//   dst = GluGemmOut.ptr[2 * (r >= split) + h] + (r - split * (r >= split)) * ld + c,
// written (accumulate = 0) or added to (accumulate = 1; one rounding of the
// f32 sum), in the input type (GLU_EPI_DW) or f32 (GLU_EPI_DW_F32).
#define GLU_EPI_DW 8
#define GLU_EPI_DW_F32 9

struct GluTrainParams {
  const void* d_out;   // [M,N] for GLU_EPI_DGU, else null
  void* aux;           // [M, ld_aux]
  int64_t ld_aux;      // elements
  int32_t epi;         // GLU_EPI_OUT_PRE or GLU_EPI_DGU
  int32_t reserved;    // must be 0
};

// Destinations of GLU_EPI_DW / GLU_EPI_DW_F32 (see above).
struct GluGemmOut {
  void* ptr[4];        // [row segment 0: gate half, up half; row segment 1: gate, up]
  int64_t ld;          // elements
  int64_t split;       // first row of segment 1 (>= p.m: one segment)
  int32_t accumulate;  // 0: store, 1: add to the destination
  int32_t reserved;    // must be 0
};

// Tail split of the Hopper forward (fused_glu_wgmma_split_*; the schedule is
// described with glu_split_unit in glu_hopper_layout.cuh).
struct GluTailSplit {
  float* ws;              // (parts-1) * tails * 2 slots of kWgSplitSlotF4 float4
  unsigned int* flags;    // [tails][2] counters, zero on entry and on exit
  int64_t width;          // schedule width W (tails = tiles % W)
  int32_t parts;          // P >= 2 (k_tiles >= P)
  int32_t reserved;       // must be 0
};

// Elementwise kernels (baselines and the backward's gate stage).
//   act_and_mul : out0[r,c] = act(a[r,c] + bias_a[c]) * (b[r,c] + bias_b[c])
//   act_inplace : out0[r,c] = act(a[r,c] + bias_a[c])           (B3, step 1)
//   mul_bias    : out0[r,c] = a[r,c] * (b[r,c] + bias_b[c])     (B3, step 2)
//   glu_bwd     : g = a (gate pre-activation, bias included), u = b (up, bias
//                 included), d = c (dOut):
//                 out0[r,c] = d * u * act'(g)   (dGate)
//                 out1[r,c] = d * act(g)        (dUp)
// Strides are in elements and let a, b address the two halves of one
// [M,2N] buffer (ld = 2N), as the concatenated-weights baseline produces.
struct GluEltParams {
  const void* a;
  const void* b;
  const void* c;
  const void* bias_a;  // [n] or null
  const void* bias_b;  // [n] or null
  void* out0;
  void* out1;
  int64_t rows;
  int64_t n;
  int64_t ld_a;
  int64_t ld_b;
  int64_t ld_c;
  int64_t ld_out0;
  int64_t ld_out1;
  int32_t act;
  float beta;
};

#ifdef __cplusplus
#include <stddef.h>
static_assert(sizeof(void*) == 8, "64-bit only");
static_assert(offsetof(GluParams, x) == 0, "GluParams layout");
static_assert(offsetof(GluParams, out) == 40, "GluParams layout");
static_assert(offsetof(GluParams, m) == 48, "GluParams layout");
static_assert(offsetof(GluParams, k) == 64, "GluParams layout");
static_assert(offsetof(GluParams, layout) == 72, "GluParams layout");
static_assert(offsetof(GluParams, act) == 76, "GluParams layout");
static_assert(offsetof(GluParams, beta) == 80, "GluParams layout");
static_assert(sizeof(GluParams) == 88, "GluParams layout");
static_assert(offsetof(GluTrainParams, aux) == 8, "GluTrainParams layout");
static_assert(offsetof(GluTrainParams, ld_aux) == 16, "GluTrainParams layout");
static_assert(offsetof(GluTrainParams, epi) == 24, "GluTrainParams layout");
static_assert(sizeof(GluTrainParams) == 32, "GluTrainParams layout");
static_assert(offsetof(GluEltParams, out1) == 48, "GluEltParams layout");
static_assert(offsetof(GluEltParams, rows) == 56, "GluEltParams layout");
static_assert(offsetof(GluEltParams, ld_out1) == 104, "GluEltParams layout");
static_assert(offsetof(GluEltParams, act) == 112, "GluEltParams layout");
static_assert(offsetof(GluEltParams, beta) == 116, "GluEltParams layout");
static_assert(sizeof(GluEltParams) == 120, "GluEltParams layout");
static_assert(offsetof(GluGemmOut, ld) == 32, "GluGemmOut layout");
static_assert(offsetof(GluGemmOut, split) == 40, "GluGemmOut layout");
static_assert(offsetof(GluGemmOut, accumulate) == 48, "GluGemmOut layout");
static_assert(sizeof(GluGemmOut) == 56, "GluGemmOut layout");
static_assert(offsetof(GluTailSplit, flags) == 8, "GluTailSplit layout");
static_assert(offsetof(GluTailSplit, width) == 16, "GluTailSplit layout");
static_assert(offsetof(GluTailSplit, parts) == 24, "GluTailSplit layout");
static_assert(sizeof(GluTailSplit) == 32, "GluTailSplit layout");
#endif
