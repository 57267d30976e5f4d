//! The Hopper (sm_90a) fused kernel `fused_glu_wgmma_nk_{bf16,f16}`
//! (`kernels/fused_glu_wgmma.cu`): TMA loads into 128B-swizzled shared
//! memory, one producer and two consumer warpgroups, `wgmma m64n256k16`
//! over 128 gate + 128 up columns, persistent grid.
//!
//! The kernel takes three tensor maps by value (`__grid_constant__
//! CUtensorMap`: x, w_gate, w_up) and the usual [`GluParams`]. The maps are
//! encoded on the host for every call (a few microseconds; no global cache).
//!
//! Eligibility ([`wgmma_eligible`]): compute capability exactly 9.0, bf16 or
//! f16, NK weights (the nn.Linear layout; a concatenated `[2N, K]` gate_up
//! tensor is NK too; kernels `*_nk_*`) or KN weights (`*_kn_*`, B read
//! N-major through the wgmma transpose bit), K and N multiples of 8 (TMA row
//! strides must be multiples of 16 bytes), and x, both weights and out
//! 16-byte aligned.
//! M, N and K tails are handled in the kernel (TMA zero-fill, predicated
//! stores). Everything else falls back to the portable kernels.

use super::CudaGlu;
use super::forward::is_aligned16;
use super::params::{
    EPI_DGU, EPI_DGU_TMA, EPI_DX, EPI_DX_F32, EPI_OUT_PRE, GluGemmOut, GluParams, GluTailSplit,
    GluTrainParams,
};
use super::scratch::ScratchNeed;
use crate::error::{GluError, Result};
use crate::types::{DType, WeightLayout};
use cudarc::driver::sys;
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use std::ffi::c_void;
use std::mem::MaybeUninit;

/// Output rows per CTA tile (`kWgBM` in `kernels/glu_hopper_layout.cuh`).
pub(crate) const WG_BM: usize = 128;
/// Output columns per CTA tile (`kWgBN`): 128 gate + 128 up weight rows.
pub(crate) const WG_BN: usize = 128;
/// k-step of one pipeline stage (`kWgBK`): 64 16-bit elements = one 128-byte swizzle row.
pub(crate) const WG_BK: usize = 64;
/// Pipeline stages (`kWgStages`).
pub(crate) const WG_STAGES: usize = 4;
/// Threads per CTA (`kWgThreads`): producer warpgroup + 2 consumer warpgroups.
pub(crate) const WG_THREADS: u32 = 384;
/// Dynamic shared memory (`kWgSmemBytes`): stages + mbarriers + 1 KiB alignment slack.
pub(crate) const WG_SMEM_BYTES: u32 =
    (WG_STAGES * (WG_BM * WG_BK * 2 + 2 * WG_BN * WG_BK * 2) + 2 * WG_STAGES * 8 + 1024) as u32;

const _: () = assert!(WG_SMEM_BYTES == 197_696);
const _: () = assert!(WG_SMEM_BYTES <= 227 * 1024);
/// Dynamic shared memory of the staged-epilogue variant
/// (`kWgSmemBytesStaged`): plus two 64 x 128 output staging tiles.
pub(crate) const WG_SMEM_BYTES_STAGED: u32 = WG_SMEM_BYTES + 2 * 64 * 128 * 2;
const _: () = assert!(WG_SMEM_BYTES_STAGED == 230_464);
const _: () = assert!(WG_SMEM_BYTES_STAGED <= 227 * 1024);

/// Whether the Hopper kernel can run this problem.
///
/// `aligned`: x, both weights and out are 16-byte aligned. Biases have no
/// alignment requirement beyond their element size.
pub(crate) fn wgmma_eligible(
    cc: (i32, i32),
    k: usize,
    n: usize,
    dtype: DType,
    layout: WeightLayout,
    aligned: bool,
) -> bool {
    cc == (9, 0)
        && matches!(dtype, DType::BF16 | DType::F16)
        && matches!(layout, WeightLayout::NK | WeightLayout::KN)
        && k % 8 == 0
        && n % 8 == 0
        && aligned
}

/// Fraction of the persistent grid's last-wave slots that hold a tile:
/// `tiles / (waves · SMs)`. 1.0 when the tiles fill whole waves; at M = 256,
/// N = 11008 on 132 SMs, 172 tiles take two waves of 132: 0.65.
pub(crate) fn wgmma_wave_efficiency(m: usize, n: usize, sm_count: u32) -> f64 {
    let tiles = m.div_ceil(WG_BM) * n.div_ceil(WG_BN);
    let sms = sm_count.max(1) as usize;
    if tiles == 0 {
        return 1.0;
    }
    tiles as f64 / (tiles.div_ceil(sms) * sms) as f64
}

