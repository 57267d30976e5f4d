// Shared device helpers for the swiglu kernels:
//   * glu_act / glu_act_grad      activation and its derivative (f32, accurate
//                                 libm: expf/erfcf, cancellation-free forms
//                                 for z < 0, NaN propagates)
//   * to_f32 / from_f32           scalar dtype conversions (round-to-nearest-even)
//   * load/store of 16-byte vectors as f32 lanes (elementwise kernels)
//   * named inline-PTX wrappers: cp.async, ldmatrix, mma.m16n8k16
// All kernels are built for compute_80 / sm_80 / sm_90a; the sm_80+ PTX is
// guarded by __CUDA_ARCH__ >= 800 so the host pass and any older target parse.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include "glu_params.cuh"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 800)
#define GLU_SM80 1
#else
#define GLU_SM80 0
#endif

// ---------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------
__device__ __forceinline__ float glu_sigmoid(float z) {
  return 1.0f / (1.0f + expf(-z));
}

// act(z). NaN in -> NaN out for every activation (ReLU written explicitly:
// fmaxf(NaN, 0) would return 0).
__device__ __forceinline__ float glu_act(float z, int act, float beta) {
  switch (act) {
    case GLU_ACT_SILU:
      return z / (1.0f + expf(-z));
    case GLU_ACT_SWISH:
      return z / (1.0f + expf(-beta * z));
    case GLU_ACT_SIGMOID:
      return glu_sigmoid(z);
    case GLU_ACT_GELU_ERF:
      // z * Phi(z) with Phi(z) = 0.5 * erfc(-z / sqrt(2)): no cancellation
      // for z < 0 (0.5*z*(1 + erf(z/sqrt2)) loses all digits near z = -4).
      return 0.5f * z * erfcf(-z * 0.70710678118654752440f);
    case GLU_ACT_GELU_TANH: {
      // 0.5*z*(1 + tanh(u)) == z * sigmoid(2u) == z / (1 + exp(-2u)):
      // accurate for z < 0, and -> -0 (not NaN) when exp overflows.
      const float k0 = 0.79788456080286535588f;  // sqrt(2/pi)
      const float u = k0 * (z + 0.044715f * z * z * z);
      return z / (1.0f + expf(-2.0f * u));
    }
    case GLU_ACT_RELU:
      return z > 0.0f ? z : (z != z ? z : 0.0f);
    case GLU_ACT_IDENTITY:
    default:
      return z;
  }
}

// d act(z) / dz. NaN in -> NaN out (identity: always 1).
// ReLU: 1 for z > 0, 0 for z <= 0, NaN for NaN.
__device__ __forceinline__ float glu_act_grad(float z, int act, float beta) {
  // 1 - sigmoid(x) is evaluated as sigmoid(-x) (no cancellation for x >> 0).
  switch (act) {
    case GLU_ACT_SILU: {
      const float s = glu_sigmoid(z), sm = glu_sigmoid(-z);
      return s * (1.0f + z * sm);
    }
    case GLU_ACT_SWISH: {
      const float bz = beta * z;
      const float s = glu_sigmoid(bz), sm = glu_sigmoid(-bz);
      return s + bz * s * sm;
    }
    case GLU_ACT_SIGMOID:
      return glu_sigmoid(z) * glu_sigmoid(-z);
    case GLU_ACT_GELU_ERF: {
      // Phi(z) + z * phi(z), Phi(z) = 0.5 * erfc(-z / sqrt(2)).
      const float inv_sqrt2 = 0.70710678118654752440f;
      const float inv_sqrt2pi = 0.39894228040143267794f;
      return 0.5f * erfcf(-z * inv_sqrt2) + z * inv_sqrt2pi * expf(-0.5f * z * z);
    }
    case GLU_ACT_GELU_TANH: {
      // act = z * s, s = sigmoid(2u), u = k0 (z + k1 z^3):
      // act' = s + z * 2 s (1 - s) * u',  u' = k0 (1 + 3 k1 z^2).
      const float k0 = 0.79788456080286535588f;  // sqrt(2/pi)
      const float k1 = 0.044715f;
      const float u = k0 * (z + k1 * z * z * z);
      const float s = glu_sigmoid(2.0f * u), sm = glu_sigmoid(-2.0f * u);
      const float du = k0 * (1.0f + 3.0f * k1 * z * z);
      return s + z * 2.0f * s * sm * du;
    }
    case GLU_ACT_RELU:
      return z > 0.0f ? 1.0f : (z != z ? z : 0.0f);
    case GLU_ACT_IDENTITY:
    default:
      return 1.0f;
  }
}

