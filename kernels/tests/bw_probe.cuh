// Weight-streaming bandwidth probes for the decode kernel (included by
// skinny_selftest.cu after fused_glu_skinny.cu). They check nothing and never
// fail the self-test; they print "bw" lines that say which part of
// fused_glu_skinny's access pattern keeps it at ~71-75% of the H200's HBM
// bandwidth (issue #4 asks for >= 80%):
//
//   seq      every byte of the [2N, K] bf16 weight buffer once, 16-byte
//            __ldg loads, grid-stride, 4 loads in flight per thread: what a
//            plain streaming read reaches on this GPU (the ceiling).
//   cpasync  the skinny kernel's pattern without its math: 128 threads, a
//            ring of STAGES 16 KiB stages filled by cp.async.cg (+ the same
//            L2::256B prefetch hint), one wait + __syncthreads per stage, a
//            cheap read of the landed stage. Each block owns C columns: C
//            rows of the gate half and C rows of the up half of the [2N, K]
//            buffer (the NK layout), and each stage reads SEG bytes of each
//            of its 2C rows (2C * SEG = 16 KiB). SEG = 128 with C = 64 is
//            exactly fused_glu_skinny's tile; SEG > 128 reads longer
//            contiguous runs per row (DRAM page locality) from more blocks.
//            `splits` cuts K into slices on grid.y, like split-K.
//   ldg      the same tiles read straight into registers (no shared memory,
//            no barrier): two stages of loads in flight per thread.
//   bulk     (sm_90 only) the same ring filled by 1-D TMA bulk copies
//            (cp.async.bulk ... mbarrier::complete_tx), one copy of SEG
//            bytes per row, issued by warp 0: the Hopper way to stream.
//
// Reading the lines: cpasync(SEG 128, splits 1) ~ the skinny kernel's own
// "bench" line says the pattern, not the math, limits it. Then seq >>
// cpasync(128) but cpasync(512) ~ seq: page locality, so give the kernel
// longer per-row runs (BK = 256, fewer columns per block); bulk >> cpasync
// at the same SEG: the cp.async issue rate / occupancy, so stream with TMA
// on sm_90; splits > 1 >> splits 1: too few blocks in flight.
#pragma once
#include "../glu_hopper.cuh"

namespace bw_probe {

constexpr int kThreads = 128;
constexpr int kStageBytes = 16384;

__device__ __forceinline__ uint32_t fold(uint4 v) { return v.x ^ v.y ^ v.z ^ v.w; }

// `out` is written only if the folded data hits a value a memset fill never
// produces, which keeps every load alive without a store per thread.
__global__ void __launch_bounds__(256) seq_read(const uint4* __restrict__ p, int64_t n16,
                                                uint32_t* out) {
  uint32_t acc = 0;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) v[u] = __ldg(p + i + u * stride);
#pragma unroll
    for (int u = 0; u < 4; ++u) acc ^= fold(v[u]);
  }
  for (; i < n16; i += stride) acc ^= fold(__ldg(p + i));
  if (acc == 0x9E3779B9u) out[0] = acc;
}

// Global address of 16-byte chunk `id` (0..1023) of stage `kt` of the block
// that owns columns [col0, col0 + C) of an N-column weight pair stored as
// [2N rows][row_bytes]. Chunks run along a row first (SEG / 16 per row).
template <int SEG>
__device__ __forceinline__ const unsigned char* chunk_src(const unsigned char* w, int64_t n,
                                                          int64_t row_bytes, int64_t col0,
                                                          int64_t kt, int id) {
  constexpr int kPerRow = SEG / 16, kC = kStageBytes / SEG / 2;
  const int r = id / kPerRow, c = id % kPerRow;
  const int64_t grow = r < kC ? col0 + r : n + col0 + (r - kC);
  return w + grow * row_bytes + kt * SEG + c * 16;
}