/// Which epilogue a Hopper-kernel launch uses.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    /// `fused_glu_wgmma_*`: 4-byte stores from the accumulator fragments.
    Direct,
    /// `fused_glu_wgmma_staged_*`: shared-memory staging + TMA stores.
    Staged,
    /// `fused_glu_wgmma_{pre,dgu}_*`: the training epilogues.
    Train(&'a GluTrainParams),
    /// `fused_glu_wgmma_prestaged_*`: out and the pre-activations at this
    /// device address (`[M, 2N]`, 16-byte aligned), staged + TMA stores.
    TrainPreStaged(u64),
    /// `fused_glu_wgmma_dgustaged_*`: the gradient epilogue staged: d_out
    /// (16-byte aligned) through shared memory, dGate | dUp into `aux`
    /// (`[M, 2N]`, `ld_aux = 2N`, 16-byte aligned) with TMA stores.
    TrainDguStaged(&'a GluTrainParams),
    /// `fused_glu_wgmma_split_*`: the inference epilogue on the tail-split
    /// schedule ([`tail_split_plan`]).
    TailSplit(&'a GluTailSplit),
    /// `fused_glu_wgmma_cluster_*`: the inference epilogue on clusters of
    /// two CTAs sharing (multicasting) the weight stage
    /// ([`wgmma_cluster_grid`]).
    Cluster,
}

/// Most parts a tail tile is cut into along K.
pub(crate) const TAIL_SPLIT_MAX_PARTS: usize = 4;
/// Fewest k-tiles (of `WG_BK`) in one part.
pub(crate) const TAIL_SPLIT_MIN_KTILES: usize = 4;
/// f32 in one workspace slot: one consumer warpgroup's 128 threads x 128
/// accumulators (`kWgSplitSlotF4` float4).
pub(crate) const TAIL_SPLIT_SLOT_F32: usize = 128 * 128;

/// The tail-split schedule of a problem (`glu_split_unit` in
/// `kernels/glu_hopper_layout.cuh`): `tiles` output tiles over a width of
/// one CTA per SM, the last `tails = tiles % width` of them cut into
/// `parts` K parts (`parts == 1`: the plain persistent schedule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TailSplitPlan {
    pub tiles: usize,
    pub width: usize,
    pub tails: usize,
    pub parts: usize,
}

impl TailSplitPlan {
    /// Work units (whole tiles, then the tail tiles' parts).
    pub(crate) fn units(&self) -> usize {
        self.tiles - self.tails + self.tails * self.parts
    }
    /// CTAs to launch: the width, or fewer when there are fewer units.
    pub(crate) fn grid(&self) -> usize {
        self.units().min(self.width)
    }
    /// f32 of partial sums a launch uses.
    pub(crate) fn ws_f32(&self) -> usize {
        (self.parts - 1) * self.tails * 2 * TAIL_SPLIT_SLOT_F32
    }
    /// u32 counters a launch uses (two per tail tile: one per consumer).
    pub(crate) fn counters(&self) -> usize {
        if self.parts > 1 { 2 * self.tails } else { 0 }
    }
    /// The schedule's length in tile times, with every CTA walking its units
    /// at the same rate: the whole waves, then the tail's part waves.
    #[cfg(test)]
    pub(crate) fn cost(&self) -> f64 {
        tail_cost(self.tiles, self.width, self.tails, self.parts)
    }
}

fn tail_cost(tiles: usize, width: usize, tails: usize, parts: usize) -> f64 {
    (tiles / width) as f64 + (tails * parts).div_ceil(width) as f64 / parts as f64
}

/// Picks the parts: the fewest that give the shortest schedule by
/// [`TailSplitPlan::cost`], with at least [`TAIL_SPLIT_MIN_KTILES`] k-tiles
/// per part and the unit arithmetic inside the kernel's 32-bit range; one
/// part (no split) unless it saves at least 2% of a tile time.
pub(crate) fn tail_split_plan(m: usize, n: usize, k: usize, sm_count: u32) -> TailSplitPlan {
    let tiles = m.div_ceil(WG_BM) * n.div_ceil(WG_BN);
    let width = (sm_count as usize).max(1);
    let tails = tiles % width;
    let k_tiles = k.div_ceil(WG_BK);
    let mut parts = 1;
    let fits_i32 = tiles + (TAIL_SPLIT_MAX_PARTS - 1) * tails < i32::MAX as usize
        && k_tiles * TAIL_SPLIT_MAX_PARTS < i32::MAX as usize;
    if tails > 0 && fits_i32 {
        for p in 2..=TAIL_SPLIT_MAX_PARTS {
            if k_tiles >= p * TAIL_SPLIT_MIN_KTILES
                && tail_cost(tiles, width, tails, p) + 0.02 < tail_cost(tiles, width, tails, parts)
            {
                parts = p;
            }
        }
    }
    TailSplitPlan {
        tiles,
        width,
        tails,
        parts,
    }
}

/// Persistent grid: one CTA per SM at most (the shared memory allows one),
/// never more CTAs than tiles. Mirrors `glu_wgmma_grid`.
pub(crate) fn wgmma_grid(m: usize, n: usize, sm_count: u32) -> usize {
    let tiles = m.div_ceil(WG_BM) * n.div_ceil(WG_BN);
    tiles.min(sm_count.max(1) as usize)
}

/// Grid of the cluster schedule (`fused_glu_wgmma_cluster_*`): clusters of
/// two CTAs, each cluster taking pairs of m tiles of one column tile, at
/// most `max_clusters` clusters (those that can be resident at once: the
/// grid is persistent), never more clusters than pairs. Always even (the
/// kernel's `__cluster_dims__(2, 1, 1)`) and at least 2.
pub(crate) fn wgmma_cluster_grid(m: usize, n: usize, max_clusters: usize) -> usize {
    let pairs = m.div_ceil(WG_BM).div_ceil(2) * n.div_ceil(WG_BN);
    2 * pairs.min(max_clusters.max(1)).max(1)
}

/// A `CUtensorMap` passed by value as a `const __grid_constant__ CUtensorMap`
/// kernel parameter (128 bytes, 128-byte aligned on the host).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct TensorMap(sys::CUtensorMap);

// SAFETY: `CUtensorMap` is a plain 128-byte `#[repr(C)]` blob of integers
// (`opaque: [u64; 16]`) that the kernel parameter of the same type receives
// byte for byte; it holds a device address, which `launch_wgmma` only
// encodes from buffers validated for the launch.
unsafe impl DeviceRepr for TensorMap {}

/// Tensor map of a row-major `[rows, inner]` 16-bit matrix at device address
/// `ptr`: box `{64 (inner), box_rows}`, 128B swizzle, out-of-bounds elements
/// read as zero. x and NK weights: `[M or N, K]`, 128-row boxes; KN weights:
/// `[K, N]`, 64-row boxes. Mirrors `make_map` in `kernels/tests/wgmma_selftest.cu`.
fn encode_map(
    ptr: u64,
    rows: usize,
    inner: usize,
    box_rows: u32,
    dtype: DType,
) -> Result<TensorMap> {
    encode_map_ld(ptr, rows, inner, inner, box_rows, dtype)
}

/// [`encode_map`] of a `[rows, inner]` block inside a row-major matrix
/// whose rows are `ld` elements apart (`ld ≥ inner`, `ld · size` a
/// multiple of 16 bytes).
fn encode_map_ld(
    ptr: u64,
    rows: usize,
    inner: usize,
    ld: usize,
    box_rows: u32,
    dtype: DType,
) -> Result<TensorMap> {
    encode_map_nd(
        ptr,
        &[inner as u64, rows as u64],
        &[(ld * dtype.size()) as u64],
        &[64, box_rows],
        dtype,
    )
}

/// `Overflow` unless every dimension fits the kernels' int32 tile origins
/// and TMA coordinates (with a tile of slack).
fn check_tma_dims(what: &'static str, dims: &[usize]) -> Result<()> {
    let limit = (i32::MAX as usize) - WG_BM;
    if dims.iter().any(|&d| d > limit) {
        return Err(GluError::Overflow {
            what,
            dims: dims.to_vec(),
            limit: "2^31 - 129 (TMA coordinates)",
        });
    }
    Ok(())
}

/// Launch shape of the persistent Hopper kernels: [`wgmma_grid`] CTAs over
/// a `rows x cols` tile space, [`WG_THREADS`] threads, `smem` bytes.
fn persistent_cfg(rows: usize, cols: usize, sm_count: u32, smem: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (wgmma_grid(rows, cols, sm_count) as u32, 1, 1),
        block_dim: (WG_THREADS, 1, 1),
        shared_mem_bytes: smem,
    }
}