// ---------------------------------------------------------------------------
// dtype conversions
// ---------------------------------------------------------------------------
template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) {
  return __half2float(v);
}
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// 16-bit payload <-> f32 (used by the vector paths and the mma epilogue).
template <typename T> __device__ __forceinline__ float bits16_to_f32(uint32_t b);
template <> __device__ __forceinline__ float bits16_to_f32<__half>(uint32_t b) {
  return __half2float(__ushort_as_half((unsigned short)(b & 0xffffu)));
}
template <> __device__ __forceinline__ float bits16_to_f32<__nv_bfloat16>(uint32_t b) {
  return __uint_as_float((b & 0xffffu) << 16);  // bf16 -> f32 is exact
}
template <typename T> __device__ __forceinline__ uint32_t f32_to_bits16(float v);
template <> __device__ __forceinline__ uint32_t f32_to_bits16<__half>(float v) {
  return (uint32_t)__half_as_ushort(__float2half_rn(v));
}
template <> __device__ __forceinline__ uint32_t f32_to_bits16<__nv_bfloat16>(float v) {
  return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v));
}

// Number of T elements in 16 bytes.
template <typename T> struct GluVec { static constexpr int N = 16 / (int)sizeof(T); };

// Load 16 bytes (p must be 16-byte aligned) as GluVec<T>::N floats.
template <typename T> __device__ __forceinline__ void load16_f32(const T* p, float* f);
template <> __device__ __forceinline__ void load16_f32<float>(const float* p, float* f) {
  float4 v = *reinterpret_cast<const float4*>(p);
  f[0] = v.x; f[1] = v.y; f[2] = v.z; f[3] = v.w;
}
template <typename T> __device__ __forceinline__ void load16_f32_16bit(const T* p, float* f) {
  uint4 v = *reinterpret_cast<const uint4*>(p);
  uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = bits16_to_f32<T>(w[i]);
    f[2 * i + 1] = bits16_to_f32<T>(w[i] >> 16);
  }
}
template <> __device__ __forceinline__ void load16_f32<__half>(const __half* p, float* f) {
  load16_f32_16bit<__half>(p, f);
}
template <> __device__ __forceinline__ void load16_f32<__nv_bfloat16>(const __nv_bfloat16* p,
                                                                     float* f) {
  load16_f32_16bit<__nv_bfloat16>(p, f);
}

// Store GluVec<T>::N floats as 16 bytes (p 16-byte aligned), rounding once.
template <typename T> __device__ __forceinline__ void store16_f32(T* p, const float* f);
template <> __device__ __forceinline__ void store16_f32<float>(float* p, const float* f) {
  *reinterpret_cast<float4*>(p) = make_float4(f[0], f[1], f[2], f[3]);
}
template <typename T> __device__ __forceinline__ void store16_f32_16bit(T* p, const float* f) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    w[i] = f32_to_bits16<T>(f[2 * i]) | (f32_to_bits16<T>(f[2 * i + 1]) << 16);
  *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}
template <> __device__ __forceinline__ void store16_f32<__half>(__half* p, const float* f) {
  store16_f32_16bit<__half>(p, f);
}
template <> __device__ __forceinline__ void store16_f32<__nv_bfloat16>(__nv_bfloat16* p,
                                                                      const float* f) {
  store16_f32_16bit<__nv_bfloat16>(p, f);
}

__device__ __forceinline__ bool glu_aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// Dynamic shared memory of a kernel: the extern __shared__ array, or under
// the host emulator (kernels/emu/cuda_emu.h, GLU_EMU) its per-launch buffer.
#if defined(GLU_EMU)
#define GLU_DYNAMIC_SMEM(name, align) unsigned char* const name = emu::dynamic_smem()
#else
#define GLU_DYNAMIC_SMEM(name, align) extern __shared__ __align__(align) unsigned char name[]
#endif

// Ends each kernel-defining macro: under the host emulator (GLU_EMU) it
// registers the kernel by name for the stand-in driver (kernels/emu/standin,
// emu::register_kernel): CONCURRENT = every CTA resident at once (persistent
// kernels whose CTAs wait for each other), CLUSTER = its __cluster_dims__
// along x. Empty for nvcc.
#if defined(GLU_EMU)
#define GLU_EMU_KERNEL(NAME, CONCURRENT, CLUSTER) \
  static const bool glu_emu_registered_##NAME = ::emu::register_kernel(#NAME, NAME, CONCURRENT, CLUSTER);
#else
#define GLU_EMU_KERNEL(NAME, CONCURRENT, CLUSTER)
#endif

// ---------------------------------------------------------------------------
// Inline PTX (sm_80+). Under GLU_EMU (host tests only) each wrapper calls
// the emulator instead. Shared-memory operands are 32-bit shared-window
// addresses (cvta.to.shared), as ldmatrix/cp.async expect.
// ---------------------------------------------------------------------------
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// 16-byte async copy global->shared, L2 only (.cg). src_size = 0 when !pred:
// nothing is read from global and the 16 destination bytes are zero-filled.
// The caller still passes an in-allocation address when !pred.
__device__ __forceinline__ void cp_async_16_zfill(uint32_t dst, const void* src, bool pred) {
#if defined(GLU_EMU)
  emu::cp_async16(dst, src, pred);
#elif GLU_SM80
  int src_size = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_size)
               : "memory");
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(GLU_EMU)
  emu::cp_async_commit();