template <int SEG, int STAGES>
__global__ void __launch_bounds__(kThreads) rows_cpasync(const unsigned char* __restrict__ w,
                                                         int64_t n, int64_t row_bytes,
                                                         uint32_t* out) {
  extern __shared__ __align__(128) unsigned char bw_smem[];
  constexpr int kC = kStageBytes / SEG / 2, kChunks = kStageBytes / 16;
  const int64_t col0 = (int64_t)blockIdx.x * kC;
  const int64_t kt_total = row_bytes / SEG;
  const int64_t kt_per = (kt_total + gridDim.y - 1) / gridDim.y;
  const int64_t kt0 = blockIdx.y * kt_per;
  const int64_t kt1 = kt0 + kt_per < kt_total ? kt0 + kt_per : kt_total;
  const int tid = threadIdx.x;
  const uint32_t base = smem_u32(bw_smem);
  auto issue = [&](int64_t kt) {
    if (kt < kt1) {
      const uint32_t dst = base + (uint32_t)((kt - kt0) % STAGES) * kStageBytes;
#pragma unroll
      for (int j = 0; j < kChunks / kThreads; ++j) {
        const int id = tid + j * kThreads;
        const unsigned char* src = chunk_src<SEG>(w, n, row_bytes, col0, kt, id);
#if GLU_SM80
        asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;\n" ::"r"(dst + id * 16),
                     "l"(src)
                     : "memory");
#endif
      }
    }
    cp_async_commit();  // always: group j holds stage j (possibly empty)
  };
  for (int s = 0; s < STAGES - 1; ++s) issue(kt0 + s);
  uint32_t acc = 0;
  for (int64_t kt = kt0; kt < kt1; ++kt) {
#if GLU_SM80
    asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 2) : "memory");
#endif
    __syncthreads();  // stage kt landed for all; stage kt-1 read by all
    issue(kt + STAGES - 1);
    const uint4* st = reinterpret_cast<const uint4*>(bw_smem + ((kt - kt0) % STAGES) * kStageBytes);
#pragma unroll
    for (int j = 0; j < kChunks / kThreads; ++j) acc ^= fold(st[(tid * 8 + j * 129) % kChunks]);
  }
  if (acc == 0x9E3779B9u) out[0] = acc;
}

template <int SEG>
__global__ void __launch_bounds__(kThreads) rows_ldg(const unsigned char* __restrict__ w, int64_t n,
                                                     int64_t row_bytes, uint32_t* out) {
  constexpr int kC = kStageBytes / SEG / 2, kPer = kStageBytes / 16 / kThreads;
  const int64_t col0 = (int64_t)blockIdx.x * kC;
  const int64_t kt_total = row_bytes / SEG;
  const int64_t kt_per = (kt_total + gridDim.y - 1) / gridDim.y;
  const int64_t kt0 = blockIdx.y * kt_per;
  const int64_t kt1 = kt0 + kt_per < kt_total ? kt0 + kt_per : kt_total;
  uint32_t acc = 0;
  int64_t kt = kt0;
  for (; kt + 1 < kt1; kt += 2) {
    uint4 v[2 * kPer];
#pragma unroll
    for (int j = 0; j < 2 * kPer; ++j)
      v[j] = __ldg(reinterpret_cast<const uint4*>(chunk_src<SEG>(
          w, n, row_bytes, col0, kt + j / kPer, threadIdx.x + (j % kPer) * kThreads)));
#pragma unroll
    for (int j = 0; j < 2 * kPer; ++j) acc ^= fold(v[j]);
  }
  for (; kt < kt1; ++kt)
#pragma unroll
    for (int j = 0; j < kPer; ++j)
      acc ^= fold(__ldg(reinterpret_cast<const uint4*>(
          chunk_src<SEG>(w, n, row_bytes, col0, kt, threadIdx.x + j * kThreads))));
  if (acc == 0x9E3779B9u) out[0] = acc;
}