/// Kernel-name fragment of a dtype: `bf16`/`f16`.
fn ty_name(dtype: DType) -> &'static str {
    if dtype == DType::BF16 { "bf16" } else { "f16" }
}

/// The other weight layout: the dX kernel reads Wᵀ, so NK storage is its
/// KN operand and KN storage its NK operand.
fn flip(layout: WeightLayout) -> WeightLayout {
    match layout {
        WeightLayout::NK => WeightLayout::KN,
        WeightLayout::KN => WeightLayout::NK,
    }
}

/// Where the backward's dX kernel reads and writes (device addresses):
/// `dx[M, K] = dG · Wgᵀ + dU · Wuᵀ`, with `dgu = [dG | dU]` (`[M, 2N]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DxProblem {
    pub m: usize,
    /// The model's N (the contraction length of each segment).
    pub n: usize,
    /// The model's K (dX's row length; a multiple of 16).
    pub k: usize,
    pub dgu: u64,
    pub w_gate: u64,
    pub w_up: u64,
    /// The weights' layout (the kernel runs the other one).
    pub layout: WeightLayout,
    pub dx: u64,
    /// dX is f32 (else the input type).
    pub dx_f32: bool,
}

/// Whether [`CudaGlu::launch_wgmma_dx`] takes this problem: the Hopper kernel
/// can run `[M, N] · [N, K/2]` twice over (cc 9.0, bf16/f16, K a multiple of
/// 16 so that each output half starts 16-byte aligned, N a multiple of 8),
/// with 16-byte aligned dG|dU and weights.
pub(crate) fn wgmma_dx_eligible(
    cc: (i32, i32),
    k: usize,
    n: usize,
    dtype: DType,
    layout: WeightLayout,
    aligned: bool,
) -> bool {
    k % 16 == 0 && k > 0 && n > 0 && wgmma_eligible(cc, n, k / 2, dtype, flip(layout), aligned)
}

/// The pre-activations `[M, 2N]` of the training kernels viewed as
/// `[M][2][N]` (dims `{N, 2, M}`), box `{64, 1, 64}`: a box of the gate half
/// is clipped at column N instead of running into the up half.
fn encode_pre_map(ptr: u64, m: usize, n: usize, dtype: DType) -> Result<TensorMap> {
    let es = dtype.size() as u64;
    encode_map_nd(
        ptr,
        &[n as u64, 2, m as u64],
        &[n as u64 * es, 2 * n as u64 * es],
        &[64, 1, 64],
        dtype,
    )
}

