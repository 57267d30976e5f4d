// Named inline-PTX wrappers for the Hopper (sm_90a) fused kernel: mbarrier,
// TMA (cp.async.bulk.tensor), wgmma, setmaxnreg. Every body is guarded by
// GLU_HOPPER, so the sm_80 / compute_80 passes of build.rs compile empty
// stubs (the kernel that calls them is itself guarded).
// Shared-memory operands are 32-bit shared-window addresses (smem_u32).
#pragma once
#include <cuda.h>  // CUtensorMap
#include "glu_common.cuh"
#include "glu_hopper_layout.cuh"

#if defined(GLU_EMU)
#define GLU_HOPPER 1  // the host emulator's tests (kernels/emu)
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define GLU_HOPPER 1
#else
#define GLU_HOPPER 0
#endif

// Under GLU_EMU (host tests only) the emulator's models replace every
// wrapper from here to the epilogue activations (kernels/emu/cuda_emu_hopper.h).
#if defined(GLU_EMU)
#include "cuda_emu_hopper.h"
#else
// ---- mbarrier (PTX ISA 9.7.13.15) -------------------------------------------
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
#if GLU_HOPPER
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}

// Makes the initialised barriers visible to the async proxy (TMA) and to
// the other threads (followed by __syncthreads()).
__device__ __forceinline__ void mbar_init_fence() {
#if GLU_HOPPER
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if GLU_HOPPER
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}

// Arrive and add `bytes` to the transaction count the phase waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#if GLU_HOPPER
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
#endif
}

// One test of the phase with parity `parity` (the thread may be suspended
// up to a system-dependent limit inside it): 1 once that phase completed.
__device__ __forceinline__ uint32_t mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
#if GLU_HOPPER
  asm volatile(
      "{\n.reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
#endif
  return done;
}

// Spins until the phase with parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if GLU_HOPPER
  while (!mbar_try_wait(bar, parity)) {
  }
#endif
}

// mbar_wait that gives up: after ~2^32 clocks (over 2 s at Hopper clocks,
// where a healthy wait takes microseconds) the thread traps, so a protocol
// error becomes a launch error the caller sees instead of a kernel that
// never ends. Used by the cluster schedule, which has not run on a GPU yet.
__device__ __forceinline__ void mbar_wait_or_trap(uint32_t bar, uint32_t parity) {
#if GLU_HOPPER
  if (mbar_try_wait(bar, parity)) return;
  const long long start = clock64();
  while (!mbar_try_wait(bar, parity))
    if (clock64() - start > (1ll << 32)) __trap();
#endif
}

// The tile schedules' barrier wait: mbar_wait_or_trap where TRAP (the cluster
// schedule, glu_wgmma_body.cuh), else mbar_wait.
template <bool TRAP>
__device__ __forceinline__ void mbar_wait_sched(uint32_t bar, uint32_t parity) {
  if constexpr (TRAP)
    mbar_wait_or_trap(bar, parity);
  else
    mbar_wait(bar, parity);
}

// ---- TMA (PTX ISA 9.7.9.25.5.1) ---------------------------------------------
// 2-D tile load of the box at (c0 = inner/contiguous coordinate, c1 = row)
// into shared `dst`, completing `bytes` of the transaction on `bar`.
// Out-of-bounds box elements are written as zeros (and still counted).
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                            int32_t c0, int32_t c1) {
#if GLU_HOPPER
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes "
      "[%0], [%1, {%3, %4}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1)
      : "memory");
#endif
}

// tma_load_2d into the same shared offset `dst` of every CTA of the cluster
// in `cta_mask` (bit i: CTA rank i), completing `bytes` of the transaction
// on the mbarrier at offset `bar` of each of those CTAs (PTX ISA
// cp.async.bulk.tensor .multicast::cluster, sm_90a).
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const CUtensorMap* map,
                                                      uint32_t bar, int32_t c0, int32_t c1,
                                                      uint16_t cta_mask) {
#if GLU_HOPPER
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%3, %4}], [%2], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "h"(cta_mask)
      : "memory");
#endif
}

