// Throughput probes for fused_glu_mma (included by gpu_selftest.cu after
// fused_glu_mma.cu, whose anonymous-namespace helpers it reuses). They do not
// check results and never fail the self-test; they print "perf" lines that
// split the kernel's time into its parts, so that one GPU run says where the
// mma.sync kernel loses against the tensor-core ceiling:
//   P1 probe_hmma_regs     mma.m16n8k16 on register operands only: the
//                          mma.sync ceiling of this GPU at 8 and 16 warps/SM.
//   P2 probe_mma_smem      the kernel's own fragment loads (ldmatrix with its
//                          swizzles) and mma schedule on a resident shared-
//                          memory ring, no global loads: the smem-fed ceiling
//                          of the 8-warp (2x4) 128x(128+128) tile; with and
//                          without one __syncthreads per k-tile.
//   P3 fused_glu_mma_*     the kernel itself at M = 4096, N = 11008, K = 4096.
//   P5 fused_glu_mma8w_*   the same block tile, ring and loads with 8 warps
//                          (2 x 4 warps of 64 x 32, 128 accumulators each,
//                          fragment double buffer): the production kernel
//                          until session 16, which measured it at 297
//                          TFLOP/s against the 16-warp kernel's 375 on an
//                          H200. Checked for correctness by gpu_selftest
//                          before it is timed.
//   P4 probe_mma_loads     P3's launch with only the cp.async ring (loads,
//                          waits, barriers): the feed rate from L2 / HBM.
//   P2w16 probe_mma_smem  P2 for the production 16-warp schedule (fragments
//                          loaded right before their mma, one buffer): with
//                          and without the barrier per k-tile, which tells
//                          whether the ldmatrix burst after each barrier is
//                          what the 16-warp kernel loses (session 18).
//   P6, P7, P8             the variants of mma_variants.cuh at P3's shape:
//                          8 stages, and the mbarrier loops without
//                          __syncthreads (kernels/NOTES-mma.md "Session 18").
// P1 ~ P2 ~ P3: the kernel is at the ceiling. P2 << P1: fragment loads or
// their scheduling. P3 << P2: global -> shared; P4 ~ P3 says the feed is
// the limit (L2 bandwidth / locality, cp.async issue), P4 >> P3 that the
// overlap of loads and math is.
#pragma once

#include "mma_variants.cuh"

namespace mma_probe {

// 0.001 in bf16 (0x3A83), two per register: keeps accumulators finite.
constexpr uint32_t kSmallPair = 0x3A833A83u;

template <int NACC, int THREADS>
__global__ void __launch_bounds__(THREADS, 1) probe_hmma_regs(int iters, float* out) {
  float acc[NACC][4];
#pragma unroll
  for (int j = 0; j < NACC; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.f;
  uint32_t a[4] = {kSmallPair, kSmallPair, kSmallPair, kSmallPair ^ (threadIdx.x & 1u)};
  const uint32_t b0 = kSmallPair, b1 = kSmallPair ^ (threadIdx.x & 2u);
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int j = 0; j < NACC; ++j) mma_16816<__nv_bfloat16>(acc[j], a, b0, b1);
  }
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < NACC; ++j) s += acc[j][0] + acc[j][1] + acc[j][2] + acc[j][3];
  out[blockIdx.x * THREADS + threadIdx.x] = s;
}

