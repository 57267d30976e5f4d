// A host emulator for the CUDA subset the sm_80 kernels use, so that the
// kernels' own source runs on a machine without a GPU (tests only; nothing
// here is part of the crate or of a fatbin).
//
// What it models
//   * a block's threads are fibers on one OS thread, switched only at the
//     synchronisation points: __syncthreads, the warp-wide .aligned
//     instructions (ldmatrix, mma), and thread exit. Which ready fiber runs
//     next is round-robin or seeded-random (Config::random_sched), so warps
//     interleave differently between barriers from run to run;
//   * ldmatrix (x4, .trans) and mma.sync (m16n8k16 bf16/f16, m16n8k8 tf32)
//     as warp collectives: every lane's operands are gathered and the result
//     is scattered with the fragment layouts of the PTX ISA, written here
//     from the ISA's tables independently of the kernels' own helpers. All
//     32 lanes must arrive at the same instruction, or the run fails
//     (divergent .aligned instruction);
//   * cp.async with zero-fill as per-thread commit groups. The 16 bytes are
//     read at issue and land in shared memory either at once
//     (Config::cp_async_late = false) or only when the issuing thread's
//     cp.async.wait_group releases the group (true): a stage read before
//     its wait (or before the barrier after it) then reads the poison, and
//     a stage refilled while another warp still reads it is overwritten
//     early;
//   * dynamic shared memory: a buffer per launch that ends at a no-access
//     page and is filled with 0xFF (NaN in bf16, f16 and f32) before each
//     block. Shared-window addresses (cvta) are offsets into it; every
//     ldmatrix / cp.async / ld.shared address is checked against its size
//     and alignment. Static __shared__ variables are function statics
//     (one block runs at a time);
//   * global memory: buffers from emu::Buffer end at a no-access page (a
//     read or write past the end faults), and every cp.async source, also
//     one with src-size 0, must lie inside a live buffer.
//   * blocks run one after another, in order or shuffled
//     (Config::shuffle_blocks): cross-block protocols (tickets, the last
//     block reduces) see different arrival orders.
// What it does not model: timing, memory-ordering weakness between blocks
// (blocks do not overlap), bank conflicts, the tensor cores' internal
// rounding (products are summed in double and added to C once, which is
// inside the error model of kernels/tests/selftest_ref.h).
//
// Build: g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -I kernels/emu/include
//        -I kernels/emu -I kernels <test>.cpp  (the include directory holds
// host stand-ins for <cuda_fp16.h> and <cuda_bf16.h>). _FORTIFY_SOURCE must
// be off: its longjmp check rejects the switch between fiber stacks.
#pragma once
#ifndef GLU_EMU
#define GLU_EMU 1
#endif

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <vector>

#if defined(_FORTIFY_SOURCE) && _FORTIFY_SOURCE > 0
#error "build the emulator with -U_FORTIFY_SOURCE (its longjmp check rejects fiber switches)"
#endif

// ---- CUDA keywords and built-in types ---------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) alignas(n)

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }

// CUDA's integer and float min/max overloads.
#define GLU_EMU_MINMAX(T)                            \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
GLU_EMU_MINMAX(int)
GLU_EMU_MINMAX(unsigned)
GLU_EMU_MINMAX(long)
GLU_EMU_MINMAX(unsigned long)
GLU_EMU_MINMAX(long long)
GLU_EMU_MINMAX(unsigned long long)
#undef GLU_EMU_MINMAX

// The running fiber's coordinates (the scheduler sets them on every switch).
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

inline float __uint_as_float(unsigned u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  memcpy(&u, &f, 4);
  return u;
}

namespace emu {

// ---- configuration, failure ---------------------------------------------------
struct Config {
  bool random_sched = false;   // pick the next ready fiber at random
  bool cp_async_late = true;   // cp.async lands at its wait_group (else at issue)
  bool shuffle_blocks = false; // run the blocks in a random order
  uint64_t seed = 1;
};
inline Config g_cfg;

// What ran (printed by the tests, so a run shows it exercised the kernel).
struct Stats {
  uint64_t launches = 0, blocks = 0, barriers = 0, ldmatrix = 0, mma = 0, cp_async = 0,
           zero_fill = 0;
};
inline Stats g_stats;
inline std::string g_label;  // what is being launched (printed on failure)

[[noreturn]] inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] inline void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "emu: FAIL [%s] block (%u,%u,%u) thread %u: ", g_label.c_str(), blockIdx.x,
          blockIdx.y, blockIdx.z, threadIdx.x);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  fflush(stderr);
  std::_Exit(1);
}