// ---- thread-block clusters (PTX ISA 9.7.13.4, special registers) ------------
__device__ __forceinline__ uint32_t cluster_cta_rank() {
  uint32_t r = 0;
#if GLU_HOPPER
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
  return r;
}
// This CTA's cluster index along x, and the number of clusters along x.
__device__ __forceinline__ uint32_t cluster_index_x() {
  uint32_t r = 0;
#if GLU_HOPPER
  asm volatile("mov.u32 %0, %%clusterid.x;\n" : "=r"(r));
#endif
  return r;
}
__device__ __forceinline__ uint32_t cluster_count_x() {
  uint32_t r = 1;
#if GLU_HOPPER
  asm volatile("mov.u32 %0, %%nclusterid.x;\n" : "=r"(r));
#endif
  return r;
}
// Every thread of every CTA of the cluster: arrive (release) and wait
// (acquire). Not .aligned: callers reach it from diverged role branches.
__device__ __forceinline__ void cluster_sync_all() {
#if GLU_HOPPER
  asm volatile("barrier.cluster.arrive.release;\n" ::: "memory");
  asm volatile("barrier.cluster.wait.acquire;\n" ::: "memory");
#endif
}
// One arrive on the mbarrier at shared offset `bar` of the cluster's CTA
// `cta`. Default semantics (release at CTA scope), as CUTLASS's
// ClusterBarrier::arrive: `.release.cluster` made ptxas put MEMBAR.ALL.GPU
// before every arrive, i.e. in every k-tile of the consumers. What it
// orders here is the arriving warpgroup's retired wgmma reads of a stage
// before the peer's next TMA write into it, which the barrier's phase
// already orders for the async proxy.
__device__ __forceinline__ void mbar_arrive_remote(uint32_t bar, uint32_t cta) {
#if GLU_HOPPER
  asm volatile(
      "{\n.reg .b32 ra;\n"
      "mapa.shared::cluster.u32 ra, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [ra];\n}\n" ::"r"(bar),
      "r"(cta)
      : "memory");
#endif
}

// 2-D tile store of the 128B-swizzled box at shared `src` to (c0, c1) of
// the tensor `map` describes (PTX ISA cp.async.bulk.tensor, .global.shared
// direction, bulk_group completion). Box elements outside the tensor are not
// written. The issuing thread tracks completion with tma_store_commit /
// tma_store_wait_read / tma_store_wait_all; the writers of `src` must have
// executed fence_proxy_async_smem and a barrier before the store is issued.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, uint32_t src, int32_t c0,
                                             int32_t c1) {
#if GLU_HOPPER
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(src), "r"(c0), "r"(c1)
               : "memory");
#endif
}
// 3-D variant (c0 innermost): used for the [M][2][N] view of the training
// pre-activations, so that a box never spills from the gate half into the up
// half when N is not a multiple of the box width.
__device__ __forceinline__ void tma_store_3d(const CUtensorMap* map, uint32_t src, int32_t c0,
                                             int32_t c1, int32_t c2) {
#if GLU_HOPPER
  asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.bulk_group [%0, {%2, %3, %4}], [%1];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(src), "r"(c0), "r"(c1), "r"(c2)
               : "memory");
#endif
}
__device__ __forceinline__ void tma_store_commit() {
#if GLU_HOPPER
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}
// Waits until the committed stores have finished reading shared memory (the
// source may then be overwritten).
__device__ __forceinline__ void tma_store_wait_read() {
#if GLU_HOPPER
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
#endif
}
// Waits until the committed stores are complete (written to global memory).
__device__ __forceinline__ void tma_store_wait_all() {
#if GLU_HOPPER
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#endif
}
// Makes this thread's generic-proxy shared-memory writes visible to the async
// proxy (TMA), before the barrier that precedes a TMA store of them.
__device__ __forceinline__ void fence_proxy_async_smem() {
#if GLU_HOPPER
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Named barrier `id` (1..15; 0 is __syncthreads) over `count` threads.
__device__ __forceinline__ void named_bar_sync(uint32_t id, uint32_t count) {
#if GLU_HOPPER
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}
// Load with acquire semantics at GPU scope (the tail split's counters).
__device__ __forceinline__ unsigned int ld_acquire_gpu_u32(const unsigned int* p) {
  unsigned int v = 0;
#if GLU_HOPPER
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
#endif
  return v;
}
__device__ __forceinline__ void st_shared_u32(uint32_t addr, uint32_t v) {
#if GLU_HOPPER
  asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
#endif
}
// 16-byte shared store (addr 16-byte aligned).
__device__ __forceinline__ void st_shared_v4(uint32_t addr, uint4 v) {
#if GLU_HOPPER
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(v.x), "r"(v.y),
               "r"(v.z), "r"(v.w)
               : "memory");
#endif
}
// 32-bit shared load ordered against the surrounding shared stores/barriers.
__device__ __forceinline__ uint32_t ld_shared_u32_ordered(uint32_t addr) {
  uint32_t v = 0;
#if GLU_HOPPER
  asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(addr) : "memory");