/// Rank-`dims.len()` (2 or 3) tiled map of 16-bit elements, 128B swizzle,
/// out-of-bounds elements read as zero and not written.
fn encode_map_nd(
    ptr: u64,
    dims: &[u64],
    strides: &[u64],
    boxes: &[u32],
    dtype: DType,
) -> Result<TensorMap> {
    debug_assert!(
        (2..=3).contains(&dims.len())
            && strides.len() + 1 == dims.len()
            && boxes.len() == dims.len()
    );
    let data_type = match dtype {
        DType::BF16 => sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
        DType::F16 => sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
        DType::F32 => {
            return Err(GluError::Unsupported {
                what: "the Hopper fused kernel takes bf16/f16".into(),
                dtype,
                layout: WeightLayout::NK,
            });
        }
    };
    let elem_strides = [1u32; 3];
    let mut map = MaybeUninit::<sys::CUtensorMap>::zeroed();
    // SAFETY: `map` is writable storage for one CUtensorMap; `dims`, `boxes`
    // and `elem_strides` hold at least `tensorRank` = dims.len() entries and
    // `strides` rank - 1 (asserted above), all outliving the call; the driver
    // only encodes `ptr` (16-byte aligned, checked by the caller) into the
    // map and does not dereference it.
    let r = unsafe {
        sys::cuTensorMapEncodeTiled(
            map.as_mut_ptr(),
            data_type,
            dims.len() as u32,
            ptr as *mut c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxes.as_ptr(),
            elem_strides.as_ptr(),
            sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    r.result()?;
    // SAFETY: the call succeeded, so the driver wrote the whole map (and it
    // was zero-initialised before).
    Ok(TensorMap(unsafe { map.assume_init() }))
}

/// Where the backward's weight-gradient kernel reads and writes (device
/// addresses): `dWg`, `dWu` in the weights' layout from x (`[M, K]`) and
/// `dgu = [dG | dU]` (`[M, 2N]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DwProblem {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub x: u64,
    pub dgu: u64,
    pub layout: WeightLayout,
    pub dw_gate: u64,
    pub dw_up: u64,
    /// The gradients are f32 (else the input type).
    pub dw_f32: bool,
    /// Add to the gradients instead of overwriting them.
    pub accumulate: bool,
}

/// Whether [`CudaGlu::launch_wgmma_dw`] takes this problem: cc 9.0,
/// bf16/f16, N a multiple of 8, K of 8 (KN weights) or 16 (NK weights: the
/// kernel's two column halves are x's, each starting 16-byte aligned), x
/// and dG|dU 16-byte aligned.
pub(crate) fn wgmma_dw_eligible(
    cc: (i32, i32),
    k: usize,
    n: usize,
    dtype: DType,
    layout: WeightLayout,
    aligned: bool,
) -> bool {
    let k_step = match layout {
        WeightLayout::NK => 16,
        WeightLayout::KN => 8,
    };
    k > 0 && n > 0 && k % k_step == 0 && wgmma_eligible(cc, k, n, dtype, layout, aligned)
}

impl CudaGlu {
    /// Launches `fused_glu_wgmma_dw{,32}_{bf16,f16}`: both weight gradients
    /// of the backward in one pass of the Hopper tile loop, contracting over
    /// the batch rows with the A operand read transposed:
    /// * NK weights (`[N, K]` each): `[dWg; dWu] = [dG | dU]ᵀ · x`, tile rows
    ///   over 2N (the first N to dWg, the rest to dWu), the two column halves
    ///   of a tile from x's two column halves;
    /// * KN weights (`[K, N]` each): `dWg = xᵀ · dG`, `dWu = xᵀ · dU`, one
    ///   tile holding matching columns of both (the forward's structure).
    ///
    /// Written or (accumulate) added to, with one rounding of the f32 sum.
    /// The caller has sized x as `[m, k]`, dgu as `[m, 2n]` and both
    /// gradients as `[k·n]` (f32 if `dw_f32`, else `dtype`); this function
    /// checks the rest the launch's soundness depends on.
    pub(crate) fn launch_wgmma_dw(&self, d: &DwProblem, dtype: DType) -> Result<()> {
        let (m, n, k) = (d.m, d.n, d.k);
        let aligned = is_aligned16(&[d.x, d.dgu]);
        if !wgmma_dw_eligible(self.cc, k, n, dtype, d.layout, aligned) {
            return Err(GluError::Unsupported {
                what: format!(
                    "the Hopper weight-gradient kernel needs cc 9.0 (have {}.{}), bf16/f16, \
                     N a multiple of 8, K of 8 (KN) or 16 (NK) and 16-byte aligned buffers \
                     (K={k}, N={n})",
                    self.cc.0, self.cc.1
                ),
                dtype,
                layout: d.layout,
            });
        }
        let gs = if d.dw_f32 { 4u64 } else { dtype.size() as u64 };
        for ptr in [d.dw_gate, d.dw_up] {
            if ptr == 0 || ptr % (2 * gs) != 0 {
                return Err(GluError::Misaligned {
                    what: "weight gradient (Hopper weight-gradient kernel)",
                    required: 2 * gs as usize,
                    value: ptr as usize,
                });
            }
        }
        check_tma_dims(
            "M, 2N, K of the Hopper weight-gradient kernel",
            &[m, 2 * n, k],
        )?;
        if m == 0 {
            // Nothing to contract: the gradients are 0 (or unchanged).
            return Err(GluError::Unsupported {
                what: "the weight-gradient kernel needs M >= 1".into(),
                dtype,
                layout: d.layout,
            });
        }
        let es = dtype.size() as u64;
        let bk = WG_BK as u32;
        // (A map, B gate-half map, B up-half map, tile rows, half width,
        // destinations, ld, row split).
        let (a, bg, bu, rows, half, ptr, ld, split) = match d.layout {
            WeightLayout::NK => {
                let h = k / 2;
                (
                    encode_map_ld(d.dgu, m, 2 * n, 2 * n, bk, dtype)?,
                    encode_map_ld(d.x, m, h, k, bk, dtype)?,
                    encode_map_ld(d.x + h as u64 * es, m, h, k, bk, dtype)?,
                    2 * n,
                    h,
                    [
                        d.dw_gate,
                        d.dw_gate + h as u64 * gs,
                        d.dw_up,
                        d.dw_up + h as u64 * gs,
                    ],
                    k,
                    n,
                )
            }
            WeightLayout::KN => (
                encode_map_ld(d.x, m, k, k, bk, dtype)?,
                encode_map_ld(d.dgu, m, n, 2 * n, bk, dtype)?,
                encode_map_ld(d.dgu + n as u64 * es, m, n, 2 * n, bk, dtype)?,
                k,
                n,
                [d.dw_gate, d.dw_up, 0, 0],
                n,
                k,
            ),
        };
        let kind = if d.dw_f32 { "dw32" } else { "dw" };
        let name = format!("fused_glu_wgmma_{kind}_{}", ty_name(dtype));
        let f = self.function_with_smem("fused_glu_wgmma_train", &name, WG_SMEM_BYTES)?;
        let p = GluParams::new(
            [d.dgu, 0, 0, 0, 0, 0],
            (rows, half, m),
            WeightLayout::KN,
            crate::Activation::Identity,
        );
        let go = GluGemmOut {
            ptr: ptr.map(|v| v as *mut c_void),
            ld: ld as i64,
            split: split as i64,
            accumulate: d.accumulate as i32,
            reserved: 0,
        };
        let cfg = persistent_cfg(rows, half, self.sm_count, WG_SMEM_BYTES);
        // SAFETY: the kernel signature is (CUtensorMap x3, GluParams,
        // GluGemmOut), exactly the arguments pushed. The maps describe
        // blocks of caller-sized buffers (dgu [m, 2n] or dG / dU inside it,
        // x [m, k] or its two column halves), so TMA never reads outside
        // them. The kernel writes (or reads and writes, accumulating) only
        // rows < `rows` and columns < `half` of each destination: for NK
        // rows < n of dWg and rows n.. 2n of dWu, columns [0, k/2) and
        // [k/2, k) with ld k, i.e. exactly the two [n, k] gradients; for KN
        // rows < k, columns < n of dWg and dWu with ld n, exactly the two
        // [k, n] gradients; pairs of elements at even columns of buffers
        // aligned to a pair (checked above). Eligibility (cc 9.0, bf16/f16,
        // N % 8, K % 8 or 16, 16-byte aligned x and dgu, int32
        // coordinates) was checked above, the dynamic shared memory limit
        // was raised by `function_with_smem`, and the caller keeps every
        // buffer alive until the launch has been recorded on this stream.
        unsafe {
            let mut b = self.stream.launch_builder(&f);
            b.arg(&a).arg(&bg).arg(&bu).arg(&p).arg(&go);
            b.launch(cfg)
        }?;
        Ok(())
    }

    /// Launches `fused_glu_wgmma_dx{,32}_{nk,kn}_{bf16,f16}`: the backward's
    /// `dx = dG · Wgᵀ + dU · Wuᵀ` in one pass of the Hopper tile loop (two K
    /// segments of length N into one accumulator tile, rounded once), the
    /// output's two column halves taken as the kernel's "gate" and "up"
    /// tiles.
    ///
    /// The caller has sized dgu as `[m, 2n]`, both weights as `[k·n]` in
    /// `layout` and dx as `[m, k]` (f32 if `dx_f32`, else `dtype`); this
    /// function checks the rest the launch's soundness depends on.
    pub(crate) fn launch_wgmma_dx(&self, d: &DxProblem, dtype: DType) -> Result<()> {
        let (m, n, k) = (d.m, d.n, d.k);
        let aligned = is_aligned16(&[d.dgu, d.w_gate, d.w_up]);
        if !wgmma_dx_eligible(self.cc, k, n, dtype, d.layout, aligned) {
            return Err(GluError::Unsupported {
                what: format!(
                    "the Hopper dX kernel needs cc 9.0 (have {}.{}), bf16/f16, K a multiple \
                     of 16, N of 8 and 16-byte aligned buffers (K={k}, N={n})",
                    self.cc.0, self.cc.1
                ),
                dtype,
                layout: d.layout,
            });
        }
        let dx_align = if d.dx_f32 { 8 } else { 4 };
        if d.dx == 0 || d.dx % dx_align != 0 {
            return Err(GluError::Misaligned {
                what: "dx (Hopper dX kernel)",
                required: dx_align as usize,
                value: d.dx as usize,
            });
        }
        check_tma_dims("M, 2N, K of the Hopper dX kernel", &[m, 2 * n, k])?;
        if m == 0 {
            return Ok(());
        }
        let es = dtype.size() as u64;
        let h = k / 2;
        // Segment maps: A = dG or dU ([m, n] inside dgu, rows 2n apart).
        let x1 = encode_map_ld(d.dgu, m, n, 2 * n, WG_BM as u32, dtype)?;
        let x2 = encode_map_ld(d.dgu + n as u64 * es, m, n, 2 * n, WG_BM as u32, dtype)?;
        // B = the two column halves of Wᵀ ([n, k]): for NK storage ([n, k],
        // contraction along rows) the kernel's KN form, [n rows, h columns]
        // with rows k apart; for KN storage ([k, n]) its NK form, [h rows,
        // n columns], contiguous, the second half h rows further.
        let halves = |w: u64| -> Result<(TensorMap, TensorMap)> {
            Ok(match d.layout {
                WeightLayout::NK => (
                    encode_map_ld(w, n, h, k, WG_BK as u32, dtype)?,
                    encode_map_ld(w + h as u64 * es, n, h, k, WG_BK as u32, dtype)?,
                ),
                WeightLayout::KN => (
                    encode_map(w, h, n, WG_BN as u32, dtype)?,
                    encode_map(w + (h * n) as u64 * es, h, n, WG_BN as u32, dtype)?,
                ),
            })
        };
        let (g1, u1) = halves(d.w_gate)?;
        let (g2, u2) = halves(d.w_up)?;
        let kind = if d.dx_f32 { "dx32" } else { "dx" };
        let name = format!(
            "fused_glu_wgmma_{kind}_{}_{}",
            flip(d.layout).short_name(),
            ty_name(dtype)
        );
        let f = self.function_with_smem("fused_glu_wgmma_train", &name, WG_SMEM_BYTES)?;
        let p = GluParams::new(
            [d.dgu, 0, 0, 0, 0, 0],
            (m, h, n),
            flip(d.layout),
            crate::Activation::Identity,
        );
        let t = GluTrainParams {
            d_out: std::ptr::null(),
            aux: d.dx as *mut c_void,
            ld_aux: k as i64,
            epi: if d.dx_f32 { EPI_DX_F32 } else { EPI_DX },
            reserved: 0,
        };
        let cfg = persistent_cfg(m, h, self.sm_count, WG_SMEM_BYTES);
        // SAFETY: the kernel signature is (CUtensorMap x6, GluParams,
        // GluTrainParams), exactly the arguments pushed. Each map describes a
        // block of a caller-sized buffer: dG and dU are [m, n] inside dgu
        // [m, 2n]; the weight maps cover [n, k] (NK) or [k, n] (KN) of
        // w_gate / w_up, split into two column (NK) or row (KN) halves of
        // k / 2; TMA never reads outside a map and zero-fills its tails. The
        // kernel writes dx [m, k] only (rows < m, columns < k / 2 of each
        // half, 4- or 8-byte stores at even columns of an aligned dx, ld k).
        // Eligibility (cc 9.0 for the sm_90a image, bf16/f16, K % 16, N % 8,
        // 16-byte aligned dgu / weights, int32 coordinates) was checked
        // above, the dynamic shared memory limit was raised by
        // `function_with_smem`, and the caller keeps every buffer alive until
        // the launch has been recorded on this stream.
        unsafe {
            let mut b = self.stream.launch_builder(&f);
            b.arg(&x1).arg(&g1).arg(&u1).arg(&x2).arg(&g2).arg(&u2);
            b.arg(&p).arg(&t);
            b.launch(cfg)
        }?;
        Ok(())
    }

    /// Launches `fused_glu_wgmma_{nk,kn}_{bf16,f16}` on `p`.
    ///
    /// The caller has validated `p` against its buffers (lengths for
    /// (m, n, k) and the layout) and checked [`wgmma_eligible`] (cc 9.0, K
    /// and N multiples of 8, x / weights / out 16-byte aligned); this
    /// function re-checks what the launch's soundness depends on.
    pub(crate) fn launch_wgmma(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        self.launch_wgmma_epi(p, Epilogue::Direct, dtype, layout)
    }

    /// [`launch_wgmma`](Self::launch_wgmma) of `fused_glu_wgmma_staged_*`
    /// (shared-memory staged epilogue with TMA stores), same preconditions.
    pub(crate) fn launch_wgmma_staged(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        self.launch_wgmma_epi(p, Epilogue::Staged, dtype, layout)
    }

    /// [`launch_wgmma`](Self::launch_wgmma) on clusters of two CTAs that
    /// multicast the weight stage (`fused_glu_wgmma_cluster_*`): same
    /// preconditions, bit-identical results.
    pub(crate) fn launch_wgmma_cluster(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        self.launch_wgmma_epi(p, Epilogue::Cluster, dtype, layout)
    }

    /// [`launch_wgmma`](Self::launch_wgmma) on the tail-split schedule
    /// (`fused_glu_wgmma_split_*`, [`tail_split_plan`]): same preconditions
    /// and results up to the summation order of the split tiles. The
    /// partial sums and counters live in a scratch this `CudaGlu` keeps.
    pub(crate) fn launch_wgmma_split(
        &self,
        p: &GluParams,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
        let plan = tail_split_plan(m, n, k, self.sm_count);
        if plan.parts <= 1 || m == 0 {
            let ts = GluTailSplit {
                ws: std::ptr::null_mut(),
                flags: std::ptr::null_mut(),
                width: plan.width as i64,
                parts: 1,
                reserved: 0,
            };
            return self.launch_wgmma_epi(p, Epilogue::TailSplit(&ts), dtype, layout);
        }
        let need = ScratchNeed {
            ws: plan.ws_f32(),
            counters: plan.counters(),
            ws_cap: plan.ws_f32().next_power_of_two(),
            counters_cap: plan.counters().next_power_of_two(),
        };
        self.with_split_scratch(
            &self.wgmma_split_scratch,
            need,
            "the Hopper kernel's tail-split scratch",
            (dtype, layout),
            |ws, flags| {
                // The scratch holds `need`; its counters are zero between
                // launches (each finisher resets its own).
                let ts = GluTailSplit {
                    ws,
                    flags,
                    width: plan.width as i64,
                    parts: plan.parts as i32,
                    reserved: 0,
                };
                self.launch_wgmma_epi(p, Epilogue::TailSplit(&ts), dtype, layout)
            },
        )
    }

    /// [`launch_wgmma`](Self::launch_wgmma) with an optional training
    /// epilogue (`fused_glu_wgmma_{pre,dgu}_*` of `fused_glu_wgmma_train.cu`):
    /// the caller has also sized `t.aux` as `[m, t.ld_aux]` and, for
    /// [`EPI_DGU`], `t.d_out` as `[m, n]`, both of the input type.
    pub(crate) fn launch_wgmma_epi(
        &self,
        p: &GluParams,
        epi: Epilogue<'_>,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<()> {
        let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
        let train = match epi {
            Epilogue::Train(t) | Epilogue::TrainDguStaged(t) => Some(t),
            _ => None,
        };
        if let Epilogue::TrainDguStaged(t) = epi {
            if t.epi != EPI_DGU_TMA || t.ld_aux != 2 * p.n {
                return Err(GluError::BadShape {
                    what: "staged gradient epilogue (aux [M, ld_aux])",
                    shape: vec![m, t.ld_aux.max(0) as usize],
                    why: "needs epi = GLU_EPI_DGU_TMA and ld_aux = 2N (TMA map of [M][2][N])",
                });
            }
            for (what, ptr) in [
                ("gradient buffer (TMA store)", t.aux as usize),
                ("d_out (16-byte loads)", t.d_out as usize),
            ] {
                if ptr == 0 || ptr % 16 != 0 {
                    return Err(GluError::Misaligned {
                        what,
                        required: 16,
                        value: ptr,
                    });
                }
            }
        }
        if let Some(t) = train {
            let ok_epi = t.epi == EPI_OUT_PRE
                || ((t.epi == EPI_DGU || t.epi == EPI_DGU_TMA) && !t.d_out.is_null());
            if !ok_epi || t.aux.is_null() || t.ld_aux < 2 * p.n || t.ld_aux % 2 != 0 {
                return Err(GluError::BadShape {
                    what: "training epilogue (aux [M, ld_aux])",
                    shape: vec![m, t.ld_aux.max(0) as usize],
                    why: "needs aux, ld_aux even and >= 2N, and d_out for the gradient epilogue",
                });
            }
            for (what, ptr) in [("aux", t.aux as usize), ("d_out", t.d_out as usize)] {
                if ptr % 4 != 0 {
                    return Err(GluError::Misaligned {
                        what,
                        required: 4,
                        value: ptr,
                    });
                }
            }
        }
        let aligned = is_aligned16(&[p.x as u64, p.w_gate as u64, p.w_up as u64, p.out as u64]);
        if !wgmma_eligible(self.cc, k, n, dtype, layout, aligned) {
            return Err(GluError::Unsupported {
                what: format!(
                    "the Hopper fused kernel needs cc 9.0 (have {}.{}), bf16/f16, \
                     K and N multiples of 8 and 16-byte aligned buffers",
                    self.cc.0, self.cc.1
                ),
                dtype,
                layout,
            });
        }
        // Tile origins and TMA coordinates are int32 in the kernel.
        check_tma_dims("M, N, K of the Hopper fused kernel", &[m, n, k])?;
        if m == 0 {
            return Ok(());
        }
        let tmap_x = encode_map(p.x as u64, m, k, WG_BM as u32, dtype)?;
        let (tmap_g, tmap_u) = match layout {
            WeightLayout::NK => (
                encode_map(p.w_gate as u64, n, k, WG_BN as u32, dtype)?,
                encode_map(p.w_up as u64, n, k, WG_BN as u32, dtype)?,
            ),
            WeightLayout::KN => (
                encode_map(p.w_gate as u64, k, n, WG_BK as u32, dtype)?,
                encode_map(p.w_up as u64, k, n, WG_BK as u32, dtype)?,
            ),
        };
        let (lay, ty) = (layout.short_name(), ty_name(dtype));
        let (module, name, smem) = match epi {
            Epilogue::Direct => (
                "fused_glu_wgmma",
                format!("fused_glu_wgmma_{lay}_{ty}"),
                WG_SMEM_BYTES,
            ),
            Epilogue::Staged => (
                "fused_glu_wgmma_staged",
                format!("fused_glu_wgmma_staged_{lay}_{ty}"),
                WG_SMEM_BYTES_STAGED,
            ),
            Epilogue::Train(t) if t.epi == EPI_DGU => (
                "fused_glu_wgmma_train",
                format!("fused_glu_wgmma_dgu_{lay}_{ty}"),
                WG_SMEM_BYTES,
            ),
            Epilogue::Train(_) => (
                "fused_glu_wgmma_train",
                format!("fused_glu_wgmma_pre_{lay}_{ty}"),
                WG_SMEM_BYTES,
            ),
            Epilogue::TrainPreStaged(_) => (
                "fused_glu_wgmma_train",
                format!("fused_glu_wgmma_prestaged_{lay}_{ty}"),
                WG_SMEM_BYTES_STAGED,
            ),
            Epilogue::TrainDguStaged(_) => (
                "fused_glu_wgmma_train",
                format!("fused_glu_wgmma_dgustaged_{lay}_{ty}"),
                WG_SMEM_BYTES_STAGED,
            ),
            Epilogue::TailSplit(_) => (
                "fused_glu_wgmma",
                format!("fused_glu_wgmma_split_{lay}_{ty}"),
                WG_SMEM_BYTES,
            ),
            Epilogue::Cluster => (
                "fused_glu_wgmma",
                format!("fused_glu_wgmma_cluster_{lay}_{ty}"),
                WG_SMEM_BYTES,
            ),
        };
        // The staged epilogue stores `out` [m, n] with TMA: 64 x 64 boxes.
        let tmap_out = match epi {
            Epilogue::Staged | Epilogue::TrainPreStaged(_) => {
                Some(encode_map(p.out as u64, m, n, 64, dtype)?)
            }
            _ => None,
        };
        let tmap_aux = match epi {
            Epilogue::TrainPreStaged(aux) => {
                if aux == 0 || aux % 16 != 0 {
                    return Err(GluError::Misaligned {
                        what: "pre-activation buffer (TMA store)",
                        required: 16,
                        value: aux as usize,
                    });
                }
                Some(encode_pre_map(aux, m, n, dtype)?)
            }
            Epilogue::TrainDguStaged(t) => Some(encode_pre_map(t.aux as u64, m, n, dtype)?),
            _ => None,
        };
        let f = self.function_with_smem(module, &name, smem)?;
        let mut cfg = persistent_cfg(m, n, self.sm_count, smem);
        if matches!(epi, Epilogue::Cluster) {
            // Resident clusters, asked once: SMs / 2 unless the GPCs cannot
            // pair every SM (then a grid of SMs / 2 clusters would run its
            // last clusters as a second wave).
            let clusters = *self.wgmma_clusters.get_or_init(|| {
                // The first cluster launch may come while a stream is being
                // captured in global mode. The query is no stream operation,
                // but should the driver count it as a potentially unsafe
                // call, it would invalidate that capture; in relaxed mode it
                // cannot. A failed query only means the SMs / 2 fallback.
                let _relaxed = super::autotune::RelaxedCapture::new().ok();
                let probe = LaunchConfig {
                    grid_dim: (2 * (self.sm_count / 2).max(1), 1, 1),
                    ..cfg
                };
                f.occupancy_max_active_clusters(probe, &self.stream)
                    .ok()
                    .filter(|&c| c > 0)
                    .map_or((self.sm_count as usize / 2).max(1), |c| c as usize)
            });
            cfg.grid_dim.0 = wgmma_cluster_grid(m, n, clusters) as u32;
        }
        let split = match epi {
            Epilogue::TailSplit(ts) => {
                // The kernel walks the units of the schedule `ts` describes.
                let tiles = m.div_ceil(WG_BM) * n.div_ceil(WG_BN);
                let width = ts.width.max(1) as usize;
                let tails = tiles % width;
                let parts = (ts.parts.max(1) as usize).min(TAIL_SPLIT_MAX_PARTS);
                let plan = TailSplitPlan {
                    tiles,
                    width,
                    tails,
                    parts,
                };
                if ts.parts < 1
                    || ts.parts as usize > TAIL_SPLIT_MAX_PARTS
                    || ts.width < 1
                    || plan.units() >= i32::MAX as usize
                    || (parts > 1 && (ts.ws.is_null() || ts.flags.is_null()))
                    || k.div_ceil(WG_BK) < parts
                {
                    return Err(GluError::BadShape {
                        what: "tail-split schedule of the Hopper kernel",
                        shape: vec![tiles, width, parts],
                        why: "needs 1..=4 parts, each at least one k-tile, a positive width, \
                              workspace and counters when split, and < 2^31 units",
                    });
                }
                cfg.grid_dim.0 = plan.grid() as u32;
                Some(*ts)
            }
            _ => None,
        };
        // SAFETY: the kernel signature is (CUtensorMap x3, GluParams) with,
        // before GluParams, a fourth CUtensorMap (out) for the staged
        // variants, a fifth (the pre-activations [m][2][n]) for the staged
        // pre-activation variant, or the [m][2][n] gradient map as the fourth
        // for the staged gradient variant; and GluTrainParams after GluParams
        // for the direct and staged gradient variants: exactly the arguments
        // pushed here; the tail-split variant takes GluTailSplit after
        // GluParams (schedule checked above; the caller sized `ws` and
        // `flags` for it, flags zero; a split grid of at most one CTA per SM
        // is launched cooperatively, i.e. all resident or refused); the
        // cluster variant takes the plain variant's arguments, its cluster
        // shape (2, 1, 1) is compiled in and its grid is even
        // (`wgmma_cluster_grid`); its CTAs touch only their own and their
        // cluster peer's shared memory, and both walk the same tiles.
        // Every map describes its buffer exactly: x [m, k],
        // w_gate / w_up ([n, k] for NK, [k, n] for KN, matching `p.layout`),
        // out [m, n], and the caller's [m, 2n] pre-activation or gradient
        // buffer (TMA loads never read outside them, out-of-bounds box
        // elements are zero-filled, TMA stores clip at the bounds). The
        // kernel writes out [m, n] (not for the gradient epilogues) and aux
        // [m, ld_aux] (training variants; the caller sized it) only, with
        // row/column predication, and reads biases [n] when non-null and
        // d_out [m, n] (gradient epilogues). Eligibility (cc 9.0 for the
        // sm_90a image, K/N multiples of 8, 16-byte aligned x / weights /
        // out, 4-byte aligned aux / d_out and even ld_aux >= 2N, 16-byte
        // aligned aux / d_out and ld_aux = 2N for the staged gradient
        // variant) was checked above, the dynamic shared memory limit was
        // raised by `function_with_smem`, and the caller keeps every buffer
        // alive until the launch has been recorded on this stream.
        unsafe {
            let mut b = self.stream.launch_builder(&f);
            b.arg(&tmap_x).arg(&tmap_g).arg(&tmap_u);
            if let Some(o) = &tmap_out {
                b.arg(o);
            }
            if let Some(a) = &tmap_aux {
                b.arg(a);
            }
            b.arg(p);
            if let Some(t) = train {
                b.arg(t);
            }
            if let Some(ts) = &split {
                b.arg(ts);
            }
            // A split schedule has CTAs wait for parts on other CTAs: launch
            // it cooperatively, so that a grid that cannot be resident all
            // at once (MPS limits, green contexts, SMs held by another
            // kernel) is refused instead of hanging.
            if split.is_some_and(|t| t.parts > 1) {
                b.launch_cooperative(cfg)
            } else {
                b.launch(cfg)
            }
        }?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cluster schedule's grid: even, at least one cluster, never more
    /// clusters than pairs of m tiles or than can be resident.
    #[test]
    fn cluster_grid_is_even_and_never_exceeds_the_pairs_or_clusters() {
        // M = 4096, N = 11008 with 66 resident clusters (132 SMs): 16 pair
        // rows x 86 column tiles.
        assert_eq!(wgmma_cluster_grid(4096, 11008, 66), 132);
        assert_eq!(wgmma_cluster_grid(4096, 11008, 60), 120);
        // One tile (one pair with a missing partner): one cluster.
        assert_eq!(wgmma_cluster_grid(1, 8, 66), 2);
        assert_eq!(wgmma_cluster_grid(200, 8, 66), 2);
        // Three pairs.
        assert_eq!(wgmma_cluster_grid(256, 3 * WG_BN, 66), 6);
        for m in [0, 1, 127, 128, 129, 384, 5000] {
            for n in [8, 128, 136, 11008] {
                for clusters in [0, 1, 2, 57, 66] {
                    let g = wgmma_cluster_grid(m, n, clusters);
                    assert!(g >= 2 && g % 2 == 0, "{m} {n} {clusters}: {g}");
                    assert!(g <= 2 * clusters.max(1), "{m} {n} {clusters}: {g}");
                    let pairs = m.div_ceil(WG_BM).div_ceil(2) * n.div_ceil(WG_BN);
                    assert!(g / 2 <= pairs.max(1), "{m} {n} {clusters}: {g}");
                }
            }
        }
    }

    /// The tail-split plan on an H200's 132 SMs: the cases the model was
    /// worked out for, and for every shape: no split without a tail, parts
    /// within 1..=4 with >= 4 k-tiles each, never a longer schedule than
    /// the plain one, counts consistent with the kernel's schedule.
    #[test]
    fn tail_split_plan_cases_and_invariants() {
        let p = tail_split_plan(256, 11008, 4096, 132);
        assert_eq!((p.tiles, p.tails, p.parts), (172, 40, 3));
        assert!((p.cost() - 4.0 / 3.0).abs() < 1e-9);
        assert_eq!(p.units(), 132 + 120);
        assert_eq!(p.grid(), 132);
        assert_eq!(p.ws_f32() * 4, 2 * 40 * 2 * 64 * 1024); // 10 MiB
        assert_eq!(p.counters(), 80);
        let p = tail_split_plan(2048, 11008, 4096, 132);
        assert_eq!((p.tiles, p.tails, p.parts), (1376, 56, 2));
        let p = tail_split_plan(512, 11008, 4096, 132);
        assert_eq!((p.tiles, p.tails, p.parts), (344, 80, 3));
        // Exactly two waves: nothing to split.
        let p = tail_split_plan(256, 132 * 128 / 2 * 2, 4096, 132);
        assert_eq!((p.tails, p.parts, p.ws_f32(), p.counters()), (0, 1, 0, 0));
        // Small problems: every tile is a tail tile.
        let p = tail_split_plan(200, 1000, 1024, 132);
        assert_eq!((p.tiles, p.tails, p.parts, p.grid()), (16, 16, 4, 64));
        // K too short to cut.
        assert_eq!(tail_split_plan(256, 11008, 256, 132).parts, 1);
        for sms in [1u32, 78, 114, 132] {
            for m in [1, 129, 256, 300, 2048, 5000] {
                for n in [8, 1000, 11008, 14336] {
                    for k in [64, 512, 4096] {
                        let p = tail_split_plan(m, n, k, sms);
                        let plain = TailSplitPlan { parts: 1, ..p };
                        assert!((1..=TAIL_SPLIT_MAX_PARTS).contains(&p.parts));
                        assert!(
                            p.parts == 1 || k.div_ceil(WG_BK) >= p.parts * TAIL_SPLIT_MIN_KTILES
                        );
                        assert!(p.parts == 1 || p.tails > 0);
                        assert!(p.cost() <= plain.cost(), "{m} {n} {k} {sms}: {p:?}");
                        assert_eq!(plain.units(), p.tiles);
                        assert!(p.grid() <= sms as usize && p.grid() >= 1);
                    }
                }
            }
        }
    }

    /// The Rust constants mirror `kernels/glu_hopper_layout.cuh`.
    #[test]
    fn constants_match_header() {
        let header = include_str!("../../kernels/glu_hopper_layout.cuh");
        let get = |name: &str| -> usize {
            let pat = format!("constexpr int {name} = ");
            let line = header
                .lines()
                .find(|l| l.starts_with(&pat))
                .unwrap_or_else(|| panic!("{name} missing"));
            line[pat.len()..]
                .split(';')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(get("kWgBM"), WG_BM);
        assert_eq!(get("kWgBN"), WG_BN);
        assert_eq!(get("kWgBK"), WG_BK);
        assert_eq!(get("kWgStages"), WG_STAGES);
        assert_eq!(get("kWgThreads"), WG_THREADS as usize);
        assert_eq!(get("kWgAccRegs"), 128);
        // kWgSplitSlotF4 float4 = one consumer's 128 threads x kWgAccRegs f32.
        assert!(
            header.contains("constexpr int64_t kWgSplitSlotF4 = (int64_t)(kWgAccRegs / 4) * 128;")
        );
        assert_eq!(TAIL_SPLIT_SLOT_F32, 128 / 4 * 128 * 4);
    }

    #[test]
    fn dx_eligibility() {
        let ok = |k, n, d, l, a| wgmma_dx_eligible((9, 0), k, n, d, l, a);
        for l in [WeightLayout::NK, WeightLayout::KN] {
            assert!(ok(4096, 11008, DType::BF16, l, true));
            assert!(ok(16, 8, DType::F16, l, true));
            // K/2 must be a multiple of 8: each output half starts 16-byte aligned.
            assert!(!ok(4104, 11008, DType::BF16, l, true));
            assert!(!ok(0, 11008, DType::BF16, l, true));
            assert!(!ok(4096, 11004, DType::BF16, l, true));
            assert!(!ok(4096, 11008, DType::F32, l, true));
            assert!(!ok(4096, 11008, DType::BF16, l, false));
        }
        assert!(!wgmma_dx_eligible(
            (8, 0),
            4096,
            11008,
            DType::BF16,
            WeightLayout::NK,
            true
        ));
        // The weight-gradient kernel: K % 16 for NK (x's column halves), % 8 for KN.
        let dw = |k, n, l| wgmma_dw_eligible((9, 0), k, n, DType::BF16, l, true);
        assert!(dw(4096, 11008, WeightLayout::NK) && dw(4096, 11008, WeightLayout::KN));
        assert!(!dw(4104, 11008, WeightLayout::NK) && dw(4104, 11008, WeightLayout::KN));
        assert!(!dw(4096, 11004, WeightLayout::KN) && !dw(0, 8, WeightLayout::KN));
        assert!(!wgmma_dw_eligible(
            (9, 0),
            64,
            64,
            DType::F32,
            WeightLayout::KN,
            true
        ));
        assert!(!wgmma_dw_eligible(
            (9, 0),
            64,
            64,
            DType::BF16,
            WeightLayout::KN,
            false
        ));
        assert_eq!(flip(WeightLayout::NK), WeightLayout::KN);
        assert_eq!(flip(WeightLayout::KN), WeightLayout::NK);
    }

    #[test]
    fn eligibility() {
        let ok = |cc, k, n, d, l, a| wgmma_eligible(cc, k, n, d, l, a);
        assert!(ok((9, 0), 4096, 11008, DType::BF16, WeightLayout::NK, true));
        assert!(ok((9, 0), 8, 8, DType::F16, WeightLayout::NK, true));
        assert!(!ok(
            (8, 0),
            4096,
            11008,
            DType::BF16,
            WeightLayout::NK,
            true
        ));
        assert!(!ok(
            (10, 0),
            4096,
            11008,
            DType::BF16,
            WeightLayout::NK,
            true
        ));
        assert!(!ok((9, 0), 4096, 11008, DType::F32, WeightLayout::NK, true));
        assert!(ok((9, 0), 4096, 11008, DType::BF16, WeightLayout::KN, true));
        assert!(!ok(
            (9, 0),
            4100,
            11008,
            DType::BF16,
            WeightLayout::NK,
            true
        ));
        assert!(!ok(
            (9, 0),
            4096,
            11004,
            DType::BF16,
            WeightLayout::NK,
            true
        ));
        assert!(!ok(
            (9, 0),
            4096,
            11008,
            DType::BF16,
            WeightLayout::NK,
            false
        ));
    }

    #[test]
    fn grid() {
        assert_eq!(wgmma_grid(1, 8, 132), 1);
        assert_eq!(wgmma_grid(129, 129, 132), 4);
        assert_eq!(wgmma_grid(8192, 11008, 132), 132);
    }
}