// ---- global memory --------------------------------------------------------------
struct Region {
  uintptr_t lo, hi;  // [lo, hi)
};
inline std::vector<Region> g_global;  // live device buffers

// A device buffer whose last byte is followed by a no-access page; the
// start is 16-byte aligned (so up to 15 bytes of slack before the page).
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes) : bytes_(bytes ? bytes : 1) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t body = (bytes_ + 15 + page - 1) / page * page;
    map_bytes_ = body + 2 * page;
    char* m = (char*)mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("mmap of %zu bytes failed", map_bytes_);
    map_ = m;
    mprotect(m, page, PROT_NONE);
    mprotect(m + page + body, page, PROT_NONE);
    const uintptr_t end = (uintptr_t)(m + page + body);
    ptr_ = (char*)((end - bytes_) & ~(uintptr_t)15);
    g_global.push_back({(uintptr_t)ptr_, (uintptr_t)ptr_ + bytes_});
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    swap(o);
    return *this;
  }
  ~Buffer() {
    if (!map_) return;
    for (size_t i = 0; i < g_global.size(); ++i)
      if (g_global[i].lo == (uintptr_t)ptr_) {
        g_global.erase(g_global.begin() + (long)i);
        break;
      }
    munmap(map_, map_bytes_);
  }
  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void swap(Buffer& o) {
    std::swap(map_, o.map_);
    std::swap(map_bytes_, o.map_bytes_);
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
  }
  char* map_ = nullptr;
  size_t map_bytes_ = 0;
  char* ptr_ = nullptr;
  size_t bytes_ = 0;
};

inline bool in_global(const void* p, size_t n) {
  const uintptr_t a = (uintptr_t)p;
  for (const Region& r : g_global)
    if (a >= r.lo && a + n <= r.hi) return true;
  return false;
}
inline void check_global(const void* p, size_t n, const char* what) {
  if (!in_global(p, n)) fail("%s: %zu bytes at %p are outside every device buffer", what, n, p);
}

// ---- shared memory -----------------------------------------------------------------
struct Smem {
  char* map = nullptr;
  size_t map_bytes = 0;
  char* base = nullptr;  // dynamic shared memory of the running launch
  size_t bytes = 0;
};
inline Smem g_smem;

inline void smem_setup(size_t bytes) {
  if (g_smem.map) munmap(g_smem.map, g_smem.map_bytes);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t body = (bytes + 4095 + page) / page * page;
  g_smem.map_bytes = body + page;
  g_smem.map = (char*)mmap(nullptr, g_smem.map_bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_smem.map == MAP_FAILED) fail("mmap of shared memory failed");
  mprotect(g_smem.map + body, page, PROT_NONE);
  // End at the no-access page, the start 128-byte aligned.
  g_smem.base = (char*)(((uintptr_t)(g_smem.map + body) - bytes) & ~(uintptr_t)127);
  g_smem.bytes = bytes;
}
inline unsigned char* dynamic_smem() { return (unsigned char*)g_smem.base; }
inline uint32_t smem_addr(const void* p) {
  const uintptr_t a = (uintptr_t)p, b = (uintptr_t)g_smem.base;
  if (a < b || a > b + g_smem.bytes) fail("cvta to shared of a pointer outside dynamic smem");
  return (uint32_t)(a - b);
}
inline char* smem_at(uint32_t addr, size_t n, size_t align, const char* what) {
  if (addr % align) fail("%s: shared address %u not %zu-byte aligned", what, addr, align);
  if ((size_t)addr + n > g_smem.bytes)
    fail("%s: shared bytes [%u, %zu) past the %zu-byte dynamic allocation", what, addr,
         (size_t)addr + n, g_smem.bytes);
  return g_smem.base + addr;
}

// ---- fibers and the block scheduler ------------------------------------------------
enum class St { Ready, Bar, Warp, Done };

struct Copy {
  uint32_t dst;
  bool zero;
  unsigned char data[16];
};

struct Fiber {
  jmp_buf jb;
  ucontext_t uc;
  char* stack = nullptr;
  bool started = false;
  St st = St::Ready;
  uint3 tid{0, 0, 0};
  std::vector<Copy> open;               // cp.async not yet committed
  std::deque<std::vector<Copy>> groups; // committed, not yet landed
};

enum class Op { None, Ldm, LdmT, MmaBf16, MmaF16, MmaTf32 };

struct Warp {
  Op op = Op::None;
  int arrived = 0;
  uint32_t in_u[32][6];  // per lane: ldmatrix address, or mma a0..a3, b0, b1
  float in_c[32][4];     // mma accumulators
  uint32_t out_u[32][4];
  float out_f[32][4];
};

