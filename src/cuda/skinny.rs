//! Decode-sized (M ≤ 64) fused forward: `kernels/fused_glu_skinny.cu`.
//!
//! Weight-streaming tensor-core kernel: 64 output columns (of gate and up) per
//! block, a 4–5 stage cp.async ring of 64-deep k-tiles, x padded to 16/32/64
//! rows, split-K across blocks (with an in-kernel, deterministic last-block
//! reduction) only when `ceil(N/64)` column tiles leave most of the
//! `2 × #SM` block slots empty. See the kernel file for the design.
//!
//! The split-K partial sums and tickets live in a scratch the [`CudaGlu`]
//! allocates once (sized for every plan of that row padding) and reuses:
//! a decode step queues one kernel launch, no allocation and no memset, so
//! it can also be captured in a CUDA graph once the scratch exists.
//!
//! Eligibility ([`skinny_eligible`]): bf16/f16, `1 ≤ M ≤ 64`, `K % 8 == 0`,
//! `N % 8 == 0`, x / w_gate / w_up / out 16-byte aligned; both layouts and
//! the concatenated `[2N, K]` form.
//!
//! The same kernels on a stream-K schedule ([`Path::FusedSkinnyStreamK`],
//! `fused_glu_skinny_sk_*`): the (column tile, k-tile) iterations dealt out
//! in equal contiguous shares to one block per resident slot (the driver's
//! occupancy for the kernel times the SMs); tiles that several blocks share
//! are summed by the last of them from f32 partials in a scratch of the
//! [`CudaGlu`] (two slots of `M × 128` f32 per block, one counter per column
//! tile). See `GluSkinnyStreamK` in `kernels/glu_skinny.cuh`.
//!
//! Register-streaming kernels ([`Path::FusedSkinnyRs`],
//! `fused_glu_skinny_rs_nk_*`, session 17, compiled, unverified on a GPU):
//! M ≤ 16, NK weights; the mma roles swapped (weights as the A operand
//! straight from global memory in 16-byte loads, x as B), so that registers
//! hold loads in flight instead of accumulators; no shared-memory ring; the
//! same 64-column tiles and split-K protocol, on a grid sized to their own
//! residency ([`skinny_rs_plan`]).
//!
//! [`Path::FusedSkinnyStreamK`]: super::Path::FusedSkinnyStreamK
//! [`Path::FusedSkinnyRs`]: super::Path::FusedSkinnyRs

use super::CudaGlu;
use super::forward::is_aligned16;
use super::params::GluParams;
use super::scratch::ScratchNeed;
use crate::error::{GluError, Result};
use crate::types::{DType, WeightLayout};
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use std::mem::{offset_of, size_of};

/// Module (file stem) of the skinny kernels.
pub(crate) const SKINNY_MODULE: &str = "fused_glu_skinny";
/// Output columns per block (`GLU_SKINNY_BN`).
pub(crate) const SKINNY_BN: usize = 64;
/// k per pipeline stage (`GLU_SKINNY_BK`).
pub(crate) const SKINNY_BK: usize = 64;
/// Largest M (`GLU_SKINNY_MAX_M`).
pub(crate) const SKINNY_MAX_M: usize = 64;
/// Resident blocks per SM the configurations are sized for (`GLU_SKINNY_BLOCKS_PER_SM`).
pub(crate) const SKINNY_BLOCKS_PER_SM: usize = 2;
/// Minimum k-tiles per split-K slice (`GLU_SKINNY_MIN_KTILES_PER_SPLIT`).
pub(crate) const SKINNY_MIN_KTILES_PER_SPLIT: usize = 4;
/// `(m_pad, threads, dynamic smem bytes)` per kernel configuration
/// (`GLU_SKINNY_M{16,32,64}_{THREADS,SMEM_BYTES}`).
pub(crate) const SKINNY_CONFIGS: [(usize, u32, u32); 3] =
    [(16, 128, 73_728), (32, 128, 102_400), (64, 128, 98_304)];

/// Threads of the register-streaming kernels (`GLU_SKINNY_RS_THREADS`).
pub(crate) const SKINNY_RS_THREADS: u32 = 128;
/// Resident blocks per SM their plan counts on (`GLU_SKINNY_RS_MINB`).
pub(crate) const SKINNY_RS_MINB: usize = 4;
/// Largest M they take (`GLU_SKINNY_RS_MAX_M`).
pub(crate) const SKINNY_RS_MAX_M: usize = 16;

/// Mirror of `struct GluSkinnySplit` (`kernels/glu_skinny.cuh`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct GluSkinnySplit {
    pub ws: *mut f32,
    pub counters: *mut u32,
    pub k_per_split: i64,
    pub splits: i32,
    pub reserved: i32,
}

