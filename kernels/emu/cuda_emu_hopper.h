// The sm_90a part of the host emulator (kernels/emu/cuda_emu.h): the named
// PTX wrappers of kernels/glu_hopper.cuh, which includes this file instead
// of its inline PTX when GLU_EMU is defined. Models:
//   * mbarrier: arrival count, transaction bytes and the phase; try_wait
//     .parity succeeds once the phase of that parity has completed; a
//     waiting thread polls (emu St::Spin);
//   * TMA loads (2-D, multicast to a cluster's CTAs): the box is read from
//     global memory through the emulator's tensor map (out-of-bounds
//     elements zero), written in the 128B-swizzle layout, and its bytes
//     completed on the mbarrier, at a random later scheduler step (or at
//     issue with Config::cp_async_late = false);
//   * TMA stores (2-D, 3-D): box elements inside the tensor are written;
//     shared memory is read when the issuing thread waits for the bulk group
//     (or at issue), so a staging buffer rewritten before that wait shows;
//   * wgmma m64n256k16 (bf16/f16, f32 accumulators, A and B from shared
//     memory through 128B-swizzle descriptors, K- or MN-major): the
//     warpgroup's ops are executed when a thread's wgmma.wait_group needs
//     them, reading shared memory then, so a stage released or refilled
//     before its wgmma retired shows (in the "early" rounds at issue
//     instead, so operands that land only after the issue show); all 128
//     threads must issue the same descriptors;
//   * named barriers, the cluster barrier, mapa + remote arrive, the
//     cluster special registers (1-D clusters along x);
//   * fence.proxy.async: a word stored with st.shared is visible to a TMA
//     store only after the storing thread's fence (else the run fails);
//   * other fences, setmaxnreg, tensor-map prefetch: no effect.
// The descriptor and accumulator-fragment formulas follow the PTX ISA
// (matrix descriptor, canonical layouts with 128B swizzle, register
// fragment D of m64nNk16); the same formulas as glu_hopper_layout.cuh's
// models, which the plain kernel's passing GPU runs confirm.
#pragma once
#include <cuda.h>

constexpr uint32_t kEmuTensorMapMagic = 0x7e5a3a11u;

