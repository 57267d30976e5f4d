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
#include <memory>
#include <tuple>
#include <utility>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_fp16.h>  // the emulator's stand-in (include/): emu_half_table

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
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define __cluster_dims__(...)

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
inline float __int_as_float(int i) { return __uint_as_float((unsigned)i); }
inline unsigned __float_as_uint(float f) {
  unsigned u;
  memcpy(&u, &f, 4);
  return u;
}

namespace emu {

// ---- configuration, failure ---------------------------------------------------
struct Config {
  bool random_sched = false;   // pick the next ready fiber at random
  bool cp_async_late = true;   // cp.async and TMA land late (at the wait / a later step), else at issue
  bool wgmma_late = true;      // wgmma reads its operands at the retiring wait_group, else at issue
  bool window = false;         // dynamic smem starts at a random 128-byte multiple below 1024
  bool shuffle_blocks = false; // run the blocks in a random order
  uint64_t seed = 1;
};
inline Config g_cfg;

// The three settings the tests rotate through (emu_harness.h set_round, the
// stand-in driver per launch): 0 round-robin, async copies landing at their
// wait (or at a random later step: TMA), wgmma reading at its wait, dynamic
// smem at shared address 0; 1 random schedule, copies landing at issue
// (wgmma still reading late: the release-sensitive mix), blocks shuffled
// (concurrent launches: random CTA priorities), smem at a random 128-byte
// offset; 2 random, copies landing late and wgmma reading at issue (the mix
// that shows a missing or wrong full-barrier wait), shuffled, offset.
inline void apply_round(int r, uint64_t seed) {
  g_cfg.random_sched = r != 0;
  g_cfg.cp_async_late = r != 1;
  g_cfg.wgmma_late = r != 2;
  g_cfg.shuffle_blocks = r != 0;
  g_cfg.window = r != 0;
  g_cfg.seed = seed;
}

// What ran (printed by the tests, so a run shows it exercised the kernel).
struct Stats {
  uint64_t launches = 0, blocks = 0, barriers = 0, ldmatrix = 0, mma = 0, cp_async = 0,
           zero_fill = 0, tma_loads = 0, tma_stores = 0, wgmma = 0;
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
// One arena per resident CTA: its dynamic shared memory ends at a no-access
// page and starts 1024-byte aligned. Shared-window addresses are offsets
// into the running CTA's arena.
struct Arena {
  char* map = nullptr;
  size_t map_bytes = 0;
  char* base = nullptr;
  size_t bytes = 0;
};

inline void arena_alloc(Arena& a, size_t bytes) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t body = (bytes + 1023 + page) / page * page;
  a.map_bytes = body + page;
  a.map = (char*)mmap(nullptr, a.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
  if (a.map == MAP_FAILED) fail("mmap of shared memory failed");
  mprotect(a.map + body, page, PROT_NONE);
  a.base = (char*)(((uintptr_t)(a.map + body) - bytes) & ~(uintptr_t)1023);
  a.bytes = bytes;
}
inline void arena_free(Arena& a) {
  if (a.map) munmap(a.map, a.map_bytes);
  a = Arena{};
}

// ---- fibers, CTAs and the scheduler ------------------------------------------------------
// St::Spin: the fiber polls a condition (mbarrier phase, a flag in global
// memory, a wgmma group whose lanes have not all arrived); it runs again
// only when no fiber is ready, and a round of polls that changes nothing
// while nothing else can happen is a deadlock.
enum class St : uint8_t { Ready, Bar, Warp, Named, Cluster, Spin, Done };

// Every fiber's state, contiguous: the scheduler scans it at each switch, and
// scanning a field of the (kilobyte-sized) Fiber records was most of the
// emulator's time. Fiber::st reads and writes its fiber's entry.
inline std::vector<St> g_st;
struct StRef {
  uint32_t idx = 0;  // the fiber's index (g_fibers and g_st)
  operator St() const { return g_st[idx]; }
  StRef& operator=(St v) {
    g_st[idx] = v;
    return *this;
  }
};

struct Copy {
  uint32_t dst;
  bool zero;
  unsigned char data[16];
};

// A global store (st.global.cg, __stcg) not yet visible to other CTAs.
struct PendingStore {
  uintptr_t addr;
  uint32_t n;
  unsigned char data[16];
};

// ---- global memory ordering (the __stcg / __ldcg protocols between CTAs) ----
// A thread's __stcg stores sit in its store buffer: it reads them back
// itself; a CTA barrier (__syncthreads, a named barrier) moves the arriving
// threads' stores into the CTA's buffer, which the CTA's threads read; a
// __threadfence by a thread writes its own and its CTA's buffer to memory
// (the fence is cumulative over what the barrier made it observe). Other
// CTAs read memory only, so a partial sum published without the fence is
// stale (the workspace's NaN poison) when the finisher reads it. Atomics and
// plain stores are visible at once. Whatever is still buffered is written
// at the end of the launch.
inline void sb_flush(std::vector<PendingStore>& sb) {
  for (const PendingStore& st : sb) memcpy((void*)st.addr, st.data, st.n);
  sb.clear();
}
inline void sb_overlay(const std::vector<PendingStore>& sb, uintptr_t a, uint32_t n,
                       unsigned char* out) {
  for (const PendingStore& st : sb)
    for (uint32_t i = 0; i < st.n; ++i)
      if (st.addr + i >= a && st.addr + i < a + n) out[st.addr + i - a] = st.data[i];
}

struct Fiber {
  jmp_buf jb;
  ucontext_t uc;
  char* stack = nullptr;
  bool started = false;
  StRef st;  // its entry of g_st
  uint3 tid{0, 0, 0};
  unsigned cta = 0;   // index into g_ctas
  unsigned tix = 0;   // linear thread index in its CTA
  uint32_t wait_id = 0;                  // St::Named: the barrier id
  const char* where = "";                // St::Spin: what it polls
  std::vector<Copy> open;                // cp.async not yet committed
  std::deque<std::vector<Copy>> groups;  // committed, not yet landed
  // wgmma (cuda_emu_hopper.h): this thread's issued ops and commits, the
  // issued count at its last commit, and whether a wgmma.fence came since
  // its last wait_group.
  uint64_t wg_issued = 0, wg_commits = 0, wg_mark = 0;
  bool wg_fenced = false;
  // Bulk (TMA) stores issued by this thread: committed groups of pending ops.
  std::vector<std::function<void()>> bulk_open;
  std::deque<std::vector<std::function<void()>>> bulk_groups;
  std::vector<uint32_t> proxy_words;  // words this thread stored since its last proxy fence
  std::vector<PendingStore> sb;       // its __stcg stores not yet made visible
};

enum class Op { None, Ldm, LdmT, MmaBf16, MmaF16, MmaTf32, SyncWarp };

struct Warp {
  Op op = Op::None;
  int arrived = 0;
  uint32_t in_u[32][6];  // per lane: ldmatrix address, or mma a0..a3, b0, b1
  float in_c[32][4];     // mma accumulators
  uint32_t out_u[32][4];
  float out_f[32][4];
};

struct MBar {
  uint32_t count = 0;    // arrivals per phase
  uint32_t pending = 0;  // arrivals still missing in the current phase
  int64_t tx = 0;        // transaction bytes still expected
  uint32_t phase = 0;    // completed phases
};

struct Cta {
  uint3 idx{0, 0, 0};
  Arena smem;
  int bar_arrived = 0;
  std::vector<std::pair<uint32_t, int>> named;  // (id, arrived)
  std::vector<std::pair<uint32_t, MBar>> mbars; // by shared address
  unsigned cluster = 0, rank = 0;
  uint32_t win = 0;    // shared address of the first byte of dynamic smem
  bool dead = false;   // all its threads have exited
  // Per 8-byte word of dynamic smem: an mbarrier lives there (any other
  // access to it fails the run).
  std::vector<uint8_t> bar_word;
  // Per 4-byte word: the fiber (+1) whose generic-proxy store to it
  // (st.shared wrappers) no fence.proxy.async has yet made visible to the
  // async proxy (TMA), or 0.
  std::vector<uint32_t> proxy_owner;
  // __stcg stores of its threads that a CTA barrier made visible inside the
  // CTA but no __threadfence has yet released to the other CTAs.
  std::vector<PendingStore> sb;
};

constexpr size_t kStack = 256 * 1024;
inline std::vector<Fiber> g_fibers;
inline std::vector<Warp> g_warps;
inline std::vector<Cta> g_ctas;
inline unsigned g_threads = 0;  // per CTA
inline unsigned g_cluster = 1;  // CTAs per cluster (concurrent launches)
inline std::vector<int> g_cluster_arrived;
inline Fiber* g_cur = nullptr;
inline jmp_buf g_sched;
inline const std::function<void()>* g_body = nullptr;
inline std::mt19937_64 g_rng;
inline uint64_t g_run = 0;       // run_ctas calls so far (per-run state resets)
inline uint64_t g_progress = 0;  // bumped by every event that can unblock a fiber
// Asynchronous operations in flight (TMA loads): they complete at random
// scheduler steps, in any order, or when nothing else can run.
inline std::vector<std::function<void()>> g_async;
// Stores still buffered when a block finished (sequential launches): written
// at the end of the launch, not before the next block runs.
inline std::vector<PendingStore> g_launch_sb;

inline Cta& cur_cta() { return g_ctas[g_cur->cta]; }
inline void sb_to_cta(Fiber& f) {
  auto& dst = g_ctas[f.cta].sb;
  dst.insert(dst.end(), f.sb.begin(), f.sb.end());
  f.sb.clear();
}
inline void store_cg(void* p, const void* v, uint32_t n) {
  check_global(p, n, "__stcg");
  PendingStore st;
  st.addr = (uintptr_t)p;
  st.n = n;
  memcpy(st.data, v, n);
  g_cur->sb.push_back(st);
}
inline void load_cg(const void* p, void* v, uint32_t n) {
  check_global(p, n, "__ldcg");
  unsigned char tmp[16];
  memcpy(tmp, p, n);
  sb_overlay(cur_cta().sb, (uintptr_t)p, n, tmp);
  sb_overlay(g_cur->sb, (uintptr_t)p, n, tmp);
  memcpy(v, tmp, n);
}
inline void threadfence() {
  if (!cur_cta().sb.empty() || !g_cur->sb.empty()) ++g_progress;
  sb_flush(cur_cta().sb);
  sb_flush(g_cur->sb);
}

inline unsigned char* dynamic_smem() { return (unsigned char*)cur_cta().smem.base; }
// Shared-window addresses: dynamic smem starts at shared address `win` (0,
// or with Config::window a random multiple of 128 below 1024, the same for
// every CTA of a launch, as static shared memory before it would place it),
// so kernels that align their buffers themselves meet a base that needs it.
inline uint32_t smem_addr(const void* p) {
  const Cta& c = cur_cta();
  const uintptr_t x = (uintptr_t)p, b = (uintptr_t)c.smem.base;
  if (x < b || x > b + c.smem.bytes) fail("cvta to shared of a pointer outside dynamic smem");
  return c.win + (uint32_t)(x - b);
}
inline bool g_mbar_op = false;  // an mbarrier operation is touching its own word
inline char* smem_at_cta(Cta& c, uint32_t addr, size_t n, size_t align, const char* what) {
  if (addr % align) fail("%s: shared address %u not %zu-byte aligned", what, addr, align);
  if (addr < c.win || (size_t)(addr - c.win) + n > c.smem.bytes)
    fail("%s: shared bytes [%u, %zu) outside the %zu-byte dynamic allocation at %u", what, addr,
         (size_t)addr + n, c.smem.bytes, c.win);
  const uint32_t off = addr - c.win;
  if (!g_mbar_op && !c.bar_word.empty())
    for (uint32_t w = off / 8; w <= (uint32_t)((off + n - 1) / 8); ++w)
      if (c.bar_word[w]) fail("%s: shared bytes [%u, %zu) overlap an mbarrier", what, addr, (size_t)addr + n);
  return c.smem.base + off;
}
inline char* smem_at(uint32_t addr, size_t n, size_t align, const char* what) {
  return smem_at_cta(cur_cta(), addr, n, align, what);
}

// Writes cp.async copies into the shared memory of `cta`.
inline void land_in(Cta& cta, const std::vector<Copy>& g) {
  for (const Copy& c : g) {
    char* d = smem_at_cta(cta, c.dst, 16, 16, "cp.async (landing)");
    if (c.zero)
      memset(d, 0, 16);
    else
      memcpy(d, c.data, 16);
  }
}
inline void land(const std::vector<Copy>& g) { land_in(cur_cta(), g); }


inline void set_ids(const Fiber& f) {
  threadIdx = f.tid;
  blockIdx = g_ctas[f.cta].idx;
}

[[noreturn]] inline void fiber_entry() {
  (*g_body)();
  Fiber* f = g_cur;
  // (cp.async groups never waited for are harmless once the block is done
  // with shared memory; TMA stores are not.)
  if (!f->bulk_groups.empty() || !f->bulk_open.empty())
    fail("thread exits with TMA stores it never waited for");
  f->st = St::Done;
  ++g_progress;
  _longjmp(g_sched, 1);
}

// Back to the scheduler; returns when this fiber is resumed.
inline void yield() {
  Fiber* f = g_cur;
  if (_setjmp(f->jb) == 0) _longjmp(g_sched, 1);
  set_ids(*f);
}

// Polls: yields as a spinner (see St::Spin).
inline void spin(const char* where) {
  g_cur->where = where;
  g_cur->st = St::Spin;
  yield();
}

inline void resume(Fiber& f) {
  g_cur = &f;
  set_ids(f);
  f.st = St::Ready;
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

inline int live_in_cta(unsigned c) {
  int n = 0;
  for (unsigned i = c * g_threads; i < (c + 1) * g_threads; ++i) n += g_st[i] != St::Done;
  return n;
}

// Releases a CTA's __syncthreads once every live thread of it waits there.
inline void try_release_barrier(unsigned c) {
  Cta& cta = g_ctas[c];
  if (cta.bar_arrived == 0 || cta.bar_arrived < live_in_cta(c)) return;
  for (unsigned i = c * g_threads; i < (c + 1) * g_threads; ++i) {
    sb_to_cta(g_fibers[i]);  // every live thread arrived; exited ones published at exit
    if (g_st[i] == St::Bar) g_st[i] = St::Ready;
  }
  cta.bar_arrived = 0;
  ++g_progress;
}

inline void syncthreads() {
  ++g_stats.barriers;
  Fiber* f = g_cur;
  ++g_ctas[f->cta].bar_arrived;
  f->st = St::Bar;
  try_release_barrier(f->cta);
  if (f->st == St::Bar) yield();
  f->st = St::Ready;
}

// bar.sync id, count (named barrier; count threads of the CTA).
inline void named_barrier(uint32_t id, uint32_t count) {
  if (id == 0) fail("named barrier 0 is __syncthreads");
  if (id < 1000 && (id > 15 || count % 32 || count == 0 || count > g_threads))
    fail("bar.sync %u, %u: the id must be below 16 and the count a multiple of 32", id, count);
  Fiber* f = g_cur;
  Cta& c = g_ctas[f->cta];
  int* arrived = nullptr;
  for (auto& e : c.named)
    if (e.first == id) arrived = &e.second;
  if (!arrived) {
    c.named.push_back({id, 0});
    arrived = &c.named.back().second;
  }
  ++*arrived;
  if ((uint32_t)*arrived == count) {
    *arrived = 0;
    sb_to_cta(*f);
    for (unsigned i = f->cta * g_threads; i < (f->cta + 1) * g_threads; ++i)
      if (g_st[i] == St::Named && g_fibers[i].wait_id == id) {
        sb_to_cta(g_fibers[i]);
        g_st[i] = St::Ready;
      }
    ++g_progress;
    return;
  }
  if ((uint32_t)*arrived > count) fail("named barrier %u: more than %u arrivals", id, count);
  f->st = St::Named;
  f->wait_id = id;
  yield();
  f->st = St::Ready;
}

// barrier.cluster.arrive + wait: every live thread of the cluster's CTAs.
// Releases cluster `cl` once all its live threads wait there (also checked
// when a thread exits).
inline bool try_release_cluster(unsigned cl) {
  int live = 0;
  for (unsigned c = cl * g_cluster; c < (cl + 1) * g_cluster; ++c) live += live_in_cta(c);
  if (g_cluster_arrived[cl] == 0 || g_cluster_arrived[cl] < live) return false;
  g_cluster_arrived[cl] = 0;
  for (unsigned c = cl * g_cluster; c < (cl + 1) * g_cluster; ++c)
    for (unsigned i = c * g_threads; i < (c + 1) * g_threads; ++i)
      if (g_st[i] == St::Cluster) g_st[i] = St::Ready;
  ++g_progress;
  return true;
}
inline void cluster_barrier() {
  Fiber* f = g_cur;
  const unsigned cl = g_ctas[f->cta].cluster;
  ++g_cluster_arrived[cl];
  f->st = St::Cluster;
  if (try_release_cluster(cl)) {
    f->st = St::Ready;
    return;
  }
  yield();
  f->st = St::Ready;
}

inline void land_async(size_t i) {
  std::function<void()> op = std::move(g_async[i]);
  g_async.erase(g_async.begin() + (long)i);
  op();
  ++g_progress;
}

inline void alloc_fibers(size_t n) {
  if (g_fibers.size() >= n) return;
  const size_t old = g_fibers.size();
  g_fibers.resize(n);
  g_st.resize(n, St::Done);
  for (size_t i = old; i < n; ++i) {
    g_fibers[i].st.idx = (uint32_t)i;
    char* m = (char*)mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("mmap of a fiber stack failed");
    mprotect(m, 4096, PROT_NONE);  // overflow faults
    g_fibers[i].stack = m + 4096;
  }
}

// Runs the CTAs in g_ctas (all resident at once) to completion.
inline void run_ctas() {
  ++g_run;
  const unsigned ncta = (unsigned)g_ctas.size(), n = ncta * g_threads;
  alloc_fibers(n);
  for (unsigned i = 0; i < g_fibers.size(); ++i) {
    Fiber& f = g_fibers[i];
    f.started = false;
    f.st = i < n ? St::Ready : St::Done;
    f.cta = i / g_threads;
    f.tix = i % g_threads;
    f.tid = {f.tix % blockDim.x, (f.tix / blockDim.x) % blockDim.y,
             f.tix / (blockDim.x * blockDim.y)};
    f.open.clear();
    f.groups.clear();
    f.wg_issued = f.wg_commits = f.wg_mark = 0;
    f.wg_fenced = false;
    f.bulk_open.clear();
    f.bulk_groups.clear();
    f.proxy_words.clear();
    f.sb.clear();
  }
  g_warps.assign((size_t)ncta * ((g_threads + 31) / 32), Warp{});
  g_cluster_arrived.assign(ncta, 0);
  g_async.clear();
  unsigned next = 0, next_spin = 0;
  uint64_t idle_polls = 0, idle_mark = g_progress;
  // Config::shuffle_blocks with several resident CTAs: a random strict
  // priority order of the CTAs (a low one runs only while the higher ones
  // wait), so protocols between CTAs meet skewed progress.
  std::vector<unsigned> prio, by_prio;  // priority of each CTA; CTAs by priority
  std::vector<uint64_t> stalled(ncta, ~0ull), c_polls(ncta, 0);
  if (g_cfg.shuffle_blocks && g_cfg.random_sched && ncta > 1) {
    for (unsigned c = 0; c < ncta; ++c) prio.push_back(c);
    std::shuffle(prio.begin(), prio.end(), g_rng);
    by_prio.resize(ncta);
    for (unsigned c = 0; c < ncta; ++c) by_prio[prio[c]] = c;
  }
  for (;;) {
    // Async completions at random points (early mode: they land at issue).
    if (!g_async.empty() && g_rng() % 8 == 0) land_async(g_rng() % g_async.size());
    int pick = -1;
    bool prio_poll = false;
    if (!prio.empty()) {
      // CTA priorities: the highest CTA that can go runs, its spinners
      // polled before any lower CTA's ready fiber; a CTA whose polls change
      // nothing (it waits for a lower one) steps aside until something
      // happens anywhere.
      for (unsigned r = ncta; r-- > 0 && pick < 0;) {
        const unsigned c = by_prio[r];
        if (stalled[c] == g_progress) continue;
        int ready = 0, spin_n = 0;
        for (unsigned i = c * g_threads; i < (c + 1) * g_threads; ++i) {
          ready += g_st[i] == St::Ready;
          spin_n += g_st[i] == St::Spin;
        }
        const St want = ready ? St::Ready : St::Spin;
        int k = ready ? ready : spin_n;
        if (k == 0) continue;
        if (!ready && ++c_polls[c] > (uint64_t)spin_n + 1) {
          stalled[c] = g_progress;  // polled them all: nothing moved
          c_polls[c] = 0;
          continue;
        }
        k = (int)(g_rng() % (uint64_t)k);
        for (unsigned i = c * g_threads; i < (c + 1) * g_threads; ++i)
          if (g_st[i] == want && k-- == 0) {
            pick = (int)i;
            break;
          }
        prio_poll = !ready;
      }
    } else if (g_cfg.random_sched) {
      int ready = 0;
      for (unsigned i = 0; i < n; ++i) ready += g_st[i] == St::Ready;
      if (ready) {
        int k = (int)(g_rng() % (uint64_t)ready);
        for (unsigned i = 0; i < n; ++i)
          if (g_st[i] == St::Ready && k-- == 0) {
            pick = (int)i;
            break;
          }
      }
    } else {
      for (unsigned j = 0; j < n; ++j) {
        const unsigned i = (next + j) % n;
        if (g_st[i] == St::Ready) {
          pick = (int)i;
          break;
        }
      }
    }
    if (pick >= 0) {
      next = (unsigned)pick + 1;
    } else {
      if (!g_async.empty()) {
        land_async(g_rng() % g_async.size());
        continue;
      }
      int live = 0, spinners = 0;
      for (unsigned i = 0; i < n; ++i) {
        live += g_st[i] != St::Done;
        spinners += g_st[i] == St::Spin;
      }
      if (live == 0) break;
      for (unsigned c = 0; c < ncta; ++c) try_release_barrier(c);
      if (g_progress != idle_mark) {
        idle_mark = g_progress;
        idle_polls = 0;
      }
      bool any = false;
      for (unsigned i = 0; i < n; ++i) any |= g_st[i] == St::Ready;
      if (any) continue;
      if (spinners == 0 || idle_polls > 2 * (uint64_t)spinners + 2) {
        int bar = 0, warp = 0, named = 0, cl = 0;
        for (unsigned i = 0; i < n; ++i) {
          bar += g_st[i] == St::Bar;
          warp += g_st[i] == St::Warp;
          named += g_st[i] == St::Named;
          cl += g_st[i] == St::Cluster;
        }
        if (getenv("EMU_DEBUG"))
          for (unsigned i = 0; i < n; ++i)
            fprintf(stderr, "  fiber %u cta %u tix %u state %d (%s, named %u) issued %llu commits %llu\n", i,
                    g_fibers[i].cta, g_fibers[i].tix, (int)g_st[i], g_fibers[i].where,
                    g_fibers[i].wait_id, (unsigned long long)g_fibers[i].wg_issued,
                    (unsigned long long)g_fibers[i].wg_commits);
        fail("deadlock: %d live threads: %d at __syncthreads, %d at a warp collective, %d at a "
             "named barrier, %d at the cluster barrier, %d polling without progress",
             live, bar, warp, named, cl, spinners);
      }
      // Poll the next spinner.
      for (unsigned j = 0; j < n; ++j) {
        const unsigned i = (next_spin + j) % n;
        if (g_st[i] == St::Spin) {
          pick = (int)i;
          break;
        }
      }
      next_spin = (unsigned)pick + 1;
      ++idle_polls;
    }
    Fiber& f = g_fibers[pick];
    const bool polled = f.st == St::Spin;
    const uint64_t before = g_progress;
    resume(f);
    if (polled && f.st != St::Spin) idle_polls = 0;  // the poll got it going
    if (prio_poll && (f.st != St::Spin || g_progress != before)) c_polls[f.cta] = 0;
    if (f.st == St::Done) {
      // Its buffered stores stay invisible to other CTAs until the launch ends.
      g_launch_sb.insert(g_launch_sb.end(), f.sb.begin(), f.sb.end());
      f.sb.clear();
      // A warp collective that waits for this lane can never complete.
      Warp& w = g_warps[pick / 32];
      if (w.arrived) fail("thread %d exited while its warp waits at a collective", pick);
      try_release_barrier(f.cta);
      if (g_cluster > 1) try_release_cluster(g_ctas[f.cta].cluster);
      if (live_in_cta(f.cta) == 0) g_ctas[f.cta].dead = true;
    }
  }
  for (Cta& c : g_ctas) {
    g_launch_sb.insert(g_launch_sb.end(), c.sb.begin(), c.sb.end());
    c.sb.clear();
  }
}

// Runs `body` (one kernel invocation, already bound to its arguments) on
// every thread of every block of `grid` x `block`, with `smem_bytes` of
// dynamic shared memory. Blocks run one after another (in order, or
// shuffled), except with `concurrent`: then every block of the grid is
// resident at once (persistent kernels whose CTAs wait for each other) in
// clusters of `cluster` consecutive blocks along x.
inline void launch(const std::string& label, dim3 grid, dim3 block, size_t smem_bytes,
                   const std::function<void()>& body, bool concurrent = false,
                   unsigned cluster = 1) {
  g_label = label;
  g_rng.seed(g_cfg.seed);
  g_body = &body;
  gridDim = grid;
  blockDim = block;
  g_threads = block.x * block.y * block.z;
  g_cluster = cluster;
  if (g_threads == 0 || g_threads > 1024) fail("block of %u threads", g_threads);
  if (concurrent && g_threads % 32) fail("concurrent launch with a partial warp");
  if (grid.x % cluster) fail("grid.x %u not a multiple of the cluster size %u", grid.x, cluster);
  std::vector<uint3> order;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) order.push_back({x, y, z});
  ++g_stats.launches;
  // Every CTA of a kernel has the same shared-memory layout (a cluster's
  // multicast and remote arrives rely on it): one window per launch.
  const uint32_t win = g_cfg.window ? 128u * (uint32_t)(g_rng() % 8) : 0u;
  auto setup = [&](Cta& c, uint3 b) {
    c = Cta{};
    c.idx = b;
    c.cluster = b.x / cluster + (b.y + b.z * grid.y) * (grid.x / cluster);
    c.rank = b.x % cluster;
    arena_alloc(c.smem, smem_bytes);
    memset(c.smem.base, 0xff, c.smem.bytes);
    c.proxy_owner.assign((smem_bytes + 3) / 4, 0);
    c.bar_word.assign((smem_bytes + 7) / 8, 0);
    c.win = win;
    ++g_stats.blocks;
  };
  if (concurrent) {
    g_ctas.assign(order.size(), Cta{});
    for (size_t i = 0; i < order.size(); ++i) setup(g_ctas[i], order[i]);
    run_ctas();
    for (Cta& c : g_ctas) arena_free(c.smem);
  } else {
    if (g_cfg.shuffle_blocks) std::shuffle(order.begin(), order.end(), g_rng);
    g_ctas.assign(1, Cta{});
    for (const uint3& b : order) {
      setup(g_ctas[0], b);
      run_ctas();
      arena_free(g_ctas[0].smem);
    }
  }
  g_ctas.clear();
  sb_flush(g_launch_sb);
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
  return emu_half_table()[bits & 0xffffu];
}

inline void complete(Warp& w) {
  const Op op = w.op;
  if (op == Op::SyncWarp) return;  // __syncwarp(): the 32 lanes met
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
      auto tf = [](uint32_t u) {  // the top 19 bits; a NaN stays a NaN
        const float f = __uint_as_float(u);
        return f != f ? (double)f : (double)__uint_as_float(u & 0xffffe000u);
      };
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
  if (g_cur->tix / 32 * 32 + 32 > g_threads) fail("warp collective in a partial warp");
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
      if (g_st[i] == St::Warp) g_st[i] = St::Ready;
    return;
  }
  for (unsigned i = idx / 32 * 32; i < idx / 32 * 32 + 32; ++i)
    if (g_st[i] == St::Done) fail("warp collective with an exited lane");
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

// ---- mbarrier -------------------------------------------------------------------------
inline MBar& mbar_in(Cta& c, uint32_t addr, const char* what) {
  g_mbar_op = true;
  smem_at_cta(c, addr, 8, 8, what);
  g_mbar_op = false;
  for (auto& e : c.mbars)
    if (e.first == addr) return e.second;
  fail("%s: no mbarrier initialised at shared address %u", what, addr);
}
inline void mbar_settle(MBar& b) {
  if (b.pending == 0 && b.tx == 0) {
    ++b.phase;
    b.pending = b.count;
    ++g_progress;
  }
}
inline void mbar_arrive_on(Cta& c, uint32_t addr, int64_t expect_tx) {
  MBar& b = mbar_in(c, addr, "mbarrier.arrive");
  if (b.pending == 0) fail("mbarrier at %u: arrival with none pending", addr);
  b.tx += expect_tx;
  --b.pending;
  mbar_settle(b);
}
inline void mbar_complete_tx(Cta& c, uint32_t addr, uint32_t bytes) {
  MBar& b = mbar_in(c, addr, "complete_tx");
  b.tx -= bytes;
  mbar_settle(b);
}

// Initialises the mbarrier at shared address `bar` of this thread's CTA.
inline void mbar_init_at(uint32_t bar, uint32_t count) {
  Cta& c = cur_cta();
  smem_at(bar, 8, 8, "mbarrier.init");
  c.bar_word[(bar - c.win) / 8] = 1;
  for (auto& e : c.mbars)
    if (e.first == bar) {
      e.second = MBar{count, count, 0, 0};
      return;
    }
  c.mbars.push_back({bar, MBar{count, count, 0, 0}});
}
// One test of the phase with parity `parity`: 1 once it completed; else
// the thread yields as a spinner once and tests again.
inline uint32_t mbar_test_wait(uint32_t bar, uint32_t parity, const char* what) {
  if ((mbar_in(cur_cta(), bar, what).phase & 1u) != parity) return 1;
  spin(what);
  return (mbar_in(cur_cta(), bar, what).phase & 1u) != parity;
}
// cp.async.mbarrier.arrive.noinc: one arrival on `bar` once every cp.async
// this thread issued so far (committed or not) has landed. The copies leave
// the thread's groups (a later cp.async.wait_group does not wait for them)
// and land, then arrive, at a random later scheduler step (early mode: they
// landed at issue, so the arrival is immediate).
inline void cp_async_mbar_arrive(uint32_t bar) {
  Fiber& f = *g_cur;
  Cta* cta = &cur_cta();
  mbar_in(*cta, bar, "cp.async.mbarrier.arrive");
  std::vector<Copy> all;
  for (auto& g : f.groups) all.insert(all.end(), g.begin(), g.end());
  all.insert(all.end(), f.open.begin(), f.open.end());
  f.groups.clear();
  f.open.clear();
  auto op = [cta, all, bar]() {
    if (cta->dead) fail("cp.async lands in the shared memory of a CTA that has exited");
    land_in(*cta, all);
    mbar_arrive_on(*cta, bar, 0);
  };
  if (g_cfg.cp_async_late)
    g_async.push_back(op);
  else
    op();
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
    land({c});
  }
}
inline void cp_async_commit() {
  g_cur->groups.push_back(std::move(g_cur->open));
  g_cur->open.clear();
}
inline void cp_async_wait(int n) {
  Fiber& f = *g_cur;
  while ((int)f.groups.size() > n) {
    land(f.groups.front());
    f.groups.pop_front();
  }
}

// ---- kernel registry (the stand-in driver, kernels/emu/standin) ------------------------
// Each kernel-defining macro of kernels/*.cu ends with GLU_EMU_KERNEL(NAME,
// CONCURRENT, CLUSTER) (glu_common.cuh), which under GLU_EMU registers the
// kernel here by name: the stand-in libcuda's cuModuleGetFunction looks it
// up, and cuLaunchKernel binds copies of the kernelParams to it. CONCURRENT:
// launch with every CTA resident (persistent kernels whose CTAs wait for
// each other); CLUSTER: the __cluster_dims__ along x (1 without).
struct KernelInfo {
  std::string name;
  bool concurrent = false;
  unsigned cluster = 1;
  size_t nparams = 0;
  // A body running the kernel on copies of *args[0] .. *args[nparams-1].
  std::function<std::function<void()>(void* const* args)> bind;
};
inline std::vector<KernelInfo>& kernel_registry() {
  static std::vector<KernelInfo> r;
  return r;
}
template <typename... A, size_t... I>
std::function<void()> bind_kernel_args(void (*f)(A...), void* const* args,
                                       std::index_sequence<I...>) {
  // Each argument is copied from where kernelParams points, as the driver
  // copies the parameter buffer at the launch.
  auto tup = std::make_shared<std::tuple<std::decay_t<A>...>>(
      *static_cast<const std::decay_t<A>*>(args[I])...);
  return [f, tup] { std::apply(f, *tup); };
}
template <typename... A>
inline bool register_kernel(const char* name, void (*f)(A...), bool concurrent,
                            unsigned cluster) {
  KernelInfo k;
  k.name = name;
  k.concurrent = concurrent;
  k.cluster = cluster;
  k.nparams = sizeof...(A);
  k.bind = [f](void* const* args) {
    return bind_kernel_args(f, args, std::index_sequence_for<A...>{});
  };
  kernel_registry().push_back(std::move(k));
  return true;
}
inline const KernelInfo* find_kernel(const char* name) {
  for (const KernelInfo& k : kernel_registry())
    if (k.name == name) return &k;
  return nullptr;
}

inline uint32_t ld_shared_u32(uint32_t addr) {
  uint32_t v;
  memcpy(&v, smem_at(addr, 4, 4, "ld.shared.u32"), 4);
  return v;
}

}  // namespace emu

// ---- CUDA device functions the kernels call ------------------------------------------
inline void __syncthreads() { emu::syncthreads(); }
// Full-warp __syncwarp(): a warp collective that exchanges nothing.
inline void __syncwarp() { emu::warp_collective(emu::Op::SyncWarp); }
inline void __threadfence() { emu::threadfence(); }
inline uint32_t __cvta_generic_to_shared(const void* p) { return emu::smem_addr(p); }
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  emu::check_global(p, 4, "atomicAdd");
  const unsigned old = *p;
  *p = old + v;
  return old;
}
inline void __nanosleep(unsigned) { emu::spin("__nanosleep"); }
inline long long clock64() {
  static long long t = 0;
  return t += 1000;
}
[[noreturn]] inline void __trap() { emu::fail("__trap()"); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
template <typename T>
inline T __ldcg(const T* p) {
  static_assert(sizeof(T) <= 16, "16 bytes at most");
  T v;
  emu::load_cg(p, &v, sizeof(T));
  return v;
}
template <typename T>
inline void __stcg(T* p, T v) {
  static_assert(sizeof(T) <= 16, "16 bytes at most");
  emu::store_cg(p, &v, sizeof(T));
}