// 1-D bulk copy global -> shared of `bytes` (multiple of 16, both addresses
// 16-byte aligned), completing on `bar`.
__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes,
                                          uint32_t bar) {
#if GLU_HOPPER
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
          dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
#endif
}

template <int SEG, int STAGES>
__global__ void __launch_bounds__(kThreads) rows_bulk(const unsigned char* __restrict__ w,
                                                      int64_t n, int64_t row_bytes,
                                                      uint32_t* out) {
#if GLU_HOPPER
  extern __shared__ __align__(128) unsigned char bw_smem[];
  __shared__ __align__(8) uint64_t full[STAGES];
  constexpr int kC = kStageBytes / SEG / 2, kRows = 2 * kC;
  const int64_t col0 = (int64_t)blockIdx.x * kC;
  const int64_t kt_total = row_bytes / SEG;
  const int64_t kt_per = (kt_total + gridDim.y - 1) / gridDim.y;
  const int64_t kt0 = blockIdx.y * kt_per;
  const int64_t kt1 = kt0 + kt_per < kt_total ? kt0 + kt_per : kt_total;
  const int tid = threadIdx.x;
  const uint32_t base = smem_u32(bw_smem);
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) mbar_init(smem_u32(&full[s]), 1);
    mbar_init_fence();
  }
  __syncthreads();
  // Warp 0 fills stage (kt - kt0) % STAGES: lane 0 arms the barrier with the
  // stage's byte count, then each lane copies rows lane, lane + 32, ...
  auto issue = [&](int64_t kt) {
    if (kt >= kt1 || tid >= 32) return;
    const int s = (int)((kt - kt0) % STAGES);
    const uint32_t bar = smem_u32(&full[s]);
    if (tid == 0) mbar_arrive_expect_tx(bar, kStageBytes);
    __syncwarp();
    for (int r = tid; r < kRows; r += 32) {
      const int64_t grow = r < kC ? col0 + r : n + col0 + (r - kC);
      bulk_load(base + s * kStageBytes + r * SEG, w + grow * row_bytes + kt * SEG, SEG, bar);
    }
  };
  for (int s = 0; s < STAGES - 1; ++s) issue(kt0 + s);
  uint32_t acc = 0;
  for (int64_t kt = kt0; kt < kt1; ++kt) {
    issue(kt + STAGES - 1);  // stage (kt - 1) % STAGES: read by all before the last barrier
    const int64_t i = kt - kt0;
    mbar_wait(smem_u32(&full[i % STAGES]), (uint32_t)((i / STAGES) & 1));
    const uint4* st = reinterpret_cast<const uint4*>(bw_smem + (i % STAGES) * kStageBytes);
#pragma unroll
    for (int j = 0; j < kStageBytes / 16 / kThreads; ++j)
      acc ^= fold(st[(tid * 8 + j * 129) % (kStageBytes / 16)]);
    __syncthreads();
  }
  if (acc == 0x9E3779B9u) out[0] = acc;
#endif
}

struct Ctx {
  const unsigned char* w;
  int64_t n, row_bytes;
  uint32_t* out;
  double copy_bw;  // measured device-to-device copy, GB/s of read + write
  int cc_major;
};

// Average time of `iters` back-to-back launches of `launch` after 3 warm-ups.
template <typename F>
static double time_us(F launch, int iters = 20) {
  for (int i = 0; i < 3; ++i) launch();
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < iters; ++i) launch();
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  CK(cudaGetLastError());
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return 1e3 * ms / iters;
}

static void report(const Ctx& c, const char* what, int seg, int stages, int splits, int64_t blocks,
                   int occ, double us) {
  const double bytes = 2.0 * c.n * c.row_bytes, gbs = bytes / us * 1e-3;
  std::printf("bw %-8s N=%-5lld seg=%-4d stages=%d splits=%d blocks=%-6lld occ=%-2d: %8.2f us %6.0f GB/s "
              "(%.0f%% of 4.8 TB/s, %.0f%% of copy/2)\n",
              what, (long long)c.n, seg, stages, splits, (long long)blocks, occ, us, gbs,
              100.0 * gbs / 4800.0, 100.0 * gbs / (c.copy_bw / 2));
}