// The main loop of fused_glu_mma_body without the cp.async ring: the k-tile
// kt reads stage kt % kStages of a ring filled once. WM = 2: the 8-warp
// schedule (P2: fragments double-buffered); WM = 4: the production 16-warp
// one (P2w16: each k16 step's fragments loaded right before its mma).
template <int WM, int LAYOUT, bool BAR>
__global__ void __launch_bounds__(WarpGrid<WM>::kThreads, 1)
    probe_mma_smem(int k_tiles, float* out) {
  extern __shared__ __align__(128) unsigned char probe_smem[];
  constexpr int kThreads = WarpGrid<WM>::kThreads, MI = WarpGrid<WM>::kMI;
  const int tid = threadIdx.x;
  for (int i = tid; i < GLU_MMA_SMEM_BYTES / 4; i += kThreads)
    reinterpret_cast<uint32_t*>(probe_smem)[i] = kSmallPair;
  __syncthreads();
  const uint32_t lane = tid & 31, warp = tid >> 5, warp_m = warp >> 2, warp_n = warp & 3;
  const uint32_t smem = smem_u32(probe_smem);
  float acc_g[MI][kNI][4], acc_u[MI][kNI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < kNI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_g[i][j][e] = acc_u[i][j][e] = 0.f;
  uint32_t rs = 0;
  if constexpr (WM == 2) {
    Frags<MI> fr[2];
    load_frags<__nv_bfloat16, LAYOUT, MI>(fr[0], smem, 0, warp_m, warp_n, lane);
    for (int kt = 0; kt < k_tiles; ++kt) {
      load_frags<__nv_bfloat16, LAYOUT, MI>(fr[1], smem + rs * kStageBytes, 1, warp_m, warp_n, lane);
      mma_frags<__nv_bfloat16, MI>(acc_g, acc_u, fr[0]);
      if (BAR) __syncthreads();
      rs = (rs + 1 == (uint32_t)kStages) ? 0 : rs + 1;
      load_frags<__nv_bfloat16, LAYOUT, MI>(fr[0], smem + rs * kStageBytes, 0, warp_m, warp_n, lane);
      mma_frags<__nv_bfloat16, MI>(acc_g, acc_u, fr[1]);
    }
  } else {
    for (int kt = 0; kt < k_tiles; ++kt) {
      for (uint32_t ks = 0; ks < 2; ++ks) {
        Frags<MI> f;
        load_frags<__nv_bfloat16, LAYOUT, MI>(f, smem + rs * kStageBytes, ks, warp_m, warp_n, lane);
        mma_frags<__nv_bfloat16, MI>(acc_g, acc_u, f);
      }
      if (BAR) __syncthreads();
      rs = (rs + 1 == (uint32_t)kStages) ? 0 : rs + 1;
    }
  }
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < kNI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s += acc_g[i][j][e] + acc_u[i][j][e];
  out[blockIdx.x * kThreads + tid] = s;
}

// The kernel's global -> shared pipeline alone (same grid, grouped tile
// order, cp.async ring, waits and one barrier per k-tile), no ldmatrix and
// no mma: how fast the ring can be fed from L2 / HBM.
template <typename T, int LAYOUT>
__global__ void __launch_bounds__(GLU_MMA_THREADS, 1) probe_mma_loads(GluParams p) {
  extern __shared__ __align__(128) unsigned char probe_smem[];
  const T* x = static_cast<const T*>(p.x);
  const T* wg = static_cast<const T*>(p.w_gate);
  const T* wu = static_cast<const T*>(p.w_up);
  uint64_t tile_m, tile_n;
  glu_grouped_tile((uint64_t)blockIdx.y * gridDim.x + blockIdx.x, gridDim.y, gridDim.x, kGroupM,
                   &tile_m, &tile_n);
  const int64_t m_blk = (int64_t)tile_m * kBM, n_blk = (int64_t)tile_n * kBN;
  const int tid = threadIdx.x;
  const uint32_t smem = smem_u32(probe_smem);
  const int64_t k_tiles = (p.k + kBK - 1) / kBK;
  StageLoader<T, LAYOUT> loader(x, wg, wu, p.m, p.n, p.k, m_blk, n_blk, tid);
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    loader.issue(smem + s * kStageBytes, glu_mma_k_left(p.k, (int64_t)s * kBK, kBK));
    cp_async_commit();
  }
  uint32_t write_stage = kStages - 1;
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    loader.issue(smem + write_stage * kStageBytes,
                 glu_mma_k_left(p.k, (kt + (kStages - 1)) * kBK, kBK));
    cp_async_commit();
    write_stage = (write_stage + 1 == (uint32_t)kStages) ? 0 : write_stage + 1;
    cp_async_wait<kStages - 2>();
    __syncthreads();
  }
  cp_async_wait<0>();
}