// SAFETY: plain `#[repr(C)]` data matching the CUDA struct (asserted below and
// by `static_assert`s in the header); the pointers are device addresses of
// the `CudaGlu`'s split-K scratch (or null).
unsafe impl DeviceRepr for GluSkinnySplit {}

const _: () = {
    assert!(offset_of!(GluSkinnySplit, ws) == 0);
    assert!(offset_of!(GluSkinnySplit, counters) == 8);
    assert!(offset_of!(GluSkinnySplit, k_per_split) == 16);
    assert!(offset_of!(GluSkinnySplit, splits) == 24);
    assert!(size_of::<GluSkinnySplit>() == 32);
};

/// Mirror of `struct GluSkinnyStreamK` (`kernels/glu_skinny.cuh`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct GluSkinnyStreamK {
    pub ws: *mut f32,
    pub counters: *mut u32,
}

// SAFETY: plain `#[repr(C)]` data matching the CUDA struct (asserted below and
// by `static_assert`s in the header); the pointers are device addresses of
// the `CudaGlu`'s stream-K scratch.
unsafe impl DeviceRepr for GluSkinnyStreamK {}

const _: () = {
    assert!(offset_of!(GluSkinnyStreamK, ws) == 0);
    assert!(offset_of!(GluSkinnyStreamK, counters) == 8);
    assert!(size_of::<GluSkinnyStreamK>() == 16);
};

/// Resident block slots of a stream-K kernel: `capacity` blocks per SM
/// (at least 1) times the SMs (at least 1).
fn skinny_sk_slots(capacity: usize, sm_count: usize) -> usize {
    capacity.max(1) * sm_count.max(1)
}

/// Grid of a stream-K launch (mirrors `glu_sk_blocks`): one block per
/// resident slot ([`skinny_sk_slots`]), at most one per
/// [`SKINNY_MIN_KTILES_PER_SPLIT`] iterations, at least 1.
pub(crate) fn skinny_sk_blocks(iters: usize, capacity: usize, sm_count: usize) -> usize {
    skinny_sk_slots(capacity, sm_count)
        .min(iters / SKINNY_MIN_KTILES_PER_SPLIT)
        .max(1)
}

/// A stream-K launch: the kernel, its configuration, its grid, the largest
/// grid of that configuration (the resident slots) and the column tiles.
struct SkLaunch {
    f: cudarc::driver::CudaFunction,
    plan: SkinnyPlan,
    grid: usize,
    slots: usize,
    n_tiles: usize,
}

/// `(column tiles, k-tiles)` of the decode kernels' 64 × 64 tiling.
pub(crate) fn skinny_tiles(n: usize, k: usize) -> (usize, usize) {
    (n.div_ceil(SKINNY_BN), k.div_ceil(SKINNY_BK))
}

/// Element counts `(workspace f32, counters u32)` a stream-K launch of `g`
/// blocks uses for `m` rows and `n_tiles` column tiles: two slots of
/// `m × 2 × 64` f32 per block, one counter per column tile.
pub(crate) fn skinny_sk_scratch_len(g: usize, m: usize, n_tiles: usize) -> (usize, usize) {
    (2 * g * m * 2 * SKINNY_BN, n_tiles)
}

/// Launch plan (mirrors `glu_skinny_plan` in `kernels/glu_skinny.cuh`,
/// which has no shared-memory limit: see [`skinny_config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SkinnyPlan {
    pub m_pad: usize,
    pub threads: u32,
    pub smem: u32,
    pub n_tiles: usize,
    pub splits: usize,
    pub k_per_split: usize,
}

/// The kernel configuration for `m` rows: the smallest row padding ≥ `m`
/// whose dynamic shared memory fits `smem_optin`, the device's opt-in limit
/// per block. sm_86/89 (and consumer Blackwell) allow 99 KiB, less than the
/// 32-row kernel's 100 KiB ring: M = 17..32 runs the 64-row kernel there.
/// The 64-row kernel (96 KiB) fits every device of compute capability 8.0
/// and up.
pub(crate) fn skinny_config(m: usize, smem_optin: u32) -> (usize, u32, u32) {
    SKINNY_CONFIGS
        .iter()
        .copied()
        .find(|&(m_pad, _, smem)| m <= m_pad && smem <= smem_optin)
        .unwrap_or(SKINNY_CONFIGS[SKINNY_CONFIGS.len() - 1])
}