constexpr size_t kStack = 256 * 1024;
inline std::vector<Fiber> g_fibers;
inline std::vector<Warp> g_warps;
inline Fiber* g_cur = nullptr;
inline jmp_buf g_sched;
inline const std::function<void()>* g_body = nullptr;
inline int g_bar_arrived = 0;
inline std::mt19937_64 g_rng;

inline void land(Fiber& f, const std::vector<Copy>& g) {
  for (const Copy& c : g) {
    char* d = smem_at(c.dst, 16, 16, "cp.async (landing)");
    if (c.zero)
      memset(d, 0, 16);
    else
      memcpy(d, c.data, 16);
  }
  (void)f;
}

inline void set_ids(const Fiber& f) { threadIdx = f.tid; }

[[noreturn]] inline void fiber_entry() {
  (*g_body)();
  g_cur->st = St::Done;
  _longjmp(g_sched, 1);
}

// Back to the scheduler; returns when this fiber is resumed.
inline void yield() {
  Fiber* f = g_cur;
  if (_setjmp(f->jb) == 0) _longjmp(g_sched, 1);
  set_ids(*f);
}

inline void resume(Fiber& f) {
  g_cur = &f;
  set_ids(f);
  if (_setjmp(g_sched) == 0) {
    if (!f.started) {
      f.started = true;
      getcontext(&f.uc);
      f.uc.uc_stack.ss_sp = f.stack;
      f.uc.uc_stack.ss_size = kStack;
      f.uc.uc_link = nullptr;
      makecontext(&f.uc, (void (*)())fiber_entry, 0);
      setcontext(&f.uc);
    }
    _longjmp(f.jb, 1);
  }
}

inline int live_threads() {
  int n = 0;
  for (const Fiber& f : g_fibers) n += f.st != St::Done;
  return n;
}

// Releases the block barrier once every live thread waits at it.
inline void try_release_barrier() {
  if (g_bar_arrived == 0 || g_bar_arrived < live_threads()) return;
  for (Fiber& f : g_fibers)
    if (f.st == St::Bar) f.st = St::Ready;
  g_bar_arrived = 0;
}

inline void syncthreads() {
  ++g_stats.barriers;
  g_cur->st = St::Bar;
  ++g_bar_arrived;
  try_release_barrier();
  if (g_cur->st == St::Bar) yield();
}

inline void run_block(unsigned nthreads) {
  if (g_fibers.size() < nthreads) {
    const size_t old = g_fibers.size();
    g_fibers.resize(nthreads);
    for (size_t i = old; i < nthreads; ++i) {
      char* m = (char*)mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) fail("mmap of a fiber stack failed");
      mprotect(m, 4096, PROT_NONE);  // overflow faults
      g_fibers[i].stack = m + 4096;
    }
  }
  for (unsigned i = 0; i < g_fibers.size(); ++i) {
    Fiber& f = g_fibers[i];
    f.started = false;
    f.st = i < nthreads ? St::Ready : St::Done;
    f.tid = {i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y)};
    f.open.clear();
    f.groups.clear();
  }
  g_warps.assign((nthreads + 31) / 32, Warp{});
  g_bar_arrived = 0;
  unsigned next = 0;
  for (;;) {
    // Pick a ready fiber.
    int pick = -1;
    if (g_cfg.random_sched) {
      int ready = 0;
      for (unsigned i = 0; i < nthreads; ++i) ready += g_fibers[i].st == St::Ready;
      if (ready) {
        int k = (int)(g_rng() % (uint64_t)ready);
        for (unsigned i = 0; i < nthreads; ++i)
          if (g_fibers[i].st == St::Ready && k-- == 0) {
            pick = (int)i;
            break;
          }
      }
    } else {
      for (unsigned j = 0; j < nthreads; ++j) {
        const unsigned i = (next + j) % nthreads;
        if (g_fibers[i].st == St::Ready) {
          pick = (int)i;
          break;
        }
      }
    }
    if (pick < 0) {
      if (live_threads() == 0) break;
      try_release_barrier();
      bool any = false;
      for (unsigned i = 0; i < nthreads; ++i) any |= g_fibers[i].st == St::Ready;
      if (!any) {
        int bar = 0, warp = 0;
        for (unsigned i = 0; i < nthreads; ++i) {
          bar += g_fibers[i].st == St::Bar;
          warp += g_fibers[i].st == St::Warp;
        }
        fail("deadlock: %d threads at __syncthreads, %d at a warp collective, %d live", bar,
             warp, live_threads());
      }
      continue;
    }
    next = (unsigned)pick + 1;
    Fiber& f = g_fibers[pick];
    resume(f);
    if (f.st == St::Done) {
      // A warp collective that waits for this lane can never complete.
      Warp& w = g_warps[pick / 32];
      if (w.arrived) fail("thread %d exited while its warp waits at a collective", pick);
      try_release_barrier();
    }
  }
}

