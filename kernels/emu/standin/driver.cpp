// A stand-in for the CUDA driver (libcuda.so.1) on the host emulator
// (kernels/emu/cuda_emu.h): the crate's own Rust GPU tests, through cudarc,
// run the kernels' source compiled for the host, so that the launchers,
// dispatch, tensor maps, workspaces, streams and graph capture of src/cuda
// execute without a GPU. Test tooling only: never part of the crate.
//
// What it is
//   * one device, "swiglu host emulator", compute capability
//     SWIGLU_EMU_CC (default 90; 80 or 89 take the sm_80 paths), with
//     SWIGLU_EMU_SMS multiprocessors (default 4, so that persistent grids,
//     tail waves and stream-K shares stay small) and an H200's shared-memory
//     limits (227 KiB per block opt-in, 48 KiB without the attribute);
//   * device memory: emu::Buffer allocations (256-byte aligned, followed by
//     a no-access page); every copy, memset and kernel access must lie in a
//     live allocation;
//   * modules: cuModuleLoadData checks the fatbin's magic number; kernels
//     are found by name among the kernels compiled into this library
//     (GLU_EMU_KERNEL, emu::register_kernel). A Hopper kernel on a device
//     below 9.0 fails the run;
//   * launches check the block size, the grid, the dynamic shared memory
//     against the function's MAX_DYNAMIC_SHARED_SIZE_BYTES and the cluster
//     shape, copy the parameters and run the kernel on the emulator. The
//     emulator's settings rotate per launch over the three rounds of the
//     C++ tests (emu_harness.h set_round), unless SWIGLU_EMU_ROUND fixes one;
//   * streams execute in order at the call (the host waits for nothing);
//     events read a device clock that advances by the emulation's host time
//     of each operation x SWIGLU_EMU_TIME_SCALE; stream capture records the
//     work into a graph that cuGraphLaunch replays; the capture modes'
//     prohibition of unsafe calls is modelled for allocation, frees and
//     synchronisation;
//   * every entry point takes one lock: one launch runs at a time.
// A kernel failure in the emulator (fault, race shown, deadlock, wrong
// protocol) ends the process with its message, as a trap would end the
// context. SWIGLU_EMU_LOG=1 prints every launch. SWIGLU_EMU_NOEXEC=1 checks
// and counts launches without running them (host-cost measurements).
#include "cuda_emu.h"
#include "glu_hopper.cuh"  // under GLU_EMU: cuda_emu_hopper.h (emu::encode_tiled)

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#define API extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

enum : int {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_ILLEGAL_STATE = 401,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_NOT_READY = 600,
  CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
  CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE = 720,
  CUDA_ERROR_NOT_SUPPORTED = 801,
  CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
  CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
  CUDA_ERROR_STREAM_CAPTURE_UNMATCHED = 903,
  CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD = 908,
  CUDA_ERROR_INVALID_CLUSTER_SIZE = 912,
  CUDA_ERROR_UNKNOWN = 999,
};