/// Chooses the kernel configuration ([`skinny_config`]) and the split-K
/// factor: one wave of `2 × sm_count` resident blocks; split K only while
/// the column tiles leave slots empty, each slice at least
/// [`SKINNY_MIN_KTILES_PER_SPLIT`] k-tiles, no empty slice. `m`, `k`,
/// `n` ≥ 1.
pub(crate) fn skinny_plan(
    m: usize,
    n: usize,
    k: usize,
    sm_count: usize,
    smem_optin: u32,
) -> SkinnyPlan {
    let (m_pad, threads, smem) = skinny_config(m, smem_optin);
    let n_tiles = n.div_ceil(SKINNY_BN);
    let slots = sm_count.max(1) * SKINNY_BLOCKS_PER_SM;
    let (splits, k_per_split) = split_k(k, slots / n_tiles);
    SkinnyPlan {
        m_pad,
        threads,
        smem,
        n_tiles,
        splits,
        k_per_split,
    }
}

/// The K slices of a split-K plan (mirrors `glu_skinny_split_k`): `wanted`
/// clamped to at least 1 and at most one slice per
/// [`SKINNY_MIN_KTILES_PER_SPLIT`] k-tiles, whole 64-deep k-tiles per slice,
/// no empty slice: `(splits, k_per_split)`. `k` ≥ 1.
fn split_k(k: usize, wanted: usize) -> (usize, usize) {
    let k_tiles = k.div_ceil(SKINNY_BK);
    let max_splits = (k_tiles / SKINNY_MIN_KTILES_PER_SPLIT).max(1);
    let kt_per = k_tiles.div_ceil(wanted.clamp(1, max_splits));
    (k_tiles.div_ceil(kt_per), kt_per * SKINNY_BK)
}

/// Launch plan of the register-streaming kernels (mirrors
/// `glu_skinny_rs_plan`): row padding 8 or 16, the 64-column tiles, and as
/// many K slices as keep the whole grid resident at once
/// (`n_tiles × splits ≤ SKINNY_RS_MINB × sm_count`), each at least
/// [`SKINNY_MIN_KTILES_PER_SPLIT`] k-tiles, no empty slice. No dynamic
/// shared memory. `m`, `k`, `n` ≥ 1.
pub(crate) fn skinny_rs_plan(m: usize, n: usize, k: usize, sm_count: usize) -> SkinnyPlan {
    let n_tiles = n.div_ceil(SKINNY_BN);
    let (splits, k_per_split) = split_k(k, sm_count.max(1) * SKINNY_RS_MINB / n_tiles);
    SkinnyPlan {
        m_pad: if m <= 8 { 8 } else { 16 },
        threads: SKINNY_RS_THREADS,
        smem: 0,
        n_tiles,
        splits,
        k_per_split,
    }
}

/// Whether the skinny kernel can run this problem: bf16/f16, `1 ≤ m ≤ 64`,
/// `k` and `n` positive multiples of 8, and `ptrs_aligned` (x, w_gate, w_up
/// and out all 16-byte aligned). Biases have no alignment requirement.
pub(crate) fn skinny_eligible(
    m: usize,
    k: usize,
    n: usize,
    dtype: DType,
    ptrs_aligned: bool,
) -> bool {
    matches!(dtype, DType::BF16 | DType::F16)
        && (1..=SKINNY_MAX_M).contains(&m)
        && k > 0
        && n > 0
        && k % 8 == 0
        && n % 8 == 0
        && ptrs_aligned
}

/// Element counts `(workspace f32, counters u32)` that cover every split-K
/// launch of the kernel for `m_pad` rows on `sm_count` SMs: a split plan has
/// `splits × n_tiles ≤ 2 × sm_count` ([`skinny_plan`]), so its partial sums
/// `splits × M × 2N ≤ m_pad × 2 × 64 × slots`, and it splits only while
/// `n_tiles < slots`. About 2.2 MB of f32 for `m_pad = 16` on 132 SMs,
/// 8.7 MB for 64.
pub(crate) fn skinny_scratch_len(m_pad: usize, sm_count: usize) -> (usize, usize) {
    let slots = sm_count.max(1) * SKINNY_BLOCKS_PER_SM;
    (m_pad * 2 * SKINNY_BN * slots, slots)
}