template <int SEG, int STAGES>
static void run_cpasync(const Ctx& c, int splits) {
  auto k = rows_cpasync<SEG, STAGES>;
  const int smem = STAGES * kStageBytes;
  CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int occ = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, kThreads, smem));
  const dim3 grid((unsigned)(c.n / (kStageBytes / SEG / 2)), (unsigned)splits);
  const double us = time_us([&] { k<<<grid, kThreads, smem>>>(c.w, c.n, c.row_bytes, c.out); });
  report(c, "cpasync", SEG, STAGES, splits, (int64_t)grid.x * grid.y, occ, us);
}

template <int SEG>
static void run_ldg(const Ctx& c, int splits) {
  auto k = rows_ldg<SEG>;
  int occ = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, kThreads, 0));
  const dim3 grid((unsigned)(c.n / (kStageBytes / SEG / 2)), (unsigned)splits);
  const double us = time_us([&] { k<<<grid, kThreads>>>(c.w, c.n, c.row_bytes, c.out); });
  report(c, "ldg", SEG, 0, splits, (int64_t)grid.x * grid.y, occ, us);
}

template <int SEG, int STAGES>
static void run_bulk(const Ctx& c, int splits) {
  if (c.cc_major < 9) return;
  auto k = rows_bulk<SEG, STAGES>;
  const int smem = STAGES * kStageBytes;
  CK(cudaFuncSetAttribute((const void*)k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int occ = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, kThreads, smem));
  const dim3 grid((unsigned)(c.n / (kStageBytes / SEG / 2)), (unsigned)splits);
  const double us = time_us([&] { k<<<grid, kThreads, smem>>>(c.w, c.n, c.row_bytes, c.out); });
  report(c, "bulk", SEG, STAGES, splits, (int64_t)grid.x * grid.y, occ, us);
}

// All probes for a bf16 weight pair [2N, 4096]; N a multiple of 64.
static void run_all(int64_t n, double copy_bw, int sms) {
  int dev = 0, major = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  const int64_t row_bytes = 4096 * 2, bytes = 2 * n * row_bytes;
  unsigned char* w = nullptr;
  uint32_t* out = nullptr;
  CK(cudaMalloc(&w, bytes));
  CK(cudaMalloc(&out, 16));
  CK(cudaMemset(w, 0x11, bytes));
  const Ctx c{w, n, row_bytes, out, copy_bw, major};
  {
    const int64_t n16 = bytes / 16;
    const int blocks = sms * 8;
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, seq_read, 256, 0));
    const double us = time_us(
        [&] { seq_read<<<blocks, 256>>>(reinterpret_cast<const uint4*>(w), n16, out); });
    report(c, "seq", 16, 0, 1, blocks, occ, us);
  }
  run_cpasync<128, 4>(c, 1);  // fused_glu_skinny's tile (C = 64, BK = 64)
  run_cpasync<128, 4>(c, 2);
  run_cpasync<128, 4>(c, 4);
  run_cpasync<128, 6>(c, 1);
  run_cpasync<256, 4>(c, 1);
  run_cpasync<512, 4>(c, 1);
  run_cpasync<1024, 4>(c, 1);
  run_ldg<128>(c, 1);
  run_ldg<128>(c, 2);
  run_ldg<512>(c, 1);
  run_bulk<128, 4>(c, 1);
  run_bulk<128, 4>(c, 2);
  run_bulk<512, 4>(c, 1);
  run_bulk<1024, 4>(c, 1);
  run_bulk<1024, 6>(c, 1);
  CK(cudaFree(w));
  CK(cudaFree(out));
}

}  // namespace bw_probe