#endif
  return v;
}

__device__ __forceinline__ void tma_prefetch_desc(const CUtensorMap* map) {
#if GLU_HOPPER
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}

// ---- setmaxnreg (PTX ISA 9.7.17.1) ------------------------------------------
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
#if GLU_HOPPER
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
#if GLU_HOPPER
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// ---- wgmma (PTX ISA 9.7.15) -------------------------------------------------
__device__ __forceinline__ void wgmma_fence() {
#if GLU_HOPPER
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if GLU_HOPPER
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if GLU_HOPPER
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

// Pins the accumulator registers at this point of the program, so the
// compiler neither reads them before wgmma_wait nor moves writes past a
// wgmma that is still in flight (the asm below does not model async-ness).
__device__ __forceinline__ void wgmma_fence_acc(float (&d)[kWgAccRegs]) {
#pragma unroll
  for (int i = 0; i < kWgAccRegs; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// D[64x256] += A[64x16] * B[16x256]; A and B from shared memory through
// descriptors, f32 accumulators. A is K-major (TRANS_A = 0) or M-major
// (TRANS_A = 1: the weight-gradient kernel's A = xᵀ or [dG | dU]ᵀ); B is
// K-major (TRANS_B = 0, NK weights) or N-major (TRANS_B = 1, KN weights:
// the "transpose" bit).
template <typename T, int TRANS_B, int TRANS_A>
struct WgmmaM64N256K16;

template <int TRANS_B, int TRANS_A>
struct WgmmaM64N256K16<__nv_bfloat16, TRANS_B, TRANS_A> {
  static __device__ __forceinline__ void run(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
#if GLU_HOPPER
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, "
        "%128, %129, p, 1, 1, %132, %131;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(desc_a), "l"(desc_b), "r"(1), "n"(TRANS_B), "n"(TRANS_A));
#endif
  }
};

template <int TRANS_B, int TRANS_A>
struct WgmmaM64N256K16<__half, TRANS_B, TRANS_A> {
  static __device__ __forceinline__ void run(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
#if GLU_HOPPER
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, "
        "%128, %129, p, 1, 1, %132, %131;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(desc_a), "l"(desc_b), "r"(1), "n"(TRANS_B), "n"(TRANS_A));
#endif
  }
};

template <typename T, int TRANS_B, int TRANS_A = 0>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
  WgmmaM64N256K16<T, TRANS_B, TRANS_A>::run(d, desc_a, desc_b);
}

#endif  // GLU_EMU

// ---- epilogue activation ------------------------------------------------------
// act(z) for the wgmma epilogue, ACT known at compile time. SiLU, Swish and
// sigmoid use the hardware exp2 / reciprocal approximations (__expf,
// __fdividef: relative error ~1e-6 for |z| < 20, far below one bf16/f16 ulp,
// and a 2x shorter dependency chain than expf + IEEE division, which made
// the epilogue, during which the tensor cores idle, cost ~12% of the tile).
// Special values behave as glu_act's: NaN -> NaN, z -> +inf gives +inf,
// z -> -inf gives NaN for SiLU/Swish (as inf/inf there) and 0 for sigmoid,
// large negative finite z gives -0 (the divisor overflows to inf or exceeds
// 2^126, where __fdividef returns 0). The other activations use glu_act.
template <int ACT>
__device__ __forceinline__ float wg_act(float z, float beta) {
  if (ACT == GLU_ACT_SILU) return __fdividef(z, 1.0f + __expf(-z));
  if (ACT == GLU_ACT_SWISH) return __fdividef(z, 1.0f + __expf(-beta * z));
  if (ACT == GLU_ACT_SIGMOID) return __fdividef(1.0f, 1.0f + __expf(-z));
  return glu_act(z, ACT, beta);
}