// bf16 values uniform in [-1, 1) from a hash of (seed, index).
__global__ void probe_fill_random(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ (uint32_t)(i >> 32) ^ seed * 0x9E3779B9u;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    const float v = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
    p[i] = (uint16_t)(__float_as_uint(v) >> 16);
  }
}

// Milliseconds of one launch (after one warm-up launch) of `launch`.
template <typename F>
static float time_ms(F launch) {
  launch();
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  launch();
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  CK(cudaGetLastError());
  float ms = 0.f;
  CK(cudaEventElapsedTime(&ms, a, b));
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return ms;
}

static void run() {
  int dev = 0, sms = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int grid = sms * 4;  // 4 waves of one block per SM
  float* out = nullptr;
  CK(cudaMalloc(&out, (size_t)grid * 512 * sizeof(float)));

  {  // P1
    const int iters = 20000;
    float ms = time_ms([&] { probe_hmma_regs<32, 256><<<grid, 256>>>(iters, out); });
    double fl = (double)grid * 8 * iters * 32 * 4096.0;
    std::printf("perf P1 probe_hmma_regs 8 warps/SM, 32 independent mma: %.1f TFLOP/s (%.3f ms)\n",
                fl / ms / 1e9, ms);
    ms = time_ms([&] { probe_hmma_regs<16, 512><<<grid, 512>>>(iters, out); });
    fl = (double)grid * 16 * iters * 16 * 4096.0;
    std::printf("perf P1 probe_hmma_regs 16 warps/SM, 16 independent mma: %.1f TFLOP/s (%.3f ms)\n",
                fl / ms / 1e9, ms);
  }
  {  // P2
    const int k_tiles = 2048;
    const double fl = (double)grid * k_tiles * 2.0 * GLU_MMA_BM * 2 * GLU_MMA_BN * GLU_MMA_BK;
    auto p2 = [&](auto kern, int threads, const char* what) {
      CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              GLU_MMA_SMEM_BYTES));
      float ms = time_ms([&] { kern<<<grid, threads, GLU_MMA_SMEM_BYTES>>>(k_tiles, out); });
      std::printf("perf %s: %.1f TFLOP/s (%.3f ms)\n", what, fl / ms / 1e9, ms);
    };
    p2(probe_mma_smem<2, GLU_LAYOUT_NK, false>, 256, "P2 probe_mma_smem NK, no barrier");
    p2(probe_mma_smem<2, GLU_LAYOUT_NK, true>, 256, "P2 probe_mma_smem NK, barrier per k-tile");
    p2(probe_mma_smem<2, GLU_LAYOUT_KN, true>, 256, "P2 probe_mma_smem KN, barrier per k-tile");
    p2(probe_mma_smem<4, GLU_LAYOUT_NK, false>, 512, "P2w16 probe_mma_smem NK, no barrier");
    p2(probe_mma_smem<4, GLU_LAYOUT_NK, true>, 512, "P2w16 probe_mma_smem NK, barrier per k-tile");
    p2(probe_mma_smem<4, GLU_LAYOUT_KN, false>, 512, "P2w16 probe_mma_smem KN, no barrier");
    p2(probe_mma_smem<4, GLU_LAYOUT_KN, true>, 512, "P2w16 probe_mma_smem KN, barrier per k-tile");
  }
  {  // P3
    const int64_t M = 4096, N = 11008, K = 4096;
    void *x, *wg, *wu, *o;
    CK(cudaMalloc(&x, M * K * 2));
    CK(cudaMalloc(&wg, N * K * 2));
    CK(cudaMalloc(&wu, N * K * 2));
    CK(cudaMalloc(&o, M * N * 2));
    CK(cudaMemset(x, 0x3A, M * K * 2));
    CK(cudaMemset(wg, 0x3A, N * K * 2));
    CK(cudaMemset(wu, 0x3A, N * K * 2));
    GluParams p{};
    p.x = x; p.w_gate = wg; p.w_up = wu; p.out = o; p.m = M; p.n = N; p.k = K;
    p.act = 0; p.beta = 1.f;
    const char* data = "";  // "" (constant inputs) or ", random data"
    auto p3 = [&](auto kern, int layout, const char* what, int smem_bytes,
                  int threads = GLU_MMA_THREADS) {
      CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
      p.layout = layout;
      const dim3 g((unsigned)((N + GLU_MMA_BN - 1) / GLU_MMA_BN),
                   (unsigned)((p.m + GLU_MMA_BM - 1) / GLU_MMA_BM));
      const double fl = 4.0 * p.m * N * K;
      float ms = time_ms([&] { kern<<<g, threads, smem_bytes>>>(p); });
      std::printf("perf P3 %s %lldx11008x4096%s: %.1f TFLOP/s (%.3f ms)\n", what,
                  (long long)p.m, data, fl / ms / 1e9, ms);
    };
    int optin = 0;
    CK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    // The production kernels, then P5-P8: the variants (same grid and tile;
    // mma_variants.cuh).
    auto p3_all = [&] {
      p3(fused_glu_mma_nk_bf16, GLU_LAYOUT_NK, "fused_glu_mma_nk_bf16", GLU_MMA_SMEM_BYTES);
      p3(fused_glu_mma_kn_bf16, GLU_LAYOUT_KN, "fused_glu_mma_kn_bf16", GLU_MMA_SMEM_BYTES);
      for (const MmaVariant& v : kMmaVariants)
        for (int layout : {GLU_LAYOUT_NK, GLU_LAYOUT_KN}) {
          char what[96];
          std::snprintf(what, sizeof what, "%s %s_%s_bf16 (%d threads, %u B smem)", v.probe,
                        v.name, layout ? "nk" : "kn", v.threads, v.smem);
          if (v.smem > (uint32_t)optin) {
            std::printf("perf %s: skipped, this GPU gives a block %d bytes of shared memory\n",
                        what, optin);
            continue;
          }
          p3(v.kern[layout], layout, what, (int)v.smem, v.threads);
        }
    };
    p3_all();
    // P4: the same launch with the loads only; "TFLOP/s" is the rate the
    // kernel would reach if the math were free. It needs few registers, so
    // it asks for more than half the shared memory to keep the kernel's
    // one block per SM.
    int smem4 = optin / 2 + 1024;
    if (smem4 < GLU_MMA_SMEM_BYTES) smem4 = GLU_MMA_SMEM_BYTES;
    if (smem4 > optin) smem4 = optin;
    p3(probe_mma_loads<__nv_bfloat16, GLU_LAYOUT_NK>, GLU_LAYOUT_NK, "P4 loads only (NK)", smem4);
    p3(probe_mma_loads<__nv_bfloat16, GLU_LAYOUT_KN>, GLU_LAYOUT_KN, "P4 loads only (KN)", smem4);
    // Again on random inputs in [-1, 1): the crate's bench (random data)
    // measured the 16-warp kernel at 290-306 TFLOP/s where P3 (constant
    // inputs) gave 375 (session 16): toggling operands cost power, and
    // clocks. These lines say whether a variant's gain survives that.
    probe_fill_random<<<1024, 256>>>(static_cast<uint16_t*>(x), (size_t)(M * K), 1u);
    probe_fill_random<<<1024, 256>>>(static_cast<uint16_t*>(wg), (size_t)(N * K), 2u);
    probe_fill_random<<<1024, 256>>>(static_cast<uint16_t*>(wu), (size_t)(N * K), 3u);
    CK(cudaGetLastError());
    data = ", random data";
    p3_all();
    // M = 64 (one row tile, 86 blocks for 132 SMs: the weights stream
    // through each SM's ring, so the ring depth shows), random data.
    p.m = 64;
    p3_all();
    CK(cudaFree(x)); CK(cudaFree(wg)); CK(cudaFree(wu)); CK(cudaFree(o));
  }
  CK(cudaFree(out));
}

}  // namespace mma_probe