namespace emu {

// cuTensorMapEncodeTiled's checks for what the kernels use: 16-bit elements,
// 128B swizzle, element strides 1, no interleave.
inline void encode_tiled(CUtensorMap* m, uint32_t rank, const void* addr, const uint64_t* dims,
                         const uint64_t* strides, const uint32_t* box) {
  if (rank < 2 || rank > 3) fail("tensor map rank %u", rank);
  if ((uintptr_t)addr % 16) fail("tensor map address %p not 16-byte aligned", addr);
  *m = CUtensorMap{};
  m->addr = addr;
  m->rank = rank;
  m->elem_bytes = 2;
  for (uint32_t d = 0; d < rank; ++d) {
    if (dims[d] == 0 || dims[d] > (1ull << 32)) fail("tensor map dim %u = %llu", d, (unsigned long long)dims[d]);
    if (box[d] == 0 || box[d] > 256) fail("tensor map box %u = %u", d, box[d]);
    m->dims[d] = dims[d];
    m->box[d] = box[d];
    if (d + 1 < rank) {
      if (strides[d] % 16) fail("tensor map stride %u = %llu not a multiple of 16", d, (unsigned long long)strides[d]);
      m->strides[d] = strides[d];
    }
  }
  if (box[0] * 2 > 128 || (box[0] * 2) % 16)
    fail("128B swizzle: inner box of %u bytes (a multiple of 16, at most 128)", box[0] * 2);
  m->magic = kEmuTensorMapMagic;
}

inline uint32_t sw128(uint32_t a) { return a ^ (((a >> 7) & 7u) << 4); }

inline void check_map(const CUtensorMap& m) {
  if (m.magic != kEmuTensorMapMagic) fail("TMA with a tensor map that was never encoded");
}

// Calls f(smem byte offset within the box, global element pointer or null
// when out of bounds) for every element of the box at coordinates c.
template <typename F>
inline void for_box(const CUtensorMap& m, const int64_t* c, F&& f) {
  const uint32_t b1 = m.box[1], b2 = m.rank > 2 ? m.box[2] : 1;
  for (uint32_t i2 = 0; i2 < b2; ++i2)
    for (uint32_t i1 = 0; i1 < b1; ++i1)
      for (uint32_t i0 = 0; i0 < m.box[0]; ++i0) {
        const int64_t g0 = c[0] + i0, g1 = c[1] + i1, g2 = m.rank > 2 ? c[2] + i2 : 0;
        const bool in = g0 >= 0 && g1 >= 0 && g2 >= 0 && (uint64_t)g0 < m.dims[0] &&
                        (uint64_t)g1 < m.dims[1] && (m.rank < 3 || (uint64_t)g2 < m.dims[2]);
        const uint32_t off = ((i2 * b1 + i1) * m.box[0] + i0) * 2u;
        char* gp = nullptr;
        if (in)
          gp = (char*)m.addr + g0 * 2 + g1 * (int64_t)m.strides[0] +
               (m.rank > 2 ? g2 * (int64_t)m.strides[1] : 0);
        f(off, gp);
      }
}
inline uint32_t box_bytes(const CUtensorMap& m) {
  return m.box[0] * m.box[1] * (m.rank > 2 ? m.box[2] : 1) * 2u;
}

// A CTA of this thread's cluster. Distributed shared memory: a CTA whose
// threads have all exited must not be accessed any more (the kernels
// synchronise the cluster before exiting for that reason).
inline Cta& cluster_peer(uint32_t rank) {
  const Cta& me = cur_cta();
  if (rank >= g_cluster) fail("CTA rank %u outside a cluster of %u", rank, g_cluster);
  const unsigned first = (unsigned)(g_cur->cta - me.rank);
  Cta& peer = g_ctas[first + rank];
  if (peer.dead) fail("access to the shared memory of cluster CTA rank %u after it exited", rank);
  return peer;
}

// ---- TMA ----------------------------------------------------------------------------------
inline void tma_load(Cta& dst_cta, uint32_t dst, const CUtensorMap& map, uint32_t bar,
                     const int64_t* c) {
  check_map(map);
  if (dst % 128) fail("TMA load to shared address %u (not 128-byte aligned)", dst);
  smem_at_cta(dst_cta, dst, box_bytes(map), 16, "TMA load box");
  mbar_in(dst_cta, bar, "TMA load mbarrier");
  ++g_stats.tma_loads;
  Cta* target = &dst_cta;
  int64_t cc[3] = {c[0], c[1], map.rank > 2 ? c[2] : 0};
  auto op = [target, dst, map, bar, cc]() {
    if (target->dead) fail("TMA load lands in the shared memory of a CTA that has exited");
    for_box(map, cc, [&](uint32_t off, const char* gp) {
      char* d = smem_at_cta(*target, sw128(dst + off), 2, 2, "TMA load element");
      if (gp) {
        check_global(gp, 2, "TMA load element");
        memcpy(d, gp, 2);
      } else {
        memset(d, 0, 2);
      }
    });
    mbar_complete_tx(*target, bar, box_bytes(map));
  };
  if (g_cfg.cp_async_late)
    g_async.push_back(op);
  else
    op();
}

// Generic-proxy stores to shared memory (st.shared) reach the async proxy
// (a TMA store reading them) only through a fence.proxy.async by the storing
// thread, ordered before the store's issue by a barrier.
inline void proxy_store(uint32_t addr, uint32_t bytes) {
  Cta& c = cur_cta();
  const uint32_t me = (uint32_t)(g_cur - g_fibers.data()) + 1;
  for (uint32_t w = (addr - c.win) / 4; w < (addr - c.win + bytes + 3) / 4; ++w) {
    c.proxy_owner[w] = me;
    g_cur->proxy_words.push_back(w);
  }
}
inline void proxy_fence() {
  Cta& c = cur_cta();
  const uint32_t me = (uint32_t)(g_cur - g_fibers.data()) + 1;
  for (uint32_t w : g_cur->proxy_words)
    if (c.proxy_owner[w] == me) c.proxy_owner[w] = 0;
  g_cur->proxy_words.clear();
}

inline void tma_store(const CUtensorMap& map, uint32_t src, const int64_t* c) {
  check_map(map);
  if (src % 128) fail("TMA store from shared address %u (not 128-byte aligned)", src);
  smem_at(src, box_bytes(map), 16, "TMA store box");
  {
    const int64_t cc0[3] = {c[0], c[1], map.rank > 2 ? c[2] : 0};
    Cta& me = cur_cta();
    for_box(map, cc0, [&](uint32_t off, char* gp) {
      if (!gp) return;  // not stored
      const uint32_t w = (sw128(src + off) - me.win) / 4;
      if (me.proxy_owner[w])
        fail("TMA store reads shared word %u that thread %u stored without a "
             "fence.proxy.async before the store was issued", me.win + w * 4,
             me.proxy_owner[w] - 1);
    });
  }
  ++g_stats.tma_stores;
  Cta* cta = &cur_cta();
  int64_t cc[3] = {c[0], c[1], map.rank > 2 ? c[2] : 0};
  auto op = [cta, src, map, cc]() {
    for_box(map, cc, [&](uint32_t off, char* gp) {
      if (!gp) return;
      check_global(gp, 2, "TMA store element");
      memcpy(gp, smem_at_cta(*cta, sw128(src + off), 2, 2, "TMA store element"), 2);
    });
  };
  if (g_cfg.cp_async_late)
    g_cur->bulk_open.push_back(op);
  else
    op();
}
inline void bulk_commit() {
  g_cur->bulk_groups.push_back(std::move(g_cur->bulk_open));
  g_cur->bulk_open.clear();
}
inline void bulk_wait() {
  Fiber& f = *g_cur;
  while (!f.bulk_groups.empty()) {
    for (auto& op : f.bulk_groups.front()) op();
    f.bulk_groups.pop_front();
  }
  ++g_progress;
}

// ---- wgmma -----------------------------------------------------------------------------------
struct WgOp {
  uint64_t da = 0, db = 0;
  int ta = 0, tb = 0;
  Op type = Op::None;
  float* acc[128] = {};
  int arrived = 0;
  int64_t group = -1;
  bool done = false;
};
struct WgState {
  std::deque<WgOp> ops;
  uint64_t base = 0;  // index of ops.front()
};
inline std::vector<WgState> g_wg;  // per (CTA, warpgroup)
// wgmma.fence (Fiber::wg_fenced): before a thread's first wgmma.mma_async,
// and again before the first one after it has waited (and so may have
// touched the accumulator registers).

inline uint64_t g_wg_launch = ~0ull;  // the g_run g_wg belongs to

inline WgState& wg_state() {
  const size_t per = (g_threads + 127) / 128;
  if (g_wg_launch != g_run) {  // a new set of resident CTAs
    g_wg_launch = g_run;
    g_wg.assign(g_ctas.size() * per, WgState{});
  }
  return g_wg[g_cur->cta * per + g_cur->tix / 128];
}

inline float wg_elem(Cta& c, uint32_t addr, Op type) {
  uint16_t b;
  memcpy(&b, smem_at_cta(c, addr, 2, 2, "wgmma operand"), 2);
  return decode16(b, type);
}
inline void wg_desc(uint64_t d, uint32_t* start, uint32_t* lbo, uint32_t* sbo, uint32_t* base) {
  *start = (uint32_t)(d & 0x3FFFu) << 4;
  *lbo = (uint32_t)((d >> 16) & 0x3FFFu) << 4;
  *sbo = (uint32_t)((d >> 32) & 0x3FFFu) << 4;
  *base = (uint32_t)((d >> 49) & 7u);
  if ((d >> 62) != 1) fail("wgmma descriptor %llx: not the 128B swizzle", (unsigned long long)d);
}
// Byte address of element (mn, k) of a 16-bit operand, 128B swizzle:
// K-major: 8-row core groups SBO apart, rows 128 B apart, k contiguous;
// MN-major: 64-element MN atoms LBO apart, 8-row k groups SBO apart.
// The XOR pattern (16-byte chunk ^ 128-byte row, repeating every 1024 B)
// is taken relative to the start address plus the descriptor's base offset
// (PTX: the base offset is (start >> 7) & 7 when the start is not at the
// beginning of the pattern), so with base offset 0 it agrees with TMA's
// swizzle of absolute addresses only for a 1024-aligned pattern start.
inline uint32_t wg_addr(uint64_t d, bool mn_major, uint32_t mn, uint32_t k) {
  uint32_t start, lbo, sbo, base;
  wg_desc(d, &start, &lbo, &sbo, &base);
  const uint32_t a = !mn_major
                         ? start + (mn / 8u) * sbo + (mn % 8u) * 128u + 2u * k
                         : start + (mn / 64u) * lbo + (k / 8u) * sbo + (k % 8u) * 128u +
                               2u * (mn % 64u);
  const uint32_t pattern_start = start & ~127u;  // rows of the pattern begin at 128-byte lines
  return a ^ (((((a - pattern_start) >> 7) + base) & 7u) << 4);
}

inline void wg_execute(Cta& c, WgOp& op) {
  ++g_stats.wgmma;
  static thread_local double A[64][16], B[16][256];
  for (uint32_t m = 0; m < 64; ++m)
    for (uint32_t k = 0; k < 16; ++k) A[m][k] = wg_elem(c, wg_addr(op.da, op.ta, m, k), op.type);
  for (uint32_t k = 0; k < 16; ++k)
    for (uint32_t n = 0; n < 256; ++n) B[k][n] = wg_elem(c, wg_addr(op.db, op.tb, n, k), op.type);
  for (int t = 0; t < 128; ++t) {
    const int w = t / 32, l = t % 32;
    for (int i = 0; i < 128; ++i) {
      const int row = 16 * w + l / 4 + 8 * ((i / 2) % 2);
      const int col = 8 * (i / 4) + 2 * (l % 4) + (i % 2);
      double s = 0;
      for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
      op.acc[t][i] = (float)((double)op.acc[t][i] + s);
    }
  }
  op.done = true;
  ++g_progress;
}

// wgmma.mma_async / commit_group / wait_group are .sync.aligned over the
// warpgroup: each is a rendezvous of its 128 threads (a named barrier the
// kernels do not use, id 1000 + warpgroup), so no thread runs ahead of the
// others' issue, as on the hardware.
inline void wg_rendezvous() { named_barrier(1000u + g_cur->tix / 128u, 128u); }


inline void wgmma_issue(Op type, float* acc, uint64_t da, uint64_t db, int tb, int ta) {
  WgState& s = wg_state();
  Fiber& f = *g_cur;
  if (!f.wg_fenced) fail("wgmma.mma_async without a wgmma.fence since the thread's last wait");
  const uint64_t j = f.wg_issued++;
  if (j < s.base) fail("wgmma bookkeeping: op %llu already retired", (unsigned long long)j);
  while (s.base + s.ops.size() <= j) s.ops.push_back(WgOp{});
  WgOp& op = s.ops[j - s.base];
  if (op.arrived == 0) {
    op.da = da;
    op.db = db;
    op.ta = ta;
    op.tb = tb;
    op.type = type;
  } else if (op.da != da || op.db != db || op.ta != ta || op.tb != tb || op.type != type) {
    fail("wgmma: the warpgroup's threads issued different operands");
  }
  op.acc[f.tix % 128] = acc;
  ++op.arrived;
  wg_rendezvous();
  // Early rounds: the op reads shared memory at issue (the other end of the
  // window in which the hardware may read it: data that is not there yet
  // at issue shows).
  if (!g_cfg.wgmma_late) {
    WgOp& o = s.ops[j - s.base];
    if (!o.done) wg_execute(cur_cta(), o);
  }
}
inline void wgmma_commit_group() {
  WgState& s = wg_state();
  Fiber& f = *g_cur;
  for (uint64_t j = f.wg_mark; j < f.wg_issued; ++j) {
    WgOp& op = s.ops[j - s.base];
    if (op.group < 0)
      op.group = (int64_t)f.wg_commits;
    else if (op.group != (int64_t)f.wg_commits)
      fail("wgmma: threads committed the same op in different groups");
  }
  f.wg_mark = f.wg_issued;
  ++f.wg_commits;
  wg_rendezvous();
}
// The groups older than the newest n retire now: the first thread through
// executes them (reading shared memory at this point), for all 128.
inline void wgmma_wait_groups(int n) {
  g_cur->wg_fenced = false;
  wg_rendezvous();
  WgState& s = wg_state();
  Fiber& f = *g_cur;
  const int64_t need = (int64_t)f.wg_commits - n;  // groups < need must be done
  for (WgOp& op : s.ops) {
    if (op.group < 0 || op.group >= need || op.done) continue;
    if (op.arrived != 128) fail("wgmma: an op of a retiring group lacks lanes");
    wg_execute(cur_cta(), op);
  }
  while (!s.ops.empty() && s.ops.front().done) {
    s.ops.pop_front();
    ++s.base;
  }
}

}  // namespace emu