// Runs `body` (one kernel invocation, already bound to its arguments) on
// every thread of every block of `grid` x `block`, with `smem_bytes` of
// dynamic shared memory.
inline void launch(const std::string& label, dim3 grid, dim3 block, size_t smem_bytes,
                   const std::function<void()>& body) {
  g_label = label;
  g_rng.seed(g_cfg.seed);
  smem_setup(smem_bytes);
  g_body = &body;
  gridDim = grid;
  blockDim = block;
  const unsigned nthreads = block.x * block.y * block.z;
  if (nthreads == 0 || nthreads > 1024) fail("block of %u threads", nthreads);
  std::vector<uint3> order;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) order.push_back({x, y, z});
  if (g_cfg.shuffle_blocks) std::shuffle(order.begin(), order.end(), g_rng);
  ++g_stats.launches;
  for (const uint3& b : order) {
    ++g_stats.blocks;
    blockIdx = b;
    memset(g_smem.base, 0xff, g_smem.bytes);
    run_block(nthreads);
  }
  g_body = nullptr;
}

// ---- warp collectives ---------------------------------------------------------------------
inline unsigned lane_of_cur() {
  const unsigned i = (unsigned)(g_cur - g_fibers.data());
  return i % 32;
}

// Computes a completed collective for all 32 lanes.
inline float decode16(uint32_t bits, Op op) {
  if (op == Op::MmaBf16) {
    return __uint_as_float(bits << 16);
  }
  _Float16 h;
  const uint16_t b = (uint16_t)bits;
  memcpy(&h, &b, 2);
  return (float)h;
}

inline void complete(Warp& w) {
  const Op op = w.op;
  if (op == Op::Ldm || op == Op::LdmT) {
    ++g_stats.ldmatrix;
    uint16_t m[4][8][8];
    for (int i = 0; i < 4; ++i)
      for (int r = 0; r < 8; ++r)
        memcpy(m[i][r], smem_at(w.in_u[8 * i + r][0], 16, 16, "ldmatrix row"), 16);
    for (int l = 0; l < 32; ++l)
      for (int i = 0; i < 4; ++i) {
        uint16_t lo, hi;
        if (op == Op::Ldm) {
          lo = m[i][l / 4][2 * (l % 4)];
          hi = m[i][l / 4][2 * (l % 4) + 1];
        } else {
          lo = m[i][2 * (l % 4)][l / 4];
          hi = m[i][2 * (l % 4) + 1][l / 4];
        }
        w.out_u[l][i] = (uint32_t)lo | ((uint32_t)hi << 16);
      }
    return;
  }
  // mma: rebuild A (16 x KK), B (KK x 8), C (16 x 8) from the fragments.
  ++g_stats.mma;
  const int KK = op == Op::MmaTf32 ? 8 : 16;
  double A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    const uint32_t* a = w.in_u[l];
    if (op == Op::MmaTf32) {
      auto tf = [](uint32_t u) { return (double)__uint_as_float(u & 0xffffe000u); };
      A[g][t] = tf(a[0]);
      A[g + 8][t] = tf(a[1]);
      A[g][t + 4] = tf(a[2]);
      A[g + 8][t + 4] = tf(a[3]);
      B[t][g] = tf(a[4]);
      B[t + 4][g] = tf(a[5]);
    } else {
      auto lo = [op](uint32_t u) { return (double)decode16(u & 0xffffu, op); };
      auto hi = [op](uint32_t u) { return (double)decode16(u >> 16, op); };
      A[g][2 * t] = lo(a[0]);
      A[g][2 * t + 1] = hi(a[0]);
      A[g + 8][2 * t] = lo(a[1]);
      A[g + 8][2 * t + 1] = hi(a[1]);
      A[g][2 * t + 8] = lo(a[2]);
      A[g][2 * t + 9] = hi(a[2]);
      A[g + 8][2 * t + 8] = lo(a[3]);
      A[g + 8][2 * t + 9] = hi(a[3]);
      B[2 * t][g] = lo(a[4]);
      B[2 * t + 1][g] = hi(a[4]);
      B[2 * t + 8][g] = lo(a[5]);
      B[2 * t + 9][g] = hi(a[5]);
    }
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    for (int e = 0; e < 4; ++e) {
      const int r = g + (e >= 2 ? 8 : 0), c = 2 * t + (e & 1);
      double s = 0;
      for (int k = 0; k < KK; ++k) s += A[r][k] * B[k][c];
      w.out_f[l][e] = (float)((double)w.in_c[l][e] + s);
    }
  }
}

