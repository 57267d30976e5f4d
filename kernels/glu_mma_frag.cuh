// ldmatrix -> mma.m16n8k16 fragment loaders shared by fused_glu_mma.cu and
// probe.cu (mma_fragment_probe runs exactly this code on known data).
//
// PTX ISA "Matrix Fragments for mma.m16n8k16" (16-bit A/B, f32 C/D),
// groupID g = lane >> 2, t = lane % 4:
//   A (row):  a0,a1: (g,   2t+{0,1})   a2,a3: (g+8, 2t+{0,1})
//             a4,a5: (g,   2t+8+{0,1}) a6,a7: (g+8, 2t+8+{0,1})
//   B (col):  b0,b1: (k = 2t+{0,1},   n = g)  b2,b3: (k = 2t+8+{0,1}, n = g)
//   C/D:      c0,c1: (g, 2t+{0,1})           c2,c3: (g+8, 2t+{0,1})
// Each 32-bit register holds two 16-bit elements, lower index in the low half.
// ldmatrix (non-trans) gives thread T of matrix i: row T/4, elements 2(T%4)+{0,1}
//   -> for A that is exactly (g, 2t+{0,1}) of the addressed 8x8 block;
//   -> for an NK tile (rows = n, k contiguous) that is (n = g, k = 2t+{0,1}),
//      the B "col" fragment.
// ldmatrix.trans gives thread T: stored rows 2(T%4)+{0,1}, column T/4
//   -> for a KN tile (rows = k, n contiguous) that is (k = 2t+{0,1}, n = g).
#pragma once
#include "glu_common.cuh"
#include "glu_swizzle.cuh"

// A fragment: rows m0..m0+15, k 16*ks..16*ks+15 of a 64-byte-row tile.
__device__ __forceinline__ void glu_load_a_frag(uint32_t (&a)[4], uint32_t tile, uint32_t m0,
                                                uint32_t ks, uint32_t lane) {
  ldmatrix_x4(a, tile + glu_swz64(glu_a_ld_row(m0, lane), glu_a_ld_chunk(ks * 2u, lane)));
}

// B fragments for n-tiles n0..n0+7 (b[0]) and n0+8..n0+15 (b[1]), k step ks.
// NK layout: tile rows are n, 64-byte rows of k.
__device__ __forceinline__ void glu_load_b_frag_nk(uint32_t (&b)[2][2], uint32_t tile,
                                                   uint32_t n0, uint32_t ks, uint32_t lane) {
  uint32_t r[4];
  ldmatrix_x4(r, tile + glu_swz64(glu_bnk_ld_row(n0, lane), glu_bnk_ld_chunk(ks * 2u, lane)));
  b[0][0] = r[0]; b[0][1] = r[1];
  b[1][0] = r[2]; b[1][1] = r[3];
}

// KN layout: tile rows are k, 128-byte rows of n; transposed load.
__device__ __forceinline__ void glu_load_b_frag_kn(uint32_t (&b)[2][2], uint32_t tile,
                                                   uint32_t n0, uint32_t ks, uint32_t lane) {
  uint32_t r[4];
  ldmatrix_x4_trans(r, tile + glu_swz128(glu_bkn_ld_row(ks * 16u, lane),
                                         glu_bkn_ld_chunk(n0 >> 3, lane)));
  b[0][0] = r[0]; b[0][1] = r[1];
  b[1][0] = r[2]; b[1][1] = r[3];
}

template <int LAYOUT>
__device__ __forceinline__ void glu_load_b_frag(uint32_t (&b)[2][2], uint32_t tile, uint32_t n0,
                                                uint32_t ks, uint32_t lane) {
  if (LAYOUT == GLU_LAYOUT_NK)
    glu_load_b_frag_nk(b, tile, n0, ks, lane);
  else
    glu_load_b_frag_kn(b, tile, n0, ks, lane);
}

// KN layout with 256-byte rows of n (fused_glu_mma's [32 k][128 n] tiles):
// same lane mapping as glu_load_b_frag_kn, glu_swz256 addressing.
__device__ __forceinline__ void glu_load_b_frag_kn256(uint32_t (&b)[2][2], uint32_t tile,
                                                      uint32_t n0, uint32_t ks, uint32_t lane) {
  uint32_t r[4];
  ldmatrix_x4_trans(r, tile + glu_swz256(glu_bkn_ld_row(ks * 16u, lane),
                                         glu_bkn_ld_chunk(n0 >> 3, lane)));
  b[0][0] = r[0]; b[0][1] = r[1];
  b[1][0] = r[2]; b[1][1] = r[3];
}

// fused_glu_mma's B loader: NK tiles have 64-byte rows of k ([128 n][32 k]),
// KN tiles 256-byte rows of n ([32 k][128 n]).
template <int LAYOUT>
__device__ __forceinline__ void glu_load_b_frag_wide(uint32_t (&b)[2][2], uint32_t tile,
                                                     uint32_t n0, uint32_t ks, uint32_t lane) {
  if (LAYOUT == GLU_LAYOUT_NK)
    glu_load_b_frag_nk(b, tile, n0, ks, lane);
  else
    glu_load_b_frag_kn256(b, tile, n0, ks, lane);
}