// ---- glu_hopper.cuh's wrappers --------------------------------------------------------
inline void mbar_init(uint32_t bar, uint32_t count) { emu::mbar_init_at(bar, count); }
inline void mbar_init_fence() {}
inline void mbar_arrive(uint32_t bar) { emu::mbar_arrive_on(emu::cur_cta(), bar, 0); }
inline void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  emu::mbar_arrive_on(emu::cur_cta(), bar, bytes);
}
inline uint32_t mbar_try_wait(uint32_t bar, uint32_t parity) {
  return emu::mbar_test_wait(bar, parity, "mbarrier.try_wait");
}
inline void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}
inline void mbar_wait_or_trap(uint32_t bar, uint32_t parity) { mbar_wait(bar, parity); }
template <bool TRAP>
inline void mbar_wait_sched(uint32_t bar, uint32_t parity) {
  mbar_wait(bar, parity);
}
inline void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int32_t c0,
                        int32_t c1) {
  const int64_t c[3] = {c0, c1, 0};
  emu::tma_load(emu::cur_cta(), dst, *map, bar, c);
}
inline void tma_load_2d_multicast(uint32_t dst, const CUtensorMap* map, uint32_t bar, int32_t c0,
                                  int32_t c1, uint16_t cta_mask) {
  const int64_t c[3] = {c0, c1, 0};
  for (uint32_t r = 0; r < 16; ++r)
    if (cta_mask >> r & 1u) emu::tma_load(emu::cluster_peer(r), dst, *map, bar, c);
}
inline uint32_t cluster_cta_rank() { return emu::cur_cta().rank; }
inline uint32_t cluster_index_x() { return blockIdx.x / emu::g_cluster; }
inline uint32_t cluster_count_x() { return gridDim.x / emu::g_cluster; }
inline void cluster_sync_all() { emu::cluster_barrier(); }
inline void mbar_arrive_remote(uint32_t bar, uint32_t cta) {
  emu::mbar_arrive_on(emu::cluster_peer(cta), bar, 0);
}
inline void tma_store_2d(const CUtensorMap* map, uint32_t src, int32_t c0, int32_t c1) {
  const int64_t c[3] = {c0, c1, 0};
  emu::tma_store(*map, src, c);
}
inline void tma_store_3d(const CUtensorMap* map, uint32_t src, int32_t c0, int32_t c1,
                         int32_t c2) {
  const int64_t c[3] = {c0, c1, c2};
  emu::tma_store(*map, src, c);
}
inline void tma_store_commit() { emu::bulk_commit(); }
inline void tma_store_wait_read() { emu::bulk_wait(); }
inline void tma_store_wait_all() { emu::bulk_wait(); }
inline void fence_proxy_async_smem() { emu::proxy_fence(); }
inline void named_bar_sync(uint32_t id, uint32_t count) { emu::named_barrier(id, count); }
inline unsigned int ld_acquire_gpu_u32(const unsigned int* p) {
  emu::check_global(p, 4, "ld.acquire.gpu");
  return *(const volatile unsigned int*)p;
}
inline void st_shared_u32(uint32_t addr, uint32_t v) {
  memcpy(emu::smem_at(addr, 4, 4, "st.shared.u32"), &v, 4);
  emu::proxy_store(addr, 4);
}
inline void st_shared_v4(uint32_t addr, uint4 v) {
  memcpy(emu::smem_at(addr, 16, 16, "st.shared.v4"), &v, 16);
  emu::proxy_store(addr, 16);
}
inline uint32_t ld_shared_u32_ordered(uint32_t addr) {
  uint32_t v;
  memcpy(&v, emu::smem_at(addr, 4, 4, "ld.shared.u32"), 4);
  return v;
}
inline void tma_prefetch_desc(const CUtensorMap* map) { emu::check_map(*map); }
template <int N>
inline void setmaxnreg_dec() {}
template <int N>
inline void setmaxnreg_inc() {}
inline void wgmma_fence() { emu::g_cur->wg_fenced = true; }
inline void wgmma_commit() { emu::wgmma_commit_group(); }
template <int N>
inline void wgmma_wait() {
  emu::wgmma_wait_groups(N);
}
inline void wgmma_fence_acc(float (&)[kWgAccRegs]) {}
template <typename T, int TRANS_B, int TRANS_A = 0>
inline void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
  emu::wgmma_issue(std::is_same<T, __half>::value ? emu::Op::MmaF16 : emu::Op::MmaBf16, d, desc_a,
                   desc_b, TRANS_B, TRANS_A);
}