impl CudaGlu {
    /// [`GluError::Unsupported`] / [`GluError::Misaligned`] when
    /// [`skinny_eligible`] does not hold for `p`; otherwise `(m, n, k)`.
    fn check_skinny(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<(usize, usize, usize)> {
        let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
        if p.m < 1 || p.n < 1 || p.k < 1 || !skinny_eligible(m, k, n, dtype, true) {
            return Err(GluError::Unsupported {
                what: format!(
                    "the skinny kernel takes bf16/f16, 1 <= M <= {SKINNY_MAX_M}, K and N multiples of 8 (got M={m}, K={k}, N={n})"
                ),
                dtype,
                layout,
            });
        }
        let ptrs = [p.x as u64, p.out as u64, p.w_gate as u64, p.w_up as u64];
        if !is_aligned16(&ptrs) {
            let bad = ptrs.into_iter().find(|q| q % 16 != 0).unwrap_or(0);
            return Err(GluError::Misaligned {
                what: "device buffer (skinny kernel)",
                required: 16,
                value: bad as usize,
            });
        }
        Ok((m, n, k))
    }

    /// Launches the skinny kernel for `p` (built like `forward` builds it:
    /// buffers checked against m, n, k and the layout).
    ///
    /// Returns [`GluError::Unsupported`] / [`GluError::Misaligned`] (nothing
    /// launched) when [`skinny_eligible`] does not hold.
    pub(crate) fn launch_skinny(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        let (m, n, k) = self.check_skinny(p, dtype, layout)?;
        let plan = skinny_plan(m, n, k, self.sm_count as usize, self.smem_optin);
        let name = format!(
            "{SKINNY_MODULE}_{}_{}_m{}",
            layout.short_name(),
            dtype.name(),
            plan.m_pad
        );
        // splits <= 2 * sm_count, far below the 65535 grid-y limit.
        let caps = skinny_scratch_len(plan.m_pad, self.sm_count as usize);
        self.launch_skinny_split(p, (m, n), plan, &name, caps, (dtype, layout))
    }

    /// Launches the register-streaming decode kernel for `p` (the checks of
    /// [`CudaGlu::launch_skinny`], plus M ≤ 16 and NK weights).
    pub(crate) fn launch_skinny_rs(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        let (m, n, k) = self.check_skinny(p, dtype, layout)?;
        if m > SKINNY_RS_MAX_M || layout != WeightLayout::NK {
            return Err(GluError::Unsupported {
                what: format!(
                    "the register-streaming decode kernel takes M <= {SKINNY_RS_MAX_M} and NK weights (got M={m}, {} weights)",
                    layout.short_name()
                ),
                dtype,
                layout,
            });
        }
        let plan = skinny_rs_plan(m, n, k, self.sm_count as usize);
        let name = format!("{SKINNY_MODULE}_rs_nk_{}_m{}", dtype.name(), plan.m_pad);
        // A split plan has n_tiles * splits <= MINB * sm_count slots (so
        // splits is far below the 65535 grid-y limit), hence
        // splits * m * 2n <= 16 * 128 * slots f32 and n_tiles < slots.
        let slots = (self.sm_count as usize).max(1) * SKINNY_RS_MINB;
        let caps = (SKINNY_RS_MAX_M * 2 * SKINNY_BN * slots, slots);
        self.launch_skinny_split(p, (m, n), plan, &name, caps, (dtype, layout))
    }

    /// One launch of a split-K decode kernel (`name`: the ring kernels or
    /// the register-streaming ones, which share the parameter blocks, the
    /// workspace protocol and the scratch) on `plan`'s grid; `caps`: the
    /// scratch capacities `(f32, u32)` to allocate if it must grow. The
    /// caller has checked `p` ([`CudaGlu::check_skinny`] and the kernel's
    /// own M and layout limits) and built `plan` for `(m, n)`.
    fn launch_skinny_split(
        &self,
        p: &GluParams,
        (m, n): (usize, usize),
        plan: SkinnyPlan,
        name: &str,
        (ws_cap, counters_cap): (usize, usize),
        (dtype, layout): (DType, WeightLayout),
    ) -> Result<()> {
        if plan.n_tiles > i32::MAX as usize {
            return Err(GluError::Overflow {
                what: "N (grid x of the decode kernel)",
                dims: vec![n],
                limit: "2^31-1 column tiles",
            });
        }
        let f = self.function_with_smem(SKINNY_MODULE, name, plan.smem)?;
        let cfg = LaunchConfig {
            grid_dim: (plan.n_tiles as u32, plan.splits as u32, 1),
            block_dim: (plan.threads, 1, 1),
            shared_mem_bytes: plan.smem,
        };
        let s = &self.stream;
        if plan.splits <= 1 {
            let split = GluSkinnySplit {
                ws: std::ptr::null_mut(),
                counters: std::ptr::null_mut(),
                k_per_split: plan.k_per_split as i64,
                splits: 1,
                reserved: 0,
            };
            // SAFETY: `p` describes buffers checked against (m, n, k) and the
            // layout by the caller; the kernel reads x [m,k], both weights
            // [k*n], biases [n] when non-null, writes out [m,n] only, with all
            // tails predicated. Its preconditions (bf16/f16, 1 <= m <= the
            // kernel's padding, K, N multiples of 8, 16-byte aligned x/w/out,
            // NK weights for the register-streaming kernels) were checked by
            // the caller, the dynamic smem limit was raised by
            // `function_with_smem`, and with splits == 1 it never touches
            // ws/counters (null).
            unsafe { s.launch_builder(&f).arg(p).arg(&split).launch(cfg) }?;
            return Ok(());
        }
        let ws_len = plan
            .splits
            .checked_mul(m)
            .and_then(|v| v.checked_mul(2 * n))
            .ok_or_else(|| GluError::Overflow {
                what: "decode kernel's split-K workspace",
                dims: vec![plan.splits, m, 2 * n],
                limit: "usize",
            })?;
        let need = ScratchNeed {
            ws: ws_len,
            counters: plan.n_tiles,
            ws_cap,
            counters_cap,
        };
        self.with_split_scratch(
            &self.skinny_scratch,
            need,
            "the decode kernel's split-K scratch",
            (dtype, layout),
            |ws, counters| {
                let split = GluSkinnySplit {
                    ws,
                    counters,
                    k_per_split: plan.k_per_split as i64,
                    splits: plan.splits as i32,
                    reserved: 0,
                };
                // SAFETY: as above; in addition ws holds at least
                // splits*m*2n f32 (written by each launch before it reads
                // them) and counters at least n_tiles u32, which are zero
                // between launches (zeroed at allocation; each launch's last
                // block per column tile resets its counter, whichever decode
                // kernel it is). Both belong to this `CudaGlu` and are used
                // only by launches on `self.stream`, which run one after
                // another; the scratch lock is held until this launch is
                // queued.
                unsafe { s.launch_builder(&f).arg(p).arg(&split).launch(cfg) }?;
                Ok(())
            },
        )
    }
}

impl CudaGlu {
    /// Resident blocks per SM of the stream-K kernel `f` (named `name`,
    /// `threads`, `smem` bytes), asked of the driver once per kernel, after
    /// setting the kernel's preferred shared-memory carveout to all of it:
    /// the grid is sized to this occupancy, so the launches must get the
    /// carveout it assumes (the attribute stays with the kernel). A failure
    /// of either counts 1 block per SM, and is not retried (a grid that is
    /// too small only leaves slots empty; one that is too large would run a
    /// second wave).
    fn skinny_sk_capacity(
        &self,
        f: &cudarc::driver::CudaFunction,
        name: &str,
        threads: u32,
        smem: u32,
    ) -> usize {
        let mut known = self
            .skinny_sk_capacity
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *known.entry(name.to_string()).or_insert_with(|| {
            // The first launch may come inside a stream capture; the query is
            // no stream operation, but in relaxed mode it cannot invalidate
            // a global-mode capture either way.
            let _relaxed = super::autotune::RelaxedCapture::new().ok();
            let carveout = f.set_attribute(
                cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
                100,
            );
            carveout
                .ok()
                .and_then(|()| {
                    f.occupancy_max_active_blocks_per_multiprocessor(threads, smem as usize, None)
                        .ok()
                })
                .filter(|&b| b > 0)
                .map_or(1, |b| b as usize)
        })
    }