namespace {

// ---- configuration ------------------------------------------------------------------------
int env_int(const char* name, int dflt) {
  const char* v = getenv(name);
  return v && *v ? atoi(v) : dflt;
}
struct Device {
  int cc = env_int("SWIGLU_EMU_CC", 90);
  int sms = std::max(1, env_int("SWIGLU_EMU_SMS", 4));
  int fixed_round = env_int("SWIGLU_EMU_ROUND", -1);
  bool log = env_int("SWIGLU_EMU_LOG", 0) != 0;
  // SWIGLU_EMU_NOEXEC=1: launches (kernels and cuBLAS) are checked and
  // counted but not run, and outputs keep their poison. For measuring the
  // host's cost per call (the crate's checks, dispatch, tensor maps,
  // cudarc's bookkeeping) at any shape; results are then meaningless.
  bool noexec = env_int("SWIGLU_EMU_NOEXEC", 0) != 0;
  bool fresh_handles = env_int("SWIGLU_EMU_FRESH_HANDLES", 0) != 0;
  size_t total_mem = (size_t)16 << 30;
  static constexpr int kSmemOptin = 232448;   // 227 KiB (H100/H200)
  static constexpr int kSmemPerSm = 233472;   // 228 KiB
  static constexpr int kSmemDefault = 49152;  // without the attribute
};
Device& dev() {
  static Device d;
  return d;
}

// Every error the stand-in returns goes through here; SWIGLU_EMU_LOG=1 prints it.
int report(const char* fn, int line, int err) {
  if (dev().log) fprintf(stderr, "emu driver: %s returns %d (driver.cpp:%d)\n", fn, err, line);
  return err;
}

std::recursive_mutex g_mu;
#define LOCK std::lock_guard<std::recursive_mutex> lock_(g_mu)

// ---- streams, capture, graphs ----------------------------------------------------------
using Op = std::function<void()>;
struct Graph {  // also an instantiated graph (cuGraphInstantiate copies it)
  std::vector<Op> ops;
};
enum CaptureMode { kGlobal = 0, kThreadLocal = 1, kRelaxed = 2 };
struct Stream {
  bool capturing = false;
  bool invalidated = false;
  int mode = kGlobal;
  std::thread::id owner;
  Graph* graph = nullptr;
};
std::set<Stream*> g_streams;
Stream g_null_stream;  // the legacy default stream (a null CUstream)
thread_local int t_mode = kGlobal;

Stream* stream_of(void* h) { return h ? (Stream*)h : &g_null_stream; }
bool valid_stream(void* h) { return !h || g_streams.count((Stream*)h); }

// The capture-mode rule (cuThreadExchangeStreamCaptureMode): a thread not in
// relaxed mode may not make potentially unsafe calls while it captures in a
// non-relaxed mode or another thread captures in global mode. Such a call
// fails and invalidates those captures.
bool unsafe_call_refused() {
  if (t_mode == kRelaxed) return false;
  bool refused = false;
  for (Stream* s : g_streams) {
    if (!s->capturing) continue;
    const bool mine = s->owner == std::this_thread::get_id();
    if ((mine && s->mode != kRelaxed) || (!mine && s->mode == kGlobal)) {
      s->invalidated = true;
      refused = true;
    }
  }
  return refused;
}

// The device clock: it advances only while the device works, by the host
// time the emulation of an operation took times SWIGLU_EMU_TIME_SCALE
// (default 1000). Events read it. So event timings rank work as the
// emulator's cost does, and the device looks busy for far longer than the
// host takes to queue the next launches, as on a GPU: the autotuner's check
// that its pilot launches outlast the queueing of a timed round (where
// queueing here includes running the launches, at the call) holds.
double g_device_ms = 0;
void run_op(const Op& op) {
  using namespace std::chrono;
  const auto t0 = steady_clock::now();
  op();
  const double host_ms = duration<double, std::milli>(steady_clock::now() - t0).count();
  static const double scale = [] {
    const char* v = getenv("SWIGLU_EMU_TIME_SCALE");
    const double x = v && *v ? atof(v) : 0.0;
    return x > 0 ? x : 1000.0;
  }();
  g_device_ms += host_ms * scale;
}

// Runs `op` now, or records it into the stream's capture.
CUresult enqueue(void* h, Op op) {
  Stream* s = stream_of(h);
  if (!h) {
    // The legacy stream synchronises with every blocking stream: using it
    // while a capture is open is an error that invalidates the capture.
    for (Stream* o : g_streams)
      if (o->capturing) {
        o->invalidated = true;
        return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
      }
  }
  if (s->capturing) {
    if (s->invalidated) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    s->graph->ops.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  run_op(op);
  return CUDA_SUCCESS;
}

// ---- memory ------------------------------------------------------------------------------
std::map<uintptr_t, std::unique_ptr<emu::Buffer>> g_allocs;
size_t g_allocated = 0;
// The device's default memory pool, which stream-ordered allocations
// (cuMemAllocAsync) come from: the bytes in use and their high-water mark
// (CU_MEMPOOL_ATTR_USED_MEM_CURRENT / _HIGH; the training bench reads them).
// Nothing is cached, so "reserved" equals "used".
std::set<uintptr_t> g_pool_allocs;
size_t g_pool_used = 0, g_pool_high = 0;
int g_pool_handle;  // its address is the pool's handle

bool in_device(CUdeviceptr p, size_t n) { return n == 0 || emu::in_global((const void*)p, n); }

// ---- events -------------------------------------------------------------------------------
struct Event {
  bool recorded = false;
  double ms = 0;  // g_device_ms when it was reached
};
std::set<Event*> g_events;

// ---- modules and functions -------------------------------------------------------------
struct Module {
  std::vector<std::unique_ptr<struct Func>> funcs;
};
struct Func {
  const emu::KernelInfo* k = nullptr;
  int max_dyn_smem = Device::kSmemDefault;
  int carveout = -1;
};
std::set<Module*> g_modules;
std::set<Func*> g_funcs;

bool hopper_kernel(const emu::KernelInfo& k) { return k.name.find("wgmma") != std::string::npos; }

int occupancy(const Func& f, int threads, size_t smem) {
  if (threads <= 0 || threads > 1024) return 0;
  if ((int)smem > f.max_dyn_smem) return 0;
  int by_threads = 2048 / threads;
  int by_smem = Device::kSmemPerSm / (int)(smem + 1024);
  return std::max(0, std::min({by_threads, by_smem, 32}));
}

uint64_t g_launch_count = 0;

CUresult launch(Func* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                unsigned bz, unsigned smem, void* hstream, void** params, void** extra,
                unsigned cluster_x, bool cooperative = false) {
  if (!g_funcs.count(f) || !valid_stream(hstream)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  const emu::KernelInfo& k = *f->k;
  if (extra) return report(__func__, __LINE__, CUDA_ERROR_NOT_SUPPORTED);  // the crate passes kernelParams
  if (!params && k.nparams) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  const uint64_t threads = (uint64_t)bx * by * bz;
  if (threads == 0 || threads > 1024 || gx == 0 || gy == 0 || gz == 0 || gy > 65535 ||
      gz > 65535)
    return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if ((int)smem > f->max_dyn_smem) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (hopper_kernel(k) && dev().cc < 90)
    emu::fail("%s: a Hopper (sm_90a) kernel launched on a compute capability %d.%d device "
              "(its sm_80 build traps)", k.name.c_str(), dev().cc / 10, dev().cc % 10);
  unsigned cluster = k.cluster;
  if (cluster_x > 1) {
    if (k.cluster > 1 && cluster_x != k.cluster) return report(__func__, __LINE__, CUDA_ERROR_INVALID_CLUSTER_SIZE);
    cluster = cluster_x;
  }
  if (cluster > 1 && dev().cc < 90) return report(__func__, __LINE__, CUDA_ERROR_INVALID_CLUSTER_SIZE);
  if (gx % cluster) return report(__func__, __LINE__, CUDA_ERROR_INVALID_CLUSTER_SIZE);
  // The parameters are copied now, as the driver does.
  std::function<void()> body = k.bind(params);
  const dim3 grid(gx, gy, gz), block(bx, by, bz);
  const bool concurrent = k.concurrent || cluster > 1 || cooperative;
  const std::string name = k.name;
  return enqueue(hstream, [=] {
    const uint64_t n = g_launch_count++;
    const int r = dev().fixed_round >= 0 ? dev().fixed_round % 3 : (int)(n % 3);
    emu::apply_round(r, 0x5eed + n * 7919);
    char label[256];
    snprintf(label, sizeof label, "%s grid=(%u,%u,%u) block=(%u,%u,%u) smem=%u round=%d launch#%llu",
             name.c_str(), gx, gy, gz, bx, by, bz, smem, r, (unsigned long long)n);
    if (dev().log) fprintf(stderr, "emu launch: %s\n", label);
    if (dev().noexec) return;
    emu::launch(label, grid, block, smem, body, concurrent, cluster);
  });
}

}  // namespace

// =====================================================================================
// Driver API
// =====================================================================================
API CUresult cuInit(unsigned) { return CUDA_SUCCESS; }
API CUresult cuDriverGetVersion(int* v) {
  if (!v) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  *v = 13000;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGetCount(int* n) {
  if (!n) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  *n = 1;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (!d) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (ordinal != 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_DEVICE);
  *d = 0;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
  if (d != 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_DEVICE);
  if (!name || len <= 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  snprintf(name, (size_t)len, "swiglu host emulator (sm_%d, %d SMs)", dev().cc, dev().sms);
  return CUDA_SUCCESS;
}
API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
  if (d != 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_DEVICE);
  *bytes = dev().total_mem;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
  if (d != 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_DEVICE);
  if (!v) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  switch (attr) {
    case 1: *v = 1024; break;                        // MAX_THREADS_PER_BLOCK
    case 2: *v = 1024; break;                        // MAX_BLOCK_DIM_X
    case 3: case 4: *v = 1024; break;                // Y, Z (Z is 64 on hardware)
    case 5: *v = 2147483647; break;                  // MAX_GRID_DIM_X
    case 6: case 7: *v = 65535; break;
    case 8: *v = Device::kSmemDefault; break;        // MAX_SHARED_MEMORY_PER_BLOCK
    case 10: *v = 32; break;                         // WARP_SIZE
    case 13: *v = 1980000; break;                    // CLOCK_RATE (kHz)
    case 16: *v = dev().sms; break;                  // MULTIPROCESSOR_COUNT
    case 36: *v = 2619000; break;                    // MEMORY_CLOCK_RATE
    case 37: *v = 6144; break;                       // GLOBAL_MEMORY_BUS_WIDTH
    case 38: *v = 50 << 20; break;                   // L2_CACHE_SIZE
    case 39: *v = 2048; break;                       // MAX_THREADS_PER_MULTIPROCESSOR
    case 75: *v = dev().cc / 10; break;              // COMPUTE_CAPABILITY_MAJOR
    case 76: *v = dev().cc % 10; break;              // COMPUTE_CAPABILITY_MINOR
    case 81: *v = Device::kSmemPerSm; break;         // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
    case 82: *v = 65536; break;                      // MAX_REGISTERS_PER_MULTIPROCESSOR
    case 97: *v = Device::kSmemOptin; break;         // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    case 106: *v = 32; break;                        // MAX_BLOCKS_PER_MULTIPROCESSOR
    case 115: *v = 1; break;                         // MEMORY_POOLS_SUPPORTED
    case 120: *v = dev().cc >= 90; break;            // CLUSTER_LAUNCH
    default: *v = 0; break;
  }
  return CUDA_SUCCESS;
}
API CUresult cuDevicePrimaryCtxRetain(void** ctx, CUdevice d) {
  if (d != 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_DEVICE);
  static int the_ctx;
  *ctx = &the_ctx;
  return CUDA_SUCCESS;
}
API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return CUDA_SUCCESS; }
API CUresult cuCtxSetCurrent(void*) { return CUDA_SUCCESS; }
API CUresult cuCtxGetCurrent(void** ctx) { return cuDevicePrimaryCtxRetain(ctx, 0); }
API CUresult cuCtxGetDevice(CUdevice* d) {
  *d = 0;
  return CUDA_SUCCESS;
}
API CUresult cuCtxPushCurrent_v2(void*) { return CUDA_SUCCESS; }
API CUresult cuCtxPopCurrent_v2(void** ctx) {
  if (ctx) cuCtxGetCurrent(ctx);
  return CUDA_SUCCESS;
}
API CUresult cuCtxSynchronize() {
  LOCK;
  if (unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return CUDA_SUCCESS;
}

API CUresult cuGetErrorName(CUresult e, const char** s) {
  static std::map<int, std::string> names;
  LOCK;
  std::string& n = names[e];
  if (n.empty()) n = "CUDA_ERROR_" + std::to_string(e) + " (swiglu host emulator)";
  *s = n.c_str();
  return CUDA_SUCCESS;
}
API CUresult cuGetErrorString(CUresult e, const char** s) { return cuGetErrorName(e, s); }

// ---- memory ----
static CUresult alloc(CUdeviceptr* p, size_t bytes) {
  if (!p) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (bytes == 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (g_allocated + bytes > dev().total_mem) return report(__func__, __LINE__, CUDA_ERROR_OUT_OF_MEMORY);
  // A multiple of 256 bytes placed against the no-access page: 256-byte
  // aligned, as the driver's allocations are (at least).
  const size_t rounded = (bytes + 255) / 256 * 256;
  auto b = std::make_unique<emu::Buffer>(rounded);
  // Fresh device memory is not zero on a GPU: poison it (NaN in every dtype).
  memset(b->as<char>(), 0xff, rounded);
  *p = (CUdeviceptr)(uintptr_t)b->as<char>();
  g_allocated += rounded;
  g_allocs[(uintptr_t)*p] = std::move(b);
  return CUDA_SUCCESS;
}
static CUresult release(CUdeviceptr p) {
  auto it = g_allocs.find((uintptr_t)p);
  if (it == g_allocs.end()) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  g_allocated -= it->second->bytes();
  if (g_pool_allocs.erase((uintptr_t)p)) g_pool_used -= it->second->bytes();
  g_allocs.erase(it);
  return CUDA_SUCCESS;
}
API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  LOCK;
  if (unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return alloc(p, bytes);
}
API CUresult cuMemFree_v2(CUdeviceptr p) {
  LOCK;
  if (unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return release(p);
}
API CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, void* hstream) {
  LOCK;
  if (!valid_stream(hstream)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  // A zero-byte request succeeds with a null address (as on the H200: the
  // crate's M = 0 test allocates nothing).
  if (p && bytes == 0) {
    *p = 0;
    return CUDA_SUCCESS;
  }
  // Allocated at once also under capture (the graph's allocation node would
  // reserve the address at capture time too); a capture's free is dropped.
  const CUresult r = alloc(p, bytes);
  if (r == CUDA_SUCCESS) {
    g_pool_allocs.insert((uintptr_t)*p);
    g_pool_used += g_allocs[(uintptr_t)*p]->bytes();
    g_pool_high = std::max(g_pool_high, g_pool_used);
  }
  return r;
}
API CUresult cuMemFreeAsync(CUdeviceptr p, void* hstream) {
  LOCK;
  if (!valid_stream(hstream)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (p == 0) return CUDA_SUCCESS;
  if (!g_allocs.count((uintptr_t)p)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (stream_of(hstream)->capturing) return CUDA_SUCCESS;
  return release(p);
}
API CUresult cuDeviceGetDefaultMemPool(void** pool, CUdevice d) {
  LOCK;
  if (d != 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_DEVICE);
  if (!pool) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  *pool = &g_pool_handle;
  return CUDA_SUCCESS;
}
// One pool per device: the current pool is the default one.
API CUresult cuDeviceGetMemPool(void** pool, CUdevice d) { return cuDeviceGetDefaultMemPool(pool, d); }
// Attributes 4 (RELEASE_THRESHOLD) and 5-8 (RESERVED/USED_MEM_CURRENT/HIGH)
// are cuuint64_t; the others are not modelled and are refused. The release
// threshold is only stored: this pool keeps no freed memory either way.
static uint64_t g_pool_release_threshold = 0;
API CUresult cuMemPoolGetAttribute(void* pool, int attr, void* value) {
  LOCK;
  if (pool != &g_pool_handle || !value) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  switch (attr) {
    case 4: *(uint64_t*)value = g_pool_release_threshold; return CUDA_SUCCESS;
    case 5: case 7: *(uint64_t*)value = g_pool_used; return CUDA_SUCCESS;
    case 6: case 8: *(uint64_t*)value = g_pool_high; return CUDA_SUCCESS;
    default: return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  }
}
// The release threshold can be set to any value; the high-water marks only
// to zero (the driver's rule), which resets them to the current use.
API CUresult cuMemPoolSetAttribute(void* pool, int attr, void* value) {
  LOCK;
  if (pool != &g_pool_handle || !value) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (attr == 4) {
    g_pool_release_threshold = *(uint64_t*)value;
    return CUDA_SUCCESS;
  }
  if ((attr != 6 && attr != 8) || *(uint64_t*)value != 0)
    return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  g_pool_high = g_pool_used;
  return CUDA_SUCCESS;
}
API CUresult cuMemGetInfo_v2(size_t* free_b, size_t* total) {
  LOCK;
  *total = dev().total_mem;
  *free_b = dev().total_mem - g_allocated;
  return CUDA_SUCCESS;
}

static CUresult copy(void* dst, const void* src, size_t n, bool dst_dev, bool src_dev,
                     void* hstream, bool sync) {
  if (!valid_stream(hstream)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (n == 0) return CUDA_SUCCESS;
  if ((dst_dev && !in_device((CUdeviceptr)dst, n)) || (src_dev && !in_device((CUdeviceptr)src, n)))
    return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (sync && unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return enqueue(hstream, [=] { memcpy(dst, src, n); });
}
API CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* h, size_t n) {
  LOCK;
  return copy((void*)d, h, n, true, false, nullptr, true);
}
API CUresult cuMemcpyDtoH_v2(void* h, CUdeviceptr d, size_t n) {
  LOCK;
  return copy(h, (const void*)d, n, false, true, nullptr, true);
}
API CUresult cuMemcpyDtoD_v2(CUdeviceptr a, CUdeviceptr b, size_t n) {
  LOCK;
  return copy((void*)a, (const void*)b, n, true, true, nullptr, true);
}
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* h, size_t n, void* s) {
  LOCK;
  return copy((void*)d, h, n, true, false, s, false);
}
API CUresult cuMemcpyDtoHAsync_v2(void* h, CUdeviceptr d, size_t n, void* s) {
  LOCK;
  return copy(h, (const void*)d, n, false, true, s, false);
}
API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr a, CUdeviceptr b, size_t n, void* s) {
  LOCK;
  return copy((void*)a, (const void*)b, n, true, true, s, false);
}

template <typename T>
static CUresult memset_n(CUdeviceptr d, T v, size_t n, void* hstream, bool sync) {
  if (!valid_stream(hstream)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (n == 0) return CUDA_SUCCESS;
  if (d % sizeof(T) || !in_device(d, n * sizeof(T))) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (sync && unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return enqueue(hstream, [=] {
    T* p = (T*)(uintptr_t)d;
    for (size_t i = 0; i < n; ++i) p[i] = v;
  });
}
API CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) {
  LOCK;
  return memset_n<uint8_t>(d, v, n, nullptr, true);
}
API CUresult cuMemsetD16_v2(CUdeviceptr d, unsigned short v, size_t n) {
  LOCK;
  return memset_n<uint16_t>(d, v, n, nullptr, true);
}
API CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned v, size_t n) {
  LOCK;
  return memset_n<uint32_t>(d, v, n, nullptr, true);
}
API CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void* s) {
  LOCK;
  return memset_n<uint8_t>(d, v, n, s, false);
}
API CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, void* s) {
  LOCK;
  return memset_n<uint16_t>(d, v, n, s, false);
}
API CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, void* s) {
  LOCK;
  return memset_n<uint32_t>(d, v, n, s, false);
}

// ---- streams ----
API CUresult cuStreamCreate(void** s, unsigned) {
  LOCK;
  Stream* st = new Stream;
  g_streams.insert(st);
  *s = st;
  return CUDA_SUCCESS;
}
API CUresult cuStreamCreateWithPriority(void** s, unsigned f, int) { return cuStreamCreate(s, f); }
API CUresult cuStreamDestroy_v2(void* s) {
  LOCK;
  if (!g_streams.count((Stream*)s)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  g_streams.erase((Stream*)s);
  delete (Stream*)s;
  return CUDA_SUCCESS;
}
API CUresult cuStreamSynchronize(void* h) {
  LOCK;
  if (!valid_stream(h)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  Stream* s = stream_of(h);
  if (s->capturing) {
    s->invalidated = true;
    return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  }
  if (unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return CUDA_SUCCESS;
}
API CUresult cuStreamQuery(void* h) {
  LOCK;
  if (!valid_stream(h)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (stream_of(h)->capturing) {
    stream_of(h)->invalidated = true;
    return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  }
  return CUDA_SUCCESS;
}
API CUresult cuStreamWaitEvent(void* h, void* e, unsigned) {
  LOCK;
  if (!valid_stream(h) || !g_events.count((Event*)e)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  return CUDA_SUCCESS;  // everything before the event has run already
}
API CUresult cuStreamBeginCapture_v2(void* h, int mode) {
  LOCK;
  if (!h) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);  // the legacy stream cannot capture
  if (!valid_stream(h)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  Stream* s = stream_of(h);
  if (s->capturing) return report(__func__, __LINE__, CUDA_ERROR_ILLEGAL_STATE);
  if (mode < 0 || mode > 2) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  s->capturing = true;
  s->invalidated = false;
  s->mode = mode;
  s->owner = std::this_thread::get_id();
  s->graph = new Graph;
  return CUDA_SUCCESS;
}
API CUresult cuStreamEndCapture(void* h, void** graph) {
  LOCK;
  if (!h || !valid_stream(h)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  Stream* s = stream_of(h);
  if (!s->capturing) return report(__func__, __LINE__, CUDA_ERROR_ILLEGAL_STATE);
  if (s->mode != kRelaxed && s->owner != std::this_thread::get_id())
    return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
  s->capturing = false;
  Graph* g = s->graph;
  s->graph = nullptr;
  if (s->invalidated) {
    delete g;
    *graph = nullptr;
    return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  }
  *graph = g;
  return CUDA_SUCCESS;
}
API CUresult cuStreamIsCapturing(void* h, int* status) {
  LOCK;
  if (!valid_stream(h)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  Stream* s = stream_of(h);
  *status = !s->capturing ? 0 : s->invalidated ? 2 : 1;
  return CUDA_SUCCESS;
}
API CUresult cuThreadExchangeStreamCaptureMode(int* mode) {
  if (!mode || *mode < 0 || *mode > 2) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  std::swap(*mode, t_mode);
  return CUDA_SUCCESS;
}
API CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long) {
  LOCK;
  if (!graph) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  *exec = new Graph(*(Graph*)graph);
  return CUDA_SUCCESS;
}
API CUresult cuGraphLaunch(void* exec, void* h) {
  LOCK;
  if (!exec) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  Graph* e = (Graph*)exec;
  return enqueue(h, [e] {
    for (const Op& op : e->ops) op();  // timed as one operation
  });
}
API CUresult cuGraphExecDestroy(void* exec) {
  LOCK;
  delete (Graph*)exec;
  return CUDA_SUCCESS;
}
API CUresult cuGraphDestroy(void* g) {
  LOCK;
  delete (Graph*)g;
  return CUDA_SUCCESS;
}

// ---- events ----
API CUresult cuEventCreate(void** e, unsigned) {
  LOCK;
  Event* ev = new Event;
  g_events.insert(ev);
  *e = ev;
  return CUDA_SUCCESS;
}
API CUresult cuEventDestroy_v2(void* e) {
  LOCK;
  if (!g_events.erase((Event*)e)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  delete (Event*)e;
  return CUDA_SUCCESS;
}
API CUresult cuEventRecord(void* e, void* h) {
  LOCK;
  if (!g_events.count((Event*)e) || !valid_stream(h)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  Event* ev = (Event*)e;
  return enqueue(h, [ev] {
    if (!g_events.count(ev)) return;  // destroyed before a graph replay reached it
    ev->recorded = true;
    ev->ms = g_device_ms;
  });
}
API CUresult cuEventRecordWithFlags(void* e, void* h, unsigned) { return cuEventRecord(e, h); }
API CUresult cuEventSynchronize(void* e) {
  LOCK;
  if (!g_events.count((Event*)e)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return CUDA_SUCCESS;
}
API CUresult cuEventQuery(void* e) {
  LOCK;
  if (!g_events.count((Event*)e)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  return CUDA_SUCCESS;
}
API CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) {
  LOCK;
  Event *ea = (Event*)a, *eb = (Event*)b;
  if (!g_events.count(ea) || !g_events.count(eb)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (!ea->recorded || !eb->recorded) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  *ms = (float)(eb->ms - ea->ms);
  return CUDA_SUCCESS;
}
API CUresult cuEventElapsedTime(float* ms, void* a, void* b) { return cuEventElapsedTime_v2(ms, a, b); }

// ---- modules, functions, launches ----
API CUresult cuModuleLoadData(void** m, const void* image) {
  LOCK;
  if (!m || !image) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  uint32_t magic;
  memcpy(&magic, image, 4);
  if (magic != 0xBA55ED50u) return report(__func__, __LINE__, CUDA_ERROR_INVALID_IMAGE);  // a fatbin, as build.rs embeds
  Module* mod = new Module;
  g_modules.insert(mod);
  *m = mod;
  return CUDA_SUCCESS;
}
API CUresult cuModuleUnload(void* m) {
  LOCK;
  Module* mod = (Module*)m;
  if (!g_modules.erase(mod)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  for (auto& f : mod->funcs) g_funcs.erase(f.get());
  delete mod;
  return CUDA_SUCCESS;
}
API CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
  LOCK;
  Module* mod = (Module*)m;
  if (!g_modules.count(mod)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  const emu::KernelInfo* k = emu::find_kernel(name);
  if (!k) {
    fprintf(stderr, "swiglu emulator: no kernel named %s is compiled into the stand-in\n", name);
    return report(__func__, __LINE__, CUDA_ERROR_NOT_FOUND);
  }
  // One function per (module, name), as the driver returns the same handle
  // each time: an attribute set through one lookup holds for every other
  // (threads that look a kernel up concurrently rely on it).
  // SWIGLU_EMU_FRESH_HANDLES=1 returns a new handle per lookup instead, to
  // show that the crate does not depend on that identity.
  for (auto& fn : mod->funcs)
    if (fn->k == k && !dev().fresh_handles) {
      *f = fn.get();
      return CUDA_SUCCESS;
    }
  auto fn = std::make_unique<Func>();
  fn->k = k;
  *f = fn.get();
  g_funcs.insert(fn.get());
  mod->funcs.push_back(std::move(fn));
  return CUDA_SUCCESS;
}
API CUresult cuFuncSetAttribute(void* f, int attr, int v) {
  LOCK;
  Func* fn = (Func*)f;
  if (!g_funcs.count(fn)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (attr == 8) {  // MAX_DYNAMIC_SHARED_SIZE_BYTES
    if (v < 0 || v > Device::kSmemOptin) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
    fn->max_dyn_smem = v;
  } else if (attr == 9) {  // PREFERRED_SHARED_MEMORY_CARVEOUT
    if (v < -1 || v > 100) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
    fn->carveout = v;
  } else {
    return report(__func__, __LINE__, CUDA_ERROR_NOT_SUPPORTED);
  }
  return CUDA_SUCCESS;
}
API CUresult cuFuncGetAttribute(int* v, int attr, void* f) {
  LOCK;
  Func* fn = (Func*)f;
  if (!g_funcs.count(fn)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  switch (attr) {
    case 0: *v = 1024; break;  // MAX_THREADS_PER_BLOCK
    case 8: *v = fn->max_dyn_smem; break;
    case 9: *v = fn->carveout; break;
    default: *v = 0; break;
  }
  return CUDA_SUCCESS;
}
API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* n, void* f, int threads,
                                                        size_t smem) {
  LOCK;
  if (!g_funcs.count((Func*)f)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  *n = occupancy(*(Func*)f, threads, smem);
  return CUDA_SUCCESS;
}
API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* n, void* f, int threads,
                                                                 size_t smem, unsigned) {
  return cuOccupancyMaxActiveBlocksPerMultiprocessor(n, f, threads, smem);
}

struct LaunchAttr {
  int id;
  char pad[4];
  union {
    char raw[64];
    struct {
      unsigned x, y, z;
    } cluster;
  } v;
};
struct LaunchConfig {
  unsigned gx, gy, gz, bx, by, bz, smem;
  void* stream;
  LaunchAttr* attrs;
  unsigned nattrs;
};
static unsigned cluster_of(const LaunchConfig* c) {
  unsigned x = 0;
  for (unsigned i = 0; i < c->nattrs; ++i)
    if (c->attrs[i].id == 4) x = c->attrs[i].v.cluster.x;  // CLUSTER_DIMENSION
  return x;
}
API CUresult cuOccupancyMaxActiveClusters(int* n, void* f, const LaunchConfig* c) {
  LOCK;
  Func* fn = (Func*)f;
  if (!g_funcs.count(fn) || !c) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  if (unsafe_call_refused()) return report(__func__, __LINE__, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  unsigned cl = cluster_of(c);
  if (!cl) cl = fn->k->cluster;
  const int per_sm = occupancy(*fn, (int)(c->bx * c->by * c->bz), c->smem);
  *n = cl ? per_sm * dev().sms / (int)cl : 0;
  return CUDA_SUCCESS;
}
API CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                            unsigned by, unsigned bz, unsigned smem, void* s, void** params,
                            void** extra) {
  LOCK;
  return launch((Func*)f, gx, gy, gz, bx, by, bz, smem, s, params, extra, 0);
}
// A cooperative launch guarantees that every CTA is resident at once: the
// grid may not exceed the occupancy times the multiprocessors, and the
// emulator runs it with every CTA resident.
API CUresult cuLaunchCooperativeKernel(void* f, unsigned gx, unsigned gy, unsigned gz,
                                       unsigned bx, unsigned by, unsigned bz, unsigned smem,
                                       void* s, void** params) {
  LOCK;
  Func* fn = (Func*)f;
  if (!g_funcs.count(fn)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  const uint64_t resident = (uint64_t)occupancy(*fn, (int)(bx * by * bz), smem) * dev().sms;
  if ((uint64_t)gx * gy * gz > resident)
    return report(__func__, __LINE__, CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
  return launch(fn, gx, gy, gz, bx, by, bz, smem, s, params, nullptr, 0, true);
}
API CUresult cuLaunchKernelEx(const LaunchConfig* c, void* f, void** params, void** extra) {
  LOCK;
  if (!c) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  return launch((Func*)f, c->gx, c->gy, c->gz, c->bx, c->by, c->bz, c->smem, c->stream, params,
                extra, cluster_of(c));
}

// ---- tensor maps ----
API CUresult cuTensorMapEncodeTiled(CUtensorMap* map, int dtype, unsigned rank, void* addr,
                                    const uint64_t* dims, const uint64_t* strides,
                                    const unsigned* box, const unsigned* elem_strides,
                                    int interleave, int swizzle, int l2, int oob) {
  (void)l2;
  LOCK;
  if (!map || !addr || !dims || !box || !elem_strides) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (dtype != 6 && dtype != 9) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);  // FLOAT16, BFLOAT16 only
  if (interleave != 0 || swizzle != 3 || oob != 0) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  if (rank < 2 || rank > 3) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  for (unsigned d = 0; d < rank; ++d)
    if (elem_strides[d] != 1) return report(__func__, __LINE__, CUDA_ERROR_INVALID_VALUE);
  // Every element the map addresses must lie in one live allocation (the
  // driver does not check this; on a GPU a map past its buffer reads
  // whatever lies there).
  uint64_t span = 2 * dims[0];
  for (unsigned d = 1; d < rank; ++d) span += strides[d - 1] * (dims[d] - 1);
  if (!in_device((CUdeviceptr)addr, span))
    emu::fail("cuTensorMapEncodeTiled: the %llu bytes the map spans from %p are not inside one "
              "device allocation", (unsigned long long)span, addr);
  memset(map, 0, 128);
  emu::encode_tiled(map, rank, addr, dims, strides, box);
  return CUDA_SUCCESS;
}

// ---- for the stand-in cuBLAS (kernels/emu/standin/cublas.cpp) ----
API int swiglu_emu_in_device(unsigned long long p, size_t n) {
  LOCK;
  return in_device(p, n);
}
API CUresult swiglu_emu_enqueue(void* h, void (*fn)(void*), void* ctx, void (*drop)(void*)) {
  LOCK;
  if (!valid_stream(h)) return report(__func__, __LINE__, CUDA_ERROR_INVALID_HANDLE);
  std::shared_ptr<void> c(ctx, drop);
  return enqueue(h, [fn, c] {
    if (!dev().noexec) fn(c.get());
  });
}