#elif GLU_SM80
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(GLU_EMU)
  emu::cp_async_wait(N);
#elif GLU_SM80
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// mbarrier as sm_80 has it (PTX ISA 7.0/7.1: init, arrive, test_wait.parity,
// cp.async.mbarrier.arrive.noinc), for the portable kernel's barrier-free
// pipeline (fused_glu_mma.cu, MBAR variant). The Hopper kernels keep their
// own wrappers (glu_hopper.cuh: .shared::cta, try_wait, expect_tx).
__device__ __forceinline__ void mbar80_init(uint32_t bar, uint32_t count) {
#if defined(GLU_EMU)
  emu::mbar_init_at(bar, count);
#elif GLU_SM80
  asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}

// One arrival (release at CTA scope: this thread's earlier shared-memory
// reads, ldmatrix included, are performed before it counts).
__device__ __forceinline__ void mbar80_arrive(uint32_t bar) {
#if defined(GLU_EMU)
  emu::mbar_arrive_on(emu::cur_cta(), bar, 0);
#elif GLU_SM80
  asm volatile("mbarrier.arrive.shared.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}

// Spins until the phase with parity `parity` has completed (acquire: the
// writes the arrivals released, cp.async landings included, are visible).
// sm_90 suspends the thread inside try_wait instead of spinning on issue
// slots the mma warps of its sub-partition need.
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
#define GLU_MBAR80_WAIT "mbarrier.try_wait.parity.shared.b64"
#else
#define GLU_MBAR80_WAIT "mbarrier.test_wait.parity.shared.b64"
#endif
__device__ __forceinline__ void mbar80_wait(uint32_t bar, uint32_t parity) {
#if defined(GLU_EMU)
  while (!emu::mbar_test_wait(bar, parity, "mbarrier.test_wait")) {
  }
#elif GLU_SM80
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n.reg .pred p;\n" GLU_MBAR80_WAIT " p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
#endif
}

// One arrival on `bar` once all of this thread's earlier cp.asyncs have
// landed (.noinc: the barrier's count includes these arrivals).
__device__ __forceinline__ void cp_async_mbar_arrive(uint32_t bar) {
#if defined(GLU_EMU)
  emu::cp_async_mbar_arrive(bar);
#elif GLU_SM80
  asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];\n" ::"r"(bar) : "memory");
#endif
}

// Lane l supplies the address of row (l % 8) of matrix (l / 8); register i
// receives matrix i: thread t holds row t/4, elements 2*(t%4), 2*(t%4)+1.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
#if defined(GLU_EMU)
  emu::ldmatrix_x4(r, addr, false);
#elif GLU_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

// .trans: thread t holds elements [2*(t%4)][t/4] and [2*(t%4)+1][t/4] of the
// stored 8x8 matrix (i.e. column t/4 of the stored rows).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
#if defined(GLU_EMU)
  emu::ldmatrix_x4(r, addr, true);
#elif GLU_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

// 32-bit shared-memory load (a 32-bit shared-window address).
__device__ __forceinline__ uint32_t ld_shared_u32(uint32_t addr) {
#if defined(GLU_EMU)
  return emu::ld_shared_u32(addr);
#else
  uint32_t v;
  asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(addr));
  return v;
#endif
}

// D = A*B + D, m16n8k8 on tf32 (each .b32 operand an f32 whose low 13
// mantissa bits the tensor core ignores), f32 acc. Fragments (PTX ISA,
// g = lane >> 2, t = lane % 4): a0 (g, t), a1 (g+8, t), a2 (g, t+4),
// a3 (g+8, t+4); b0 (k = t, n = g), b1 (k = t+4, n = g); C as m16n8k16.
__device__ __forceinline__ void mma_1688_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                              uint32_t b1) {
#if defined(GLU_EMU)
  emu::mma(emu::Op::MmaTf32, d, a, b0, b1);
#elif GLU_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// D = A*B + D, m16n8k16, A row-major, B "col" (k contiguous per n), f32 acc.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4],
                                          uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                         uint32_t b0, uint32_t b1) {
#if defined(GLU_EMU)
  emu::mma(emu::Op::MmaBf16, d, a, b0, b1);
#elif GLU_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const uint32_t (&a)[4],
                                                  uint32_t b0, uint32_t b1) {
#if defined(GLU_EMU)
  emu::mma(emu::Op::MmaF16, d, a, b0, b1);
#elif GLU_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}