    /// The stream-K launch for `(m, n, k)`.
    fn skinny_sk_launch_plan(
        &self,
        m: usize,
        n: usize,
        k: usize,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<SkLaunch> {
        let plan = skinny_plan(m, n, k, self.sm_count as usize, self.smem_optin);
        let name = format!(
            "{SKINNY_MODULE}_sk_{}_{}_m{}",
            layout.short_name(),
            dtype.name(),
            plan.m_pad
        );
        let f = self.function_with_smem(SKINNY_MODULE, &name, plan.smem)?;
        let capacity = self.skinny_sk_capacity(&f, &name, plan.threads, plan.smem);
        let (n_tiles, k_tiles) = skinny_tiles(n, k);
        let iters = n_tiles
            .checked_mul(k_tiles)
            .ok_or_else(|| GluError::Overflow {
                what: "stream-K iterations of the decode kernel",
                dims: vec![n_tiles, k_tiles],
                limit: "usize",
            })?;
        let slots = skinny_sk_slots(capacity, self.sm_count as usize);
        let g = skinny_sk_blocks(iters, capacity, self.sm_count as usize);
        // The kernel's precondition (a block without iterations would still
        // be counted as a contributor): g <= max(1, iters / 4) <= iters.
        debug_assert!(g <= iters, "stream-K grid {g} > {iters} iterations");
        // The kernel computes block * iters in int64.
        if g > i32::MAX as usize
            || iters
                .checked_mul(g + 1)
                .is_none_or(|v| v > i64::MAX as usize)
        {
            return Err(GluError::Overflow {
                what: "N x K (stream-K schedule of the decode kernel)",
                dims: vec![n, k],
                limit: "2^63 / grid iterations",
            });
        }
        Ok(SkLaunch {
            f,
            plan,
            grid: g,
            slots,
            n_tiles,
        })
    }

    /// Scratch elements `(f32, u32)` a [`Path::FusedSkinnyStreamK`] call
    /// of `(m, n, k)` uses: `(0, 0)` outside `1 ≤ m ≤ 64` or when the
    /// kernel cannot be loaded (dtype and alignment are not looked at, as
    /// for [`Path::FusedSkinny`] in `workspace_bytes`). Loads the kernel and
    /// asks its occupancy the first time.
    ///
    /// [`Path::FusedSkinnyStreamK`]: super::Path::FusedSkinnyStreamK
    /// [`Path::FusedSkinny`]: super::Path::FusedSkinny
    pub(crate) fn skinny_streamk_scratch_need(
        &self,
        m: usize,
        n: usize,
        k: usize,
    ) -> (usize, usize) {
        if !(1..=SKINNY_MAX_M).contains(&m) || n == 0 || k == 0 {
            return (0, 0);
        }
        // Layout and dtype do not change the configuration or the grid.
        match self.skinny_sk_launch_plan(m, n, k, DType::BF16, WeightLayout::NK) {
            Ok(l) => skinny_sk_scratch_len(l.grid, m, l.n_tiles),
            Err(_) => (0, 0),
        }
    }

    /// Launches the stream-K decode kernel for `p` (same checks as
    /// [`CudaGlu::launch_skinny`]).
    pub(crate) fn launch_skinny_streamk(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        let (m, n, k) = self.check_skinny(p, dtype, layout)?;
        let SkLaunch {
            f,
            plan,
            grid: g,
            slots,
            n_tiles,
        } = self.skinny_sk_launch_plan(m, n, k, dtype, layout)?;
        let (ws, counters) = skinny_sk_scratch_len(g, m, n_tiles);
        // Allocate for the row padding and the largest grid, so that calls
        // whose M stays within one padding never grow it (only a wider N
        // does, for its counters).
        let (ws_cap, _) = skinny_sk_scratch_len(slots, plan.m_pad, n_tiles);
        let need = ScratchNeed {
            ws,
            counters,
            ws_cap,
            counters_cap: counters,
        };
        let cfg = LaunchConfig {
            grid_dim: (g as u32, 1, 1),
            block_dim: (plan.threads, 1, 1),
            shared_mem_bytes: plan.smem,
        };
        let s = &self.stream;
        self.with_split_scratch(
            &self.skinny_sk_scratch,
            need,
            "the stream-K decode kernel's scratch",
            (dtype, layout),
            |ws, counters| {
                let sk = GluSkinnyStreamK { ws, counters };
                // SAFETY: `p` describes buffers checked against (m, n, k) and
                // the layout by the caller; the kernel reads x [m,k], both
                // weights [k*n], biases [n] when non-null, and writes out
                // [m,n] only, every tail predicated; its preconditions were
                // checked by `check_skinny` and the dynamic smem limit raised
                // by `function_with_smem`. ws holds 2*g*m*128 f32 (the two
                // slots of each of the g blocks, written before the last
                // contributor reads them) and counters n_tiles u32, zero
                // between launches (zeroed at allocation; the last
                // contributor of each shared tile resets its counter). Both
                // belong to this `CudaGlu`, are used only by launches on
                // `self.stream`, and the scratch lock is held until this
                // launch is queued. The grid g <= i32::MAX, and
                // (g + 1) * iters fits in i64 (`skinny_sk_launch_plan`).
                unsafe { s.launch_builder(&f).arg(p).arg(&sk).launch(cfg) }?;
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rust constants mirror `kernels/glu_skinny.cuh`.
    #[test]
    fn header_constants_match() {
        let header = include_str!("../../kernels/glu_skinny.cuh");
        let get = |name: &str| -> usize {
            let line = header
                .lines()
                .find(|l| l.starts_with(&format!("#define {name} ")))
                .unwrap_or_else(|| panic!("{name} missing from glu_skinny.cuh"));
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        assert_eq!(get("GLU_SKINNY_BN"), SKINNY_BN);
        assert_eq!(get("GLU_SKINNY_BK"), SKINNY_BK);
        assert_eq!(get("GLU_SKINNY_MAX_M"), SKINNY_MAX_M);
        assert_eq!(get("GLU_SKINNY_BLOCKS_PER_SM"), SKINNY_BLOCKS_PER_SM);
        assert_eq!(get("GLU_SKINNY_RS_THREADS"), SKINNY_RS_THREADS as usize);
        assert_eq!(get("GLU_SKINNY_RS_MINB"), SKINNY_RS_MINB);
        assert_eq!(get("GLU_SKINNY_RS_MAX_M"), SKINNY_RS_MAX_M);
        assert_eq!(
            get("GLU_SKINNY_MIN_KTILES_PER_SPLIT"),
            SKINNY_MIN_KTILES_PER_SPLIT
        );
        for (i, tag) in ["M16", "M32", "M64"].iter().enumerate() {
            let (m_pad, threads, smem) = SKINNY_CONFIGS[i];
            assert_eq!(m_pad, 16 << i);
            assert_eq!(
                get(&format!("GLU_SKINNY_{tag}_THREADS")),
                threads as usize,
                "{tag}"
            );
            assert_eq!(
                get(&format!("GLU_SKINNY_{tag}_SMEM_BYTES")),
                smem as usize,
                "{tag}"
            );
        }
        for needle in [
            "offsetof(GluSkinnySplit, splits) == 24",
            "sizeof(GluSkinnySplit) == 32",
            "offsetof(GluSkinnyStreamK, counters) == 8",
            "sizeof(GluSkinnyStreamK) == 16",
        ] {
            assert!(header.contains(needle), "header lost `{needle}`");
        }
    }

    /// Opt-in shared memory per block: H100/H200 (227 KiB), A100 (163 KiB),
    /// sm_86/89 (99 KiB).
    const H200_SMEM: u32 = 232_448;
    const A100_SMEM: u32 = 166_912;
    const SM89_SMEM: u32 = 101_376;

    /// Every configuration the plan picks fits the device, and the 32-row
    /// kernel's 100 KiB ring gives way to the 64-row kernel on 99 KiB parts.
    #[test]
    fn configuration_fits_the_device() {
        for smem in [H200_SMEM, A100_SMEM, SM89_SMEM] {
            for m in 1..=SKINNY_MAX_M {
                let (m_pad, _, need) = skinny_config(m, smem);
                assert!(m <= m_pad && need <= smem, "m={m} smem={smem}");
                let p = skinny_plan(m, 4096, 4096, 82, smem);
                assert_eq!((p.m_pad, p.smem), (m_pad, need));
            }
        }
        let pads = |smem| [1, 16, 17, 32, 33, 64].map(|m| skinny_config(m, smem).0);
        assert_eq!(pads(H200_SMEM), [16, 16, 32, 32, 64, 64]);
        assert_eq!(pads(A100_SMEM), [16, 16, 32, 32, 64, 64]);
        assert_eq!(pads(SM89_SMEM), [16, 16, 64, 64, 64, 64]);
    }

    #[test]
    fn plan_fills_one_wave_and_never_leaves_an_empty_slice() {
        // Llama-sized decode on 132 SMs: enough column tiles, no split.
        let p = skinny_plan(1, 11008, 4096, 132, H200_SMEM);
        assert_eq!(
            (p.m_pad, p.n_tiles, p.splits, p.k_per_split),
            (16, 172, 1, 4096)
        );
        let p = skinny_plan(64, 14336, 4096, 132, H200_SMEM);
        assert_eq!((p.m_pad, p.n_tiles, p.splits), (64, 224, 1));
        // Narrow N: split K up to one wave of 264 slots.
        let p = skinny_plan(17, 1000, 4096, 132, H200_SMEM);
        assert_eq!(
            (p.m_pad, p.n_tiles, p.splits, p.k_per_split),
            (32, 16, 16, 256)
        );
        for m in [1, 16, 17, 33, 64] {
            for k in [8, 40, 64, 1000, 4096, 4104, 65536] {
                for n in [8, 24, 72, 1000, 4104, 11008] {
                    for sms in [1, 108, 132] {
                        let p = skinny_plan(m, n, k, sms, H200_SMEM);
                        assert!(p.m_pad >= m && p.splits >= 1 && p.k_per_split % SKINNY_BK == 0);
                        assert!(p.splits * p.k_per_split >= k, "{m} {k} {n} {sms}: {p:?}");
                        assert!(
                            (p.splits - 1) * p.k_per_split < k,
                            "empty slice: {m} {k} {n} {sms}: {p:?}"
                        );
                        assert!(
                            p.splits == 1 || p.n_tiles * p.splits <= sms * SKINNY_BLOCKS_PER_SM
                        );
                    }
                }
            }
        }
    }

    /// The register-streaming plan: one resident wave of its 4 blocks per
    /// SM, whole 64-deep k-tiles per slice (so whole 32-deep chunks), no
    /// empty slice, and a split plan's partial sums and tickets within the
    /// scratch capacity `launch_skinny_rs` asks for.
    #[test]
    fn rs_plan_fills_one_resident_wave() {
        // N = 11008 on 132 SMs: 172 tiles x 3 slices = 516 of 528 slots.
        let p = skinny_rs_plan(1, 11008, 4096, 132);
        assert_eq!(
            (p.m_pad, p.n_tiles, p.splits, p.k_per_split, p.smem),
            (8, 172, 3, 1408, 0)
        );
        let p = skinny_rs_plan(16, 14336, 4096, 132);
        assert_eq!(
            (p.m_pad, p.n_tiles, p.splits, p.k_per_split),
            (16, 224, 2, 2048)
        );
        assert_eq!(skinny_rs_plan(9, 8, 8, 132).m_pad, 16);
        for m in 1..=SKINNY_RS_MAX_M {
            for k in [8, 40, 64, 1000, 4096, 4104, 65536] {
                for n in [8, 24, 72, 1000, 4104, 11008, 40_000] {
                    for sms in [1, 46, 108, 132, 170] {
                        let p = skinny_rs_plan(m, n, k, sms);
                        assert!(p.m_pad >= m && p.m_pad <= 16 && p.splits >= 1);
                        assert_eq!(p.k_per_split % SKINNY_BK, 0);
                        assert!(p.splits * p.k_per_split >= k, "{m} {k} {n} {sms}: {p:?}");
                        assert!((p.splits - 1) * p.k_per_split < k, "empty slice: {p:?}");
                        if p.splits > 1 {
                            let slots = sms * SKINNY_RS_MINB;
                            assert!(p.n_tiles * p.splits <= slots, "{p:?}");
                            assert!(
                                p.splits * m * 2 * n <= SKINNY_RS_MAX_M * 2 * SKINNY_BN * slots
                            );
                            assert!(p.n_tiles <= slots);
                        }
                    }
                }
            }
        }
    }

    /// The scratch a `CudaGlu` allocates for a row padding holds every
    /// split plan of that padding: partial sums and tickets.
    #[test]
    fn scratch_bound_covers_every_split_plan() {
        let mut checked = 0;
        for sms in [1, 2, 46, 82, 108, 114, 132, 170] {
            for m in 1..=SKINNY_MAX_M {
                for n in (8..=20_000).step_by(8).filter(|n| n % 504 == 0 || *n < 600) {
                    for k in [8, 64, 256, 1000, 4096, 14336] {
                        let p = skinny_plan(m, n, k, sms, H200_SMEM);
                        if p.splits <= 1 {
                            continue;
                        }
                        let (ws, ctr) = skinny_scratch_len(p.m_pad, sms);
                        assert!(
                            p.splits * m * 2 * n <= ws && p.n_tiles <= ctr,
                            "m={m} n={n} k={k} sms={sms}: {p:?} needs more than ({ws}, {ctr})"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "only {checked} split plans checked");
        // 2.2 MB of partial sums for M <= 16 on an H100/H200.
        assert_eq!(skinny_scratch_len(16, 132), (16 * 128 * 264, 264));
    }

    /// The stream-K grid mirrors `glu_sk_blocks` (the values
    /// `kernels/tests/skinny_streamk_test.cpp` checks), and the kernels
    /// exist under the names the launcher builds.
    #[test]
    fn streamk_grid_and_names() {
        let iters = |n, k| {
            let (t, kt) = skinny_tiles(n, k);
            t * kt
        };
        assert_eq!(skinny_sk_blocks(iters(11008, 4096), 3, 132), 396);
        assert_eq!(skinny_sk_blocks(iters(14336, 4096), 2, 108), 216);
        assert_eq!(skinny_sk_blocks(iters(11008, 4096), 1, 128), 128);
        assert_eq!(skinny_sk_blocks(3, 3, 132), 1);
        assert_eq!(skinny_sk_blocks(16, 2, 132), 4);
        assert_eq!(skinny_sk_blocks(100, 0, 0), 1);
        for it in (1..5000).step_by(7) {
            for cap in 1..=3 {
                for sms in [1, 46, 108, 132] {
                    let g = skinny_sk_blocks(it, cap, sms);
                    assert!(g >= 1 && g <= cap * sms);
                    assert!(g == 1 || g * SKINNY_MIN_KTILES_PER_SPLIT <= it);
                }
            }
        }
        // 6.5 MB of partial sums at M = 16 on an H200's 396 slots.
        assert_eq!(
            skinny_sk_scratch_len(396, 16, 172),
            (2 * 396 * 16 * 128, 172)
        );
        let src = include_str!("../../kernels/fused_glu_skinny.cu");
        assert!(
            src.contains(
                "fused_glu_skinny_sk_##LAY##_##TN##_m##MP(GluParams p, GluSkinnyStreamK s)"
            )
        );
        assert!(src.contains("#define GLU_SKINNY_KERNEL(LAY, LAYOUT, TN, T, MP"));
    }

    #[test]
    fn eligibility() {
        assert!(skinny_eligible(1, 4096, 11008, DType::BF16, true));
        assert!(skinny_eligible(64, 8, 8, DType::F16, true));
        assert!(!skinny_eligible(65, 4096, 11008, DType::BF16, true));
        assert!(!skinny_eligible(0, 4096, 11008, DType::BF16, true));
        assert!(!skinny_eligible(1, 4100, 11008, DType::BF16, true));
        assert!(!skinny_eligible(1, 4096, 11004, DType::BF16, true));
        assert!(!skinny_eligible(1, 4096, 11008, DType::F32, true));
        assert!(!skinny_eligible(1, 4096, 11008, DType::BF16, false));
    }
}