// Lane arrival at a warp-wide .aligned instruction.
inline void warp_collective(Op op) {
  const unsigned idx = (unsigned)(g_cur - g_fibers.data());
  Warp& w = g_warps[idx / 32];
  const unsigned nthreads = blockDim.x * blockDim.y * blockDim.z;
  if (idx / 32 * 32 + 32 > nthreads) fail("warp collective in a partial warp");
  if (w.arrived == 0) {
    w.op = op;
  } else if (w.op != op) {
    fail("divergent warp: lanes at different .aligned instructions (%d vs %d)", (int)w.op,
         (int)op);
  }
  ++w.arrived;
  if (w.arrived == 32) {
    complete(w);
    w.arrived = 0;
    for (unsigned i = idx / 32 * 32; i < idx / 32 * 32 + 32; ++i)
      if (g_fibers[i].st == St::Warp) g_fibers[i].st = St::Ready;
    return;
  }
  for (unsigned i = idx / 32 * 32; i < idx / 32 * 32 + 32; ++i)
    if (g_fibers[i].st == St::Done) fail("warp collective with an exited lane");
  g_cur->st = St::Warp;
  yield();
}

inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr, bool trans) {
  const unsigned l = lane_of_cur();
  Warp& w = g_warps[(unsigned)(g_cur - g_fibers.data()) / 32];
  w.in_u[l][0] = addr;
  warp_collective(trans ? Op::LdmT : Op::Ldm);
  for (int i = 0; i < 4; ++i) r[i] = w.out_u[l][i];
}

inline void mma(Op op, float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const unsigned l = lane_of_cur();
  Warp& w = g_warps[(unsigned)(g_cur - g_fibers.data()) / 32];
  for (int i = 0; i < 4; ++i) {
    w.in_u[l][i] = a[i];
    w.in_c[l][i] = d[i];
  }
  w.in_u[l][4] = b0;
  w.in_u[l][5] = b1;
  warp_collective(op);
  for (int i = 0; i < 4; ++i) d[i] = w.out_f[l][i];
}

// ---- cp.async ------------------------------------------------------------------------------
inline void cp_async16(uint32_t dst, const void* src, bool pred) {
  smem_at(dst, 16, 16, "cp.async destination");
  ++g_stats.cp_async;
  g_stats.zero_fill += !pred;
  Copy c;
  c.dst = dst;
  c.zero = !pred;
  // src-size 0 reads nothing, but the kernels promise an in-buffer address.
  check_global(src, pred ? 16 : 1, pred ? "cp.async source" : "cp.async zero-fill address");
  if (pred) {
    if ((uintptr_t)src % 16) fail("cp.async source %p not 16-byte aligned", src);
    memcpy(c.data, src, 16);
  }
  if (g_cfg.cp_async_late) {
    g_cur->open.push_back(c);
  } else {
    land(*g_cur, {c});
  }
}
inline void cp_async_commit() {
  g_cur->groups.push_back(std::move(g_cur->open));
  g_cur->open.clear();
}
inline void cp_async_wait(int n) {
  Fiber& f = *g_cur;
  while ((int)f.groups.size() > n) {
    land(f, f.groups.front());
    f.groups.pop_front();
  }
}

inline uint32_t ld_shared_u32(uint32_t addr) {
  uint32_t v;
  memcpy(&v, smem_at(addr, 4, 4, "ld.shared.u32"), 4);
  return v;
}

}  // namespace emu

// ---- CUDA device functions the kernels call ------------------------------------------
inline void __syncthreads() { emu::syncthreads(); }
inline void __threadfence() {}
inline uint32_t __cvta_generic_to_shared(const void* p) { return emu::smem_addr(p); }
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  emu::check_global(p, 4, "atomicAdd");
  const unsigned old = *p;
  *p = old + v;
  return old;
}
template <typename T>
inline T __ldcg(const T* p) {
  emu::check_global(p, sizeof(T), "__ldcg");
  return *p;
}
template <typename T>
inline void __stcg(T* p, T v) {
  emu::check_global(p, sizeof(T), "__stcg");
  *p = v;
}
