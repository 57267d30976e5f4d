//! Forward dispatch: choose a path, validate, launch.

use super::hopper::{WG_BM, wgmma_eligible, wgmma_wave_efficiency};
use super::params::{self, GluParams};
use super::skinny::{SKINNY_MAX_M, SKINNY_RS_MAX_M, skinny_eligible};
use super::{CudaElement, CudaGlu, DeviceGluWeights};
use crate::error::{GluError, Result};
use crate::types::{Activation, DType, WeightLayout};
use crate::weights::{GluWeights, check_io, checked_len, rows_of};
use cudarc::driver::{DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg};

/// Which implementation computes the forward pass.
///
/// Pass [`Path::Auto`] to let [`CudaGlu::forward`] choose (it returns the
/// concrete path that ran), or a concrete path to force one.
///
/// ```
/// use swiglu::cuda::Path;
/// assert!(!Path::CONCRETE.contains(&Path::Auto));
/// assert_eq!(Path::FusedSimt.name(), "fused-simt");
/// assert!(Path::FusedWgmma.is_fused());
/// assert!(!Path::CublasSplit.is_fused());
/// let fused: Vec<&str> = Path::CONCRETE.iter().filter(|p| p.is_fused()).map(|p| p.name()).collect();
/// assert_eq!(fused.len(), 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// Let the dispatcher pick (reported back as the concrete path).
    Auto,
    /// Fused dual-GEMM for Hopper (compute capability 9.0): TMA loads,
    /// `wgmma`, warp-specialised and persistent. bf16/f16, K and N multiples
    /// of 8, 16-byte aligned buffers.
    FusedWgmma,
    /// **Forced only**: [`Path::FusedWgmma`]
    /// with a staged epilogue: the output tile goes through shared memory
    /// and leaves with TMA stores that overlap the next tile's main loop,
    /// instead of 4-byte stores from the accumulator fragments. Same
    /// requirements, bit-identical results. Passed on the H200 (session 16)
    /// and measured within ±3% of [`Path::FusedWgmma`] at M ≥ 512, so
    /// [`Path::Auto`] does not pick it.
    FusedWgmmaStaged,
    /// **Forced, or kept by the autotuner**: [`Path::FusedWgmma`]
    /// on a tail-split schedule. When the output tiles leave the last wave
    /// over the SMs partly empty (`tiles % #SM` tail tiles), those tiles are
    /// cut along K into 2–4 parts that run side by side on the idle SMs; the
    /// last part of each adds the others' f32 partial sums (from a scratch
    /// this `CudaGlu` keeps) in a fixed order, then runs the epilogue; where
    /// no split pays it is exactly the plain schedule. Passed on the H200
    /// (session 16): at M = 256, N = 11008 model 1.33x, measured 1.16x over
    /// [`Path::FusedWgmma`] (a tie with cuBLAS B2, which Auto runs there);
    /// 1.05–1.07x at M = 512, N = 14336, within ±3% at the other M ≥ 512,
    /// and up to 1.25x slower at the other M < 512. Same requirements
    /// as [`Path::FusedWgmma`]; results differ from it only by the
    /// summation order of the split tiles (deterministic from call to
    /// call). The built-in rule of [`Path::Auto`] does not pick it; the
    /// autotuner ([`CudaGlu::set_autotune`]) times it above M = 64 where
    /// the plan splits, and keeps it where it is faster.
    FusedWgmmaTailSplit,
    /// **Forced only**: [`Path::FusedWgmma`]
    /// on thread-block clusters of two CTAs. The two CTAs of a cluster take
    /// two adjacent 128-row tiles of one column tile, and each loads half of
    /// the shared weight stage and multicasts it (TMA `.multicast::cluster`)
    /// into both, so the weights cross from L2 to the SMs half as often (the
    /// step from 778 to 799 TFLOP/s in a published hand-written Hopper GEMM
    /// ladder). Same requirements as [`Path::FusedWgmma`], bit-identical
    /// results (each tile is computed in the same order). Passed on the H200
    /// (session 16): within ±3% of [`Path::FusedWgmma`] at M ≥ 512,
    /// 1.3–1.7x slower at M ≤ 128; [`Path::Auto`] does not pick it.
    FusedWgmmaCluster,
    /// Fused kernel for decode-sized M (1..=64): streams the weights with a
    /// deep pipeline and split-K. bf16/f16, K and N multiples of 8, 16-byte
    /// aligned buffers.
    FusedSkinny,
    /// **Forced only**: [`Path::FusedSkinny`]
    /// on a stream-K schedule. The `ceil(N/64) × ceil(K/64)` (column tile,
    /// k-tile) iterations are dealt out in equal contiguous shares to exactly
    /// as many blocks as the GPU holds at once (the driver's occupancy for
    /// the kernel, times the SMs), so every block streams the same number of
    /// weight bytes whatever N and the SM count: no partly empty wave
    /// (N = 11008 on an H200 fills 172 of 396 slots with the split-K plan)
    /// and no second wave of a few blocks (N = 14336 on an A100, N = 11008 on
    /// a 128-SM sm_89 part). Tiles shared by several blocks are summed from
    /// f32 partials by the last of them, in a fixed order (deterministic from
    /// call to call). Same requirements as [`Path::FusedSkinny`]. Passed on
    /// the H200 (session 16): 1–7% faster than [`Path::FusedSkinny`] in a
    /// single launch at M = 1 and 16, slower when queued (a decode loop),
    /// so [`Path::Auto`] does not pick it.
    FusedSkinnyStreamK,
    /// **Experimental** (session 17: compiled, passes the host emulator, not
    /// yet run on a GPU): the decode kernel for M ≤ 16 and NK weights (the
    /// `[N, K]` checkpoint layout and the concatenated `[2N, K]`) that
    /// streams the weights straight into registers instead of through a
    /// shared-memory ring, with the mma roles swapped (weights as the A
    /// operand, x as B) so that the registers hold loads in flight rather
    /// than accumulators. On the H200 plain 16-byte loads from enough
    /// blocks read the weight tiles at 84–86% of 4.8 TB/s, the ring at
    /// 49–67% (session 16's bandwidth probes). Otherwise the requirements of
    /// [`Path::FusedSkinny`]; [`Path::Auto`] does not pick it until measured.
    FusedSkinnyRs,
    /// Fused dual-GEMM on tensor cores (`mma.sync`, bf16/f16), any GPU from
    /// sm_80. Needs K and N multiples of 8 and 16-byte aligned buffers.
    FusedMma,
    /// [`Path::FusedMma`] for f32 inputs on the tf32 tensor cores: each
    /// input keeps 10 mantissa bits inside the tensor core (products carry a
    /// relative error up to ~2^-9, like `torch.backends.cuda.matmul.allow_tf32`),
    /// accumulation and output stay f32. Opt-in: force it, or let
    /// [`Path::Auto`] pick it for f32 on sm_80..sm_89 after
    /// [`CudaGlu::set_allow_tf32`] (on 9.x and newer Auto takes cuBLAS's
    /// tf32 GEMMs). Needs K and N multiples of 4 and 16-byte aligned
    /// buffers. Passed on the H200 (session 16); unmeasured on sm_80..sm_89.
    FusedMmaTf32,
    /// Fused dual-GEMM on CUDA cores: exact f32 arithmetic, any alignment,
    /// every dtype. The exact f32 kernel when forced; [`Path::Auto`] takes
    /// it only for bf16/f16 that miss the tensor-core preconditions (K, N
    /// multiples of 8, 16-byte aligned buffers) and sends f32 to cuBLAS's
    /// exact SGEMM, which measured 2–6.5x faster on the H200.
    FusedSimt,
    /// Baseline B1: two cuBLAS GEMMs + one vectorised `act_and_mul` kernel.
    CublasSplit,
    /// Baseline B2: one cuBLAS GEMM over the concatenated `[2N, K]` weights +
    /// `act_and_mul`. Needs weights made with [`DeviceGluWeights::from_gate_up`].
    CublasConcat,
    /// Baseline B3 (eager framework style): two cuBLAS GEMMs + an activation
    /// kernel + a multiply kernel.
    CublasEager,
}

impl Path {
    /// Every concrete path (not `Auto`).
    pub const CONCRETE: [Path; 13] = [
        Path::FusedWgmma,
        Path::FusedWgmmaStaged,
        Path::FusedWgmmaTailSplit,
        Path::FusedWgmmaCluster,
        Path::FusedSkinny,
        Path::FusedSkinnyStreamK,
        Path::FusedSkinnyRs,
        Path::FusedMma,
        Path::FusedMmaTf32,
        Path::FusedSimt,
        Path::CublasSplit,
        Path::CublasConcat,
        Path::CublasEager,
    ];

    /// Short name for tables and CLI flags.
    ///
    /// ```
    /// use swiglu::cuda::Path;
    /// assert_eq!(Path::Auto.name(), "auto");
    /// assert_eq!(Path::FusedMma.name(), "fused-mma");
    /// assert_eq!(Path::CublasSplit.name(), "cublas-b1"); // baselines B1..B3
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Path::Auto => "auto",
            Path::FusedWgmma => "fused-wgmma",
            Path::FusedWgmmaStaged => "fused-wgmma-staged",
            Path::FusedWgmmaTailSplit => "fused-wgmma-split",
            Path::FusedWgmmaCluster => "fused-wgmma-cluster",
            Path::FusedSkinny => "fused-skinny",
            Path::FusedSkinnyStreamK => "fused-skinny-streamk",
            Path::FusedSkinnyRs => "fused-skinny-rs",
            Path::FusedMma => "fused-mma",
            Path::FusedMmaTf32 => "fused-mma-tf32",
            Path::FusedSimt => "fused-simt",
            Path::CublasSplit => "cublas-b1",
            Path::CublasConcat => "cublas-b2",
            Path::CublasEager => "cublas-b3",
        }
    }

    /// Whether this path is one of the fused kernels.
    ///
    /// ```
    /// use swiglu::cuda::Path;
    /// assert!(Path::FusedSimt.is_fused());
    /// assert!(!Path::CublasConcat.is_fused());
    /// assert!(!Path::Auto.is_fused()); // not a concrete path
    /// assert_eq!(Path::CONCRETE.iter().filter(|p| !p.is_fused()).count(), 3);
    /// ```
    pub const fn is_fused(self) -> bool {
        matches!(
            self,
            Path::FusedWgmma
                | Path::FusedWgmmaStaged
                | Path::FusedWgmmaTailSplit
                | Path::FusedWgmmaCluster
                | Path::FusedSkinny
                | Path::FusedSkinnyStreamK
                | Path::FusedSkinnyRs
                | Path::FusedMma
                | Path::FusedMmaTf32
                | Path::FusedSimt
        )
    }
}

/// Largest M for which [`Path::Auto`] takes the decode kernel. Measured on
/// the H200 (2026-11-28, bf16, K = 4096, runs 2 and 3): at M = 32 it beat the
/// Hopper kernel at both N (66.0–66.3 vs 68.9–70.6 us at N = 11008,
/// 76.8–77.6 vs 78.4–78.8 us at N = 14336); at M = 64 the Hopper kernel wins
/// clearly (57.5–58.6 vs 88.2–89.6 us at N = 11008).
pub(crate) const SKINNY_AUTO_MAX_M: usize = 32;

/// Smallest M from which [`Path::Auto`] on compute capability 9.x gives a
/// decode-sized problem with concatenated `[2N, K]` weights to cuBLAS B2
/// (one GEMM into `[M, 2N]`, then `act_and_mul`) instead of the decode
/// kernel. Measured on the H200 (2026-11-30, bf16, K = 4096, two runs), at
/// M = 16 and 32, N = 11008 and 14336: B2 was faster in all 8 queued
/// comparisons (8 launches back to back, as a decode loop runs: 52.4–53.7
/// vs 54.4–57.2 us at N = 11008, 64.2–65.8 vs 66.7–71.8 at N = 14336) and
/// in all 8 of the autotuner's timings, and in 5 of 8 single launches; at
/// M = 1 the decode kernel tied or won (queued 51.3–51.6 vs 51.5–51.8 us at
/// N = 11008). M = 2..15 were not measured. With separate weights B1 (two
/// GEMMs) is the alternative, and the decode kernel was as fast or faster
/// than B1 at these points; so it stays there.
pub(crate) const SKINNY_CONCAT_CUBLAS_MIN_M: usize = 16;

/// Smallest M for which [`Path::Auto`] takes the Hopper kernel. Measured on
/// the H200 (2026-11-28, bf16, K = 4096): at M = 64 its 128-row tiles, though
/// half padding, still beat cuBLAS (59.8 vs 72.1 us at N = 11008, 70.3 vs
/// 114.0 us at N = 14336); at M <= 32 the decode kernel is faster.
const WGMMA_AUTO_MIN_M: usize = SKINNY_AUTO_MAX_M + 1;

/// Below this fraction of filled last-wave slots, [`Path::Auto`] leaves a
/// compute-bound problem (M in 129..=1024) to cuBLAS on Hopper. Measured on
/// the H200 (2026-11-28, K = 4096): M = 256, N = 11008 fills 65% of two
/// waves and B1/B2 were 10–15% faster in two runs; M = 256, N = 14336 (85%)
/// and M = 512 (87%) were 1.07–1.48x faster fused.
const WGMMA_MIN_WAVE_EFFICIENCY: f64 = 0.70;

/// What one attempt of [`CudaGlu::forward`] did.
pub(crate) enum Step {
    /// Launched this path (or nothing, for M = 0).
    Ran(Path),
    /// Launched nothing: [`Path::Auto`] with the autotuner on met a class
    /// it has no decision for.
    Tune(Problem),
}

/// What [`auto_path_for`] decides on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub dtype: DType,
    pub layout: WeightLayout,
    pub aligned: bool,
    pub concatenated: bool,
    /// f32 may run on the tf32 tensor cores ([`CudaGlu::set_allow_tf32`]);
    /// always false for bf16/f16, which the switch does not affect (so that
    /// it does not split their autotuner classes).
    pub allow_tf32: bool,
}

/// The cuBLAS baseline for a weight form: B2 (one GEMM over `[2N, K]`) for
/// concatenated weights, else B1 (one GEMM per projection).
pub(crate) const fn cublas_baseline(concatenated: bool) -> Path {
    if concatenated {
        Path::CublasConcat
    } else {
        Path::CublasSplit
    }
}

/// [`CudaGlu::auto_path`] for a device of compute capability `cc` with
/// `sm_count` SMs (a pure function, tested without a GPU).
pub(crate) fn auto_path_for(cc: (i32, i32), sm_count: u32, p: Problem) -> Path {
    let Problem {
        m,
        k,
        n,
        dtype,
        layout,
        aligned,
        concatenated,
        allow_tf32,
    } = p;
    if dtype == DType::F32 {
        // tf32 allowed: on sm_80..89 the tf32 kernel; on 9.x cuBLAS, whose
        // tf32 GEMMs run on wgmma there (the mma.sync kernel measured 0.39–
        // 0.48x of cuBLAS for bf16 on the H200; the tf32 variant shares its
        // structure). Exact f32: cuBLAS, whose SGEMM is exact f32 too. On
        // the H200 (2026-11-30, N = 11008, K = 4096) the SIMT kernel took
        // 690 / 692 / 2096 / 14582 us at M = 1 / 16 / 256 / 2048, cuBLAS B2
        // 107 / 236 / 986 / 7733 us and B1 118 / 220 / 1003 / 8373 us.
        // Not measured on sm_80..89, where the same is expected (cuBLAS's
        // SGEMM runs near the FMA peak; the SIMT kernel ran at 38% of it).
        return match (allow_tf32, cc.0 >= 9) {
            (true, false)
                if tf32_eligible(cc, k, n, aligned) && grid_takes_rows(Path::FusedMmaTf32, m) =>
            {
                Path::FusedMmaTf32
            }
            _ => cublas_baseline(concatenated),
        };
    }
    let tc_ok = k % 8 == 0 && n % 8 == 0 && aligned;
    if !tc_ok {
        return if grid_takes_rows(Path::FusedSimt, m) {
            Path::FusedSimt
        } else {
            cublas_baseline(concatenated)
        };
    }
    if m <= SKINNY_AUTO_MAX_M && skinny_eligible(m, k, n, dtype, aligned) {
        if cc.0 >= 9 && concatenated && m >= SKINNY_CONCAT_CUBLAS_MIN_M {
            return Path::CublasConcat;
        }
        return Path::FusedSkinny;
    }
    if m >= WGMMA_AUTO_MIN_M && wgmma_eligible(cc, k, n, dtype, layout, aligned) {
        let compute_bound = m > WG_BM && m <= 1024;
        if !(compute_bound && wgmma_wave_efficiency(m, n, sm_count) < WGMMA_MIN_WAVE_EFFICIENCY) {
            return Path::FusedWgmma;
        }
    }
    if cc.0 >= 9 || !grid_takes_rows(Path::FusedMma, m) {
        return cublas_baseline(concatenated);
    }
    Path::FusedMma
}

/// Whether the 2-D grid of the SIMT and `mma.sync` kernels (one block row
/// per `bm` rows, at most 65535) covers M: past about 4.2M rows (SIMT) or
/// 8.4M (`mma.sync`), [`Path::Auto`] runs cuBLAS instead of returning the
/// kernels' [`GluError::Overflow`].
pub(crate) fn rows_fit_grid(m: usize, bm: usize) -> bool {
    m.div_ceil(bm) <= MAX_ROW_TILES
}

/// The grid-y limit of the SIMT and `mma.sync` kernels.
const MAX_ROW_TILES: usize = 65_535;

/// Whether `path`'s grid reaches M rows: [`rows_fit_grid`] for the SIMT
/// and `mma.sync` kernels, always for the others (persistent or 1-D grids,
/// cuBLAS). What the rule, the autotuner's candidates and its kept
/// decisions all ask.
pub(crate) fn grid_takes_rows(path: Path, m: usize) -> bool {
    match path {
        Path::FusedSimt => rows_fit_grid(m, params::SIMT_BM),
        Path::FusedMma | Path::FusedMmaTf32 => rows_fit_grid(m, params::MMA_BM),
        _ => true,
    }
}

/// Whether the tf32 kernel can take an f32 problem: sm_80 or newer, K and N
/// multiples of 4 (16-byte chunks), 16-byte aligned buffers.
pub(crate) fn tf32_eligible(cc: (i32, i32), k: usize, n: usize, aligned: bool) -> bool {
    cc.0 >= 8 && k % 4 == 0 && n % 4 == 0 && aligned
}

/// Device address of an optional buffer (0 for `None`) and its sync guard.
pub(crate) fn opt_ptr<'a, T>(
    v: Option<&'a cudarc::driver::CudaView<'a, T>>,
    s: &'a cudarc::driver::CudaStream,
) -> (u64, Option<cudarc::driver::SyncOnDrop<'a>>) {
    match v {
        Some(v) => {
            let (p, g) = v.device_ptr(s);
            (p, Some(g))
        }
        None => (0, None),
    }
}

pub(crate) fn is_aligned16(ptrs: &[u64]) -> bool {
    ptrs.iter().all(|p| p % 16 == 0)
}

/// [`CudaGlu::workspace_bytes`] for every path whose scratch follows from
/// its launch plan alone (all but [`Path::FusedSkinnyStreamK`], whose grid
/// comes from the driver's occupancy query: 0 here). No scratch where the
/// path cannot run the problem (K = 0 for the split-K kernels, more rows
/// than a decode kernel takes, a dimension past the kernels' 32-bit
/// limits) and for an empty output. Sizes saturate instead of wrapping.
fn planned_workspace_bytes(
    path: Path,
    (m, k, n): (usize, usize, usize),
    dtype: DType,
    sm_count: u32,
    smem_optin: u32,
) -> usize {
    let runs = [m, n, k]
        .iter()
        .all(|&d| (1..=i32::MAX as usize).contains(&d));
    let split_bytes = |splits: usize, n_tiles: usize| {
        splits
            .saturating_mul(m)
            .saturating_mul(2 * n)
            .saturating_add(n_tiles)
            .saturating_mul(4)
    };
    match path {
        Path::Auto
        | Path::FusedWgmma
        | Path::FusedWgmmaStaged
        | Path::FusedWgmmaCluster
        | Path::FusedMma
        | Path::FusedMmaTf32
        | Path::FusedSimt
        | Path::FusedSkinnyStreamK => 0,
        Path::FusedWgmmaTailSplit if runs => {
            let plan = super::hopper::tail_split_plan(m, n, k, sm_count);
            (plan.ws_f32() + plan.counters()) * 4
        }
        Path::FusedSkinny if runs && m <= SKINNY_MAX_M => {
            let plan = super::skinny::skinny_plan(m, n, k, sm_count as usize, smem_optin);
            if plan.splits <= 1 {
                0
            } else {
                split_bytes(plan.splits, plan.n_tiles)
            }
        }
        Path::FusedSkinnyRs if runs && m <= SKINNY_RS_MAX_M => {
            let plan = super::skinny::skinny_rs_plan(m, n, k, sm_count as usize);
            if plan.splits <= 1 {
                0
            } else {
                split_bytes(plan.splits, plan.n_tiles)
            }
        }
        Path::FusedWgmmaTailSplit | Path::FusedSkinny | Path::FusedSkinnyRs => 0,
        Path::CublasSplit | Path::CublasConcat | Path::CublasEager => {
            (2 * dtype.size()).saturating_mul(m).saturating_mul(n)
        }
    }
}

impl CudaGlu {
    /// Device bytes a call of `path` uses besides its inputs and output:
    /// the baselines' `[M, 2N]` intermediate (allocated and freed, stream
    /// ordered, by each call), the decode kernel's split-K partial sums and
    /// tickets for this call; zero for the other fused kernels and for
    /// [`Path::Auto`] (ask with the path [`CudaGlu::auto_path`] returns).
    /// The decode kernel's scratch is not freed after the call: the
    /// `CudaGlu` allocates it on the first call that splits K, sized for
    /// every plan of that row padding (`m_pad × 128 × 2·#SM` f32: ~2.2 MB
    /// for M ≤ 16, ~8.7 MB for M ≤ 64 on 132 SMs), grows it for a larger
    /// padding and keeps every size it allocated (~15 MB at most on 132 SMs)
    /// until it is dropped. [`Path::FusedWgmmaTailSplit`] likewise keeps
    /// its partial sums: a launch uses 128 KiB per split tile and extra part
    /// (10 MiB at M = 256, N = 11008 on 132 SMs: 40 tail tiles in 3 parts),
    /// the scratch is allocated at the next power of two (16 MiB there) and
    /// outgrown sizes are kept. [`Path::FusedSkinnyStreamK`] keeps two
    /// slots of `M × 128` f32 per block of its grid (one block per resident
    /// slot: 396 at M ≤ 16 on an H200, 6.5 MB for M = 16; allocated for the
    /// call's row padding) and one counter per column tile; this returns
    /// what the call uses, and asks the driver for the kernel's occupancy
    /// (loading the decode kernels) the first time. These scratches serve
    /// the `CudaGlu`'s own stream: replaying a graph captured from it on
    /// another stream while the `CudaGlu` also runs would share them.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, Path};
    /// use swiglu::DType;
    /// let g = CudaGlu::new(0)?;
    /// let (m, k, n) = (2048, 4096, 11008);
    /// assert_eq!(g.workspace_bytes(Path::FusedMma, m, k, n, DType::BF16), 0);
    /// // The baselines materialise [M, 2N] in the element type.
    /// assert_eq!(g.workspace_bytes(Path::CublasSplit, m, k, n, DType::BF16), 2 * m * n * 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn workspace_bytes(&self, path: Path, m: usize, k: usize, n: usize, dtype: DType) -> usize {
        if path == Path::FusedSkinnyStreamK {
            let (ws, counters) = self.skinny_streamk_scratch_need(m, n, k);
            return ws.saturating_add(counters).saturating_mul(4);
        }
        planned_workspace_bytes(path, (m, k, n), dtype, self.sm_count, self.smem_optin)
    }

    /// `out = act(x·Wg + bg) ⊙ (x·Wu + bu)` on the device.
    ///
    /// `x` holds `x_shape` (`[.., K]`) elements, `out` the same leading dims
    /// with `N` last. Returns the path that ran; [`Path::Auto`] chooses with
    /// [`CudaGlu::auto_path`], or by timing the candidates on the first call
    /// of each problem class when the autotuner is on
    /// ([`CudaGlu::set_autotune`]).
    ///
    /// Errors (nothing launched, `out` untouched): shape and length checks
    /// as on the CPU path, [`GluError::Unsupported`] for a path that cannot
    /// take this dtype or weight form, [`GluError::Misaligned`] when
    /// [`Path::FusedMma`] is forced on unaligned data, [`GluError::Overflow`]
    /// when a dimension exceeds what a kernel or cuBLAS can index. One
    /// exception to "untouched": a [`Path::Auto`] call that tunes its class
    /// ([`CudaGlu::set_autotune`]) runs the candidates on `out` before its
    /// final launch, so an error of that launch leaves `out` written.
    ///
    /// The launch is asynchronous on [`CudaGlu::stream`]; copying `out` back
    /// (or [`CudaGlu::synchronize`]) waits for it.
    ///
    /// CUDA graphs: a call can be captured on the stream (cudarc's
    /// `begin_capture` / `end_capture`) after one direct call of the same
    /// path and shape, which loads the kernel and allocates the decode
    /// kernel's split-K scratch; capture needs a context with cudarc's event
    /// tracking disabled. The fused kernels queue one launch and nothing
    /// else; the cuBLAS baselines allocate and free their `[M, 2N]`
    /// intermediate inside the graph. A graph that holds a decode-kernel or
    /// tail-split launch ([`Path::FusedSkinny`], [`Path::FusedSkinnyStreamK`],
    /// [`Path::FusedSkinnyRs`], [`Path::FusedWgmmaTailSplit`]) uses the
    /// `CudaGlu`'s scratch: replay it
    /// only while that `CudaGlu` lives. With the autotuner on ([`CudaGlu::set_autotune`]), make the
    /// direct call before capturing too: it tunes the class, and the
    /// captured call then runs the kept path. `tests/gpu_graph.rs` replays
    /// captured calls against direct ones on every path but
    /// [`Path::FusedMmaTf32`] and [`Path::CublasEager`]; it passed on the
    /// H200 in session 16 (18 captured-and-replayed cases, cuBLAS B1/B2
    /// included; [`Path::FusedSkinnyRs`], added since, has run only on the
    /// host emulator).
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights, Path};
    /// use swiglu::{bf16, Activation, GluError};
    /// let g = CudaGlu::new(0)?;
    /// let s = g.stream();
    /// let (b, t, k, n) = (2, 64, 512, 1024);
    /// let x = s.clone_htod(&vec![bf16::from_f32(0.5); b * t * k])?; // [B, T, K]
    /// let gate_up = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?; // [2N, K]
    /// let w = DeviceGluWeights::from_gate_up(gate_up.as_view(), k, n)?;
    /// let mut out = s.alloc_zeros::<bf16>(b * t * n)?; // [B, T, N]
    ///
    /// let ran = g.forward(&x, &[b, t, k], &w, Activation::Silu, &mut out, Path::Auto)?;
    /// assert_ne!(ran, Path::Auto); // the concrete path that ran
    /// g.synchronize()?;
    /// let host = s.clone_dtoh(&out)?;
    /// assert_eq!(host.len(), b * t * n);
    ///
    /// // Forcing a path that cannot take the problem is a typed error.
    /// let mut out32 = s.alloc_zeros::<f32>(n)?;
    /// let x32 = s.clone_htod(&vec![1.0f32; k])?;
    /// let gu32 = s.clone_htod(&vec![0.01f32; 2 * n * k])?;
    /// let w32 = DeviceGluWeights::from_gate_up(gu32.as_view(), k, n)?;
    /// let err = g.forward(&x32, &[1, k], &w32, Activation::Silu, &mut out32, Path::FusedMma);
    /// assert!(matches!(err, Err(GluError::Unsupported { .. }))); // tensor cores: bf16/f16 only
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward<T: CudaElement, X: DevicePtr<T>, O: DevicePtrMut<T>>(
        &self,
        x: &X,
        x_shape: &[usize],
        w: &DeviceGluWeights<'_, T>,
        act: Activation,
        out: &mut O,
        path: Path,
    ) -> Result<Path> {
        match self.forward_once(x, x_shape, w, act, out, path)? {
            Step::Ran(p) => Ok(p),
            Step::Tune(problem) => {
                // Guards of the first attempt are dropped: the candidates
                // take their own.
                let chosen = self.tune(x, x_shape, w, act, out, problem)?;
                match self.forward_once(x, x_shape, w, act, out, chosen)? {
                    Step::Ran(p) => Ok(p),
                    Step::Tune(_) => unreachable!("a concrete path is never tuned"),
                }
            }
        }
    }

    /// [`CudaGlu::forward`] up to the launch: validates, resolves
    /// [`Path::Auto`] (the rule, or the autotuner's kept decision) and
    /// launches; with the autotuner on and no decision for the class, it
    /// launches nothing and asks for a tuning pass instead.
    fn forward_once<T: CudaElement, X: DevicePtr<T>, O: DevicePtrMut<T>>(
        &self,
        x: &X,
        x_shape: &[usize],
        w: &DeviceGluWeights<'_, T>,
        act: Activation,
        out: &mut O,
        path: Path,
    ) -> Result<Step> {
        act.validate()?;
        let (k, n) = (w.k, w.n);
        let m = check_io(x.len(), x_shape, k, n, out.len())?;
        // The guards record read/write events when dropped, so they live
        // until after the launch at the end of this function.
        let s = &self.stream;
        let (xp, _gx) = x.device_ptr(s);
        let (op, _go) = out.device_ptr_mut(s);
        let (wg, _gwg) = w.gate.device_ptr(s);
        let (wu, _gwu) = w.up.device_ptr(s);
        let (bg, _gbg) = opt_ptr(w.bias_gate.as_ref(), s);
        let (bu, _gbu) = opt_ptr(w.bias_up.as_ref(), s);

        let aligned = is_aligned16(&[xp, op, wg, wu]);
        let path = match path {
            Path::Auto => {
                let problem = self.problem(m, k, n, T::DTYPE, w.layout, aligned, w.concatenated);
                match self.autotune_decision(&problem)? {
                    Some(p) => p,
                    None => return Ok(Step::Tune(problem)),
                }
            }
            p @ (Path::FusedWgmma
            | Path::FusedWgmmaStaged
            | Path::FusedWgmmaTailSplit
            | Path::FusedWgmmaCluster
            | Path::FusedSkinny
            | Path::FusedSkinnyStreamK
            | Path::FusedSkinnyRs
            | Path::FusedMma
            | Path::FusedMmaTf32) => {
                self.check_tensor_core(p, T::DTYPE, w.layout, (m, k, n), &[xp, op, wg, wu])?;
                p
            }
            Path::CublasConcat if !w.concatenated => {
                return Err(GluError::Unsupported {
                    what: "baseline B2 needs one concatenated [2N,K] weight (DeviceGluWeights::from_gate_up)"
                        .into(),
                    dtype: T::DTYPE,
                    layout: w.layout,
                });
            }
            p => p,
        };
        if m == 0 {
            return Ok(Step::Ran(path));
        }
        let p = GluParams::new([xp, wg, wu, bg, bu, op], (m, n, k), w.layout, act);
        match path {
            Path::FusedWgmma => self.launch_wgmma(&p, T::DTYPE, w.layout)?,
            Path::FusedWgmmaStaged => self.launch_wgmma_staged(&p, T::DTYPE, w.layout)?,
            Path::FusedWgmmaTailSplit => self.launch_wgmma_split(&p, T::DTYPE, w.layout)?,
            Path::FusedWgmmaCluster => self.launch_wgmma_cluster(&p, T::DTYPE, w.layout)?,
            Path::FusedSkinny => self.launch_skinny(&p, T::DTYPE, w.layout)?,
            Path::FusedSkinnyStreamK => self.launch_skinny_streamk(&p, T::DTYPE, w.layout)?,
            Path::FusedSkinnyRs => self.launch_skinny_rs(&p, T::DTYPE, w.layout)?,
            Path::FusedMma | Path::FusedMmaTf32 => self.launch_fused(
                &p,
                "fused_glu_mma",
                params::MMA_BM,
                params::MMA_BN,
                params::MMA_THREADS,
                params::MMA_SMEM_BYTES,
                // fused_glu_mma_{kn,nk}_{bf16,f16,tf32}
                if path == Path::FusedMmaTf32 {
                    "tf32"
                } else {
                    T::DTYPE.name()
                },
                w.layout,
            )?,
            Path::FusedSimt => self.launch_fused(
                &p,
                "fused_glu_simt",
                params::SIMT_BM,
                params::SIMT_BN,
                params::SIMT_THREADS,
                0,
                T::DTYPE.name(),
                w.layout,
            )?,
            Path::CublasSplit | Path::CublasConcat | Path::CublasEager => {
                self.baseline::<T>(path, &p, w.layout)?
            }
            Path::Auto => unreachable!("resolved above"),
        }
        Ok(Step::Ran(path))
    }

    /// Preconditions of a forced tensor-core path: [`GluError::Unsupported`]
    /// for the wrong dtype, architecture or M, [`GluError::Misaligned`] for K
    /// or N not multiples of 8 or a buffer (x, weights, out) not 16-byte aligned.
    fn check_tensor_core(
        &self,
        path: Path,
        dtype: DType,
        layout: WeightLayout,
        (m, k, n): (usize, usize, usize),
        ptrs: &[u64],
    ) -> Result<()> {
        let unsupported = |what: String| {
            Err(GluError::Unsupported {
                what,
                dtype,
                layout,
            })
        };
        // K and N whole 16-byte chunks (`mult` elements), buffers 16-byte aligned.
        let chunks = |mult: usize, what: &'static str| {
            if k % mult != 0 || n % mult != 0 {
                let bad = if k % mult != 0 { k } else { n };
                return Err(GluError::Misaligned {
                    what,
                    required: 16,
                    value: bad * dtype.size(),
                });
            }
            if let Some(&bad) = ptrs.iter().find(|p| *p % 16 != 0) {
                return Err(GluError::Misaligned {
                    what: "device buffer",
                    required: 16,
                    value: bad as usize,
                });
            }
            Ok(())
        };
        if path == Path::FusedMmaTf32 {
            if dtype != DType::F32 {
                return unsupported("fused-mma-tf32 takes f32 (bf16/f16: fused-mma)".into());
            }
            return chunks(4, "K and N (the tf32 path needs multiples of 4 elements)");
        }
        if dtype == DType::F32 {
            return unsupported(format!(
                "{} takes bf16/f16 (fused-simt is the exact f32 path, fused-mma-tf32 the tf32 one)",
                path.name()
            ));
        }
        if matches!(
            path,
            Path::FusedWgmma
                | Path::FusedWgmmaStaged
                | Path::FusedWgmmaTailSplit
                | Path::FusedWgmmaCluster
        ) && self.cc != (9, 0)
        {
            return unsupported(format!(
                "{} needs compute capability 9.0, this device has {}.{}",
                path.name(),
                self.cc.0,
                self.cc.1
            ));
        }
        if matches!(path, Path::FusedSkinny | Path::FusedSkinnyStreamK) && m > SKINNY_MAX_M {
            return unsupported(format!(
                "{} takes M <= {SKINNY_MAX_M}, got M = {m}",
                path.name()
            ));
        }
        if path == Path::FusedSkinnyRs && (m > SKINNY_RS_MAX_M || layout != WeightLayout::NK) {
            return unsupported(format!(
                "{} takes M <= {SKINNY_RS_MAX_M} and NK weights, got M = {m} with {} weights",
                path.name(),
                layout.short_name()
            ));
        }
        chunks(
            8,
            "K and N (tensor-core paths need multiples of 8 elements)",
        )
    }

    /// The path [`Path::Auto`] takes for a problem, from what was measured
    /// (BENCHMARKS.md):
    ///
    /// * f32: the cuBLAS baseline (B2 or B1), whose SGEMM is exact f32 (on
    ///   the H200 the exact [`Path::FusedSimt`] kernel measured 2–6.5x
    ///   slower at M = 1..2048, 2026-11-30; forcing it still works); with
    ///   [`CudaGlu::set_allow_tf32`] on sm_80..sm_89 [`Path::FusedMmaTf32`]
    ///   where it can run (K, N multiples of 4, 16-byte aligned buffers),
    ///   elsewhere cuBLAS with tf32 GEMMs (B2 or B1), which use wgmma on 9.x.
    /// * bf16/f16 that misses the tensor-core preconditions (K, N multiples
    ///   of 8, 16-byte aligned buffers): [`Path::FusedSimt`], exact.
    /// * M ≤ 32: [`Path::FusedSkinny`] (bound by reading the weights; on the
    ///   H200 1.0–1.2x over B1), except on compute capability 9.x and newer
    ///   with concatenated `[2N, K]` weights at 16 ≤ M ≤ 32, where cuBLAS B2
    ///   measured 3–9% faster in a decode loop on the H200 (2026-11-30) and
    ///   runs instead.
    /// * compute capability 9.0 and M > 32: [`Path::FusedWgmma`] (1.2–1.7x
    ///   over B1 at M = 64..128, 713–755 TFLOP/s and 1.2–1.3x over B1 at
    ///   M ≥ 2048 on the H200), except for 129 ≤ M ≤ 1024 when its 128×128
    ///   tiles fill less than 70% of the last wave over the SMs (M = 256,
    ///   N = 11008: cuBLAS measured 10–15% faster).
    /// * the rest on compute capability 9.x and newer (those cases, and every
    ///   part other than 9.0, which cannot run the sm_90a kernel; the
    ///   `mma.sync` kernel measured 0.51–0.56x of B1 at M ≥ 2048 on the
    ///   H200, session 16): the cuBLAS
    ///   baseline (B2 when the weights are one `[2N, K]` tensor, else B1),
    ///   reported as such.
    /// * the rest on compute capability 8.x (sm_80 .. sm_89), the only parts
    ///   where Auto takes it: [`Path::FusedMma`].
    ///
    /// This rule was fitted on one H200. With the autotuner on
    /// ([`CudaGlu::set_autotune`]) [`Path::Auto`] instead times this choice
    /// against the other candidates once per problem class and keeps the
    /// fastest: the way to be sure of the best path on GPUs nothing was
    /// measured on (sm_80 .. sm_89 included).
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, Path};
    /// use swiglu::{DType, WeightLayout};
    /// let g = CudaGlu::new(0)?;
    /// // f32 takes cuBLAS's exact SGEMM (B2 for concatenated weights).
    /// let p = g.auto_path(4096, 4096, 11008, DType::F32, WeightLayout::NK, true, true);
    /// assert_eq!(p, Path::CublasConcat);
    /// // Decode-sized bf16 batches take the weight-streaming kernel.
    /// let p = g.auto_path(1, 4096, 11008, DType::BF16, WeightLayout::NK, true, true);
    /// assert_eq!(p, Path::FusedSkinny);
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn auto_path(
        &self,
        m: usize,
        k: usize,
        n: usize,
        dtype: DType,
        layout: WeightLayout,
        aligned: bool,
        concatenated: bool,
    ) -> Path {
        auto_path_for(
            self.cc,
            self.sm_count,
            self.problem(m, k, n, dtype, layout, aligned, concatenated),
        )
    }

    /// A call's dispatch inputs on this handle (its tf32 switch counts for
    /// f32 only).
    #[allow(clippy::too_many_arguments)]
    fn problem(
        &self,
        m: usize,
        k: usize,
        n: usize,
        dtype: DType,
        layout: WeightLayout,
        aligned: bool,
        concatenated: bool,
    ) -> Problem {
        Problem {
            m,
            k,
            n,
            dtype,
            layout,
            aligned,
            concatenated,
            allow_tf32: self.allow_tf32() && dtype == DType::F32,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_fused(
        &self,
        p: &GluParams,
        module: &'static str,
        bm: usize,
        bn: usize,
        threads: u32,
        smem: u32,
        type_suffix: &str,
        layout: WeightLayout,
    ) -> Result<()> {
        let (m, n) = (p.m as usize, p.n as usize);
        let grid_y = m.div_ceil(bm);
        if !rows_fit_grid(m, bm) {
            return Err(GluError::Overflow {
                what: "rows of x (grid y of the fused kernel)",
                dims: vec![m],
                limit: "65535 row tiles",
            });
        }
        let grid_x = n.div_ceil(bn);
        if grid_x > i32::MAX as usize {
            return Err(GluError::Overflow {
                what: "N (grid x)",
                dims: vec![n],
                limit: "2^31-1 column tiles",
            });
        }
        let lay = layout.short_name();
        let name = format!("{module}_{lay}_{type_suffix}");
        let f = self.function_with_smem(module, &name, smem)?;
        let cfg = LaunchConfig {
            grid_dim: (grid_x as u32, grid_y as u32, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: smem,
        };
        // SAFETY: `p` was built by `forward` from buffers whose lengths were
        // checked against (m, n, k) and the layout; the kernel reads x [m,k],
        // both weights [k*n], biases [n] when non-null, and writes out [m,n]
        // only, with every tail predicated. The tensor-core variant is only
        // chosen when its preconditions (K, N multiples of 8, 16-byte aligned
        // pointers) hold, and its dynamic shared memory limit was raised by
        // `function_with_smem`. All buffers outlive the launch on this stream.
        unsafe { self.stream.launch_builder(&f).arg(p).launch(cfg) }?;
        Ok(())
    }

    /// [`CudaGlu::function`], with the kernel's dynamic shared memory limit
    /// raised to at least `smem`: one driver call the first time a kernel
    /// needs more than the 48 KiB default (or more than it was raised to),
    /// none on later launches.
    pub(crate) fn function_with_smem(
        &self,
        module: &'static str,
        name: &str,
        smem: u32,
    ) -> Result<cudarc::driver::CudaFunction> {
        let f = self.function(module, name)?;
        if smem <= 48 * 1024 {
            return Ok(f);
        }
        let mut fns = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        let raised = fns.get_mut(name).map(|(_, r)| r);
        if raised.as_deref().is_some_and(|&r| r >= smem) {
            return Ok(f);
        }
        f.set_attribute(
            cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            smem as i32,
        )?;
        if let Some(r) = raised {
            *r = smem;
        }
        Ok(f)
    }

    /// Host-memory convenience: copies `x` and the weights to the device,
    /// runs [`CudaGlu::forward`], and copies the output back.
    ///
    /// Returns the output and the path that ran. Handy for tests and
    /// one-off calls; in a loop, keep the weights on the device and call
    /// [`CudaGlu::forward`].
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, Path};
    /// use swiglu::{cpu, Activation, GluWeights, WeightLayout};
    /// let g = CudaGlu::new(0)?;
    /// let (m, k, n) = (8, 32, 16);
    /// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.1).sin()).collect();
    /// let wg: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.2).cos() * 0.1).collect();
    /// let w = GluWeights::new(&wg, &wg, k, n, WeightLayout::NK)?;
    /// let (gpu, ran) = g.forward_host(&x, &[m, k], &w, Activation::Silu, Path::Auto)?;
    /// assert_eq!(ran, Path::CublasSplit); // f32: cuBLAS's exact SGEMM
    /// let cpu = cpu::forward_alloc(&x, &[m, k], &w, Activation::Silu)?;
    /// assert!(gpu.iter().zip(&cpu).all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs())));
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward_host<T: CudaElement>(
        &self,
        x: &[T],
        x_shape: &[usize],
        w: &GluWeights<'_, T>,
        act: Activation,
        path: Path,
    ) -> Result<(Vec<T>, Path)> {
        let m = rows_of(x_shape, w.k())?;
        check_io(
            x.len(),
            x_shape,
            w.k(),
            w.n(),
            checked_len::<T>("M*N", m, w.n())?,
        )?;
        let s = &self.stream;
        let dx = s.clone_htod(x)?;
        let (dwg, dwu);
        let dgu;
        let concat = w.layout() == WeightLayout::NK && path == Path::CublasConcat;
        let dw = if concat {
            let mut gu = Vec::with_capacity(2 * w.gate().len());
            gu.extend_from_slice(w.gate());
            gu.extend_from_slice(w.up());
            dgu = s.clone_htod(&gu)?;
            DeviceGluWeights::from_gate_up(dgu.as_view(), w.k(), w.n())?
        } else {
            dwg = s.clone_htod(w.gate())?;
            dwu = s.clone_htod(w.up())?;
            DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), w.k(), w.n(), w.layout())?
        };
        let dbg = w.bias_gate().map(|b| s.clone_htod(b)).transpose()?;
        let dbu = w.bias_up().map(|b| s.clone_htod(b)).transpose()?;
        let dw = dw.with_biases(
            dbg.as_ref().map(|b| b.as_view()),
            dbu.as_ref().map(|b| b.as_view()),
        )?;
        let mut dout = s.alloc_zeros::<T>(m * w.n())?;
        let ran = self.forward(&dx, x_shape, &dw, act, &mut dout, path)?;
        Ok((s.clone_dtoh(&dout)?, ran))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bf16, aligned, separate weights.
    /// [`pick`] with separate weights.
    fn pick_split(cc: (i32, i32), m: usize, n: usize) -> Path {
        pick_form(cc, m, n, DType::BF16, true, false)
    }

    /// Auto's choice at K = 4096, NK layout, concatenated weights.
    fn pick(cc: (i32, i32), m: usize, n: usize, dtype: DType, aligned: bool) -> Path {
        pick_form(cc, m, n, dtype, aligned, true)
    }

    fn pick_form(
        cc: (i32, i32),
        m: usize,
        n: usize,
        dtype: DType,
        aligned: bool,
        concatenated: bool,
    ) -> Path {
        auto_path_for(
            cc,
            132,
            Problem {
                m,
                k: 4096,
                n,
                dtype,
                layout: WeightLayout::NK,
                aligned,
                concatenated,
                allow_tf32: false,
            },
        )
    }

    /// f32 takes cuBLAS (exact SGEMM) unless tf32 is allowed; then, on
    /// sm_80..89, the tf32 kernel wherever it can run (any M), else cuBLAS
    /// (tf32 GEMMs); on 9.x and newer cuBLAS (tf32 GEMMs) for any shape.
    #[test]
    fn f32_dispatch_follows_the_tf32_opt_in() {
        let f32_pick = |cc, k, n, aligned, allow_tf32| {
            auto_path_for(
                cc,
                132,
                Problem {
                    m: 512,
                    k,
                    n,
                    dtype: DType::F32,
                    layout: WeightLayout::KN,
                    aligned,
                    concatenated: false,
                    allow_tf32,
                },
            )
        };
        for cc in [(8, 0), (8, 9)] {
            assert_eq!(f32_pick(cc, 4096, 11008, true, false), Path::CublasSplit);
            assert_eq!(f32_pick(cc, 4096, 11008, true, true), Path::FusedMmaTf32);
            assert_eq!(f32_pick(cc, 4096, 11004, true, true), Path::FusedMmaTf32);
            assert_eq!(f32_pick(cc, 4094, 11008, true, true), Path::CublasSplit);
            assert_eq!(f32_pick(cc, 4096, 11006, true, true), Path::CublasSplit);
            assert_eq!(f32_pick(cc, 4096, 11008, false, true), Path::CublasSplit);
            assert_eq!(f32_pick(cc, 4094, 11006, false, false), Path::CublasSplit);
        }
        // 9.x and newer: cuBLAS's tf32 GEMMs (wgmma) + act_and_mul, any shape.
        for cc in [(9, 0), (10, 0)] {
            assert_eq!(f32_pick(cc, 4096, 11008, true, false), Path::CublasSplit);
            assert_eq!(f32_pick(cc, 4094, 11006, false, false), Path::CublasSplit);
            assert_eq!(f32_pick(cc, 4096, 11008, true, true), Path::CublasSplit);
            assert_eq!(f32_pick(cc, 4094, 11006, false, true), Path::CublasSplit);
        }
        // bf16 ignores the flag.
        let bf = |allow_tf32| {
            auto_path_for(
                (8, 0),
                132,
                Problem {
                    m: 512,
                    k: 4096,
                    n: 11008,
                    dtype: DType::BF16,
                    layout: WeightLayout::KN,
                    aligned: true,
                    concatenated: false,
                    allow_tf32,
                },
            )
        };
        assert_eq!(bf(true), bf(false));
    }

    /// The decisions at the benchmarked points (H200: cc 9.0, 132 SMs).
    #[test]
    fn hopper_dispatch_follows_the_measurements() {
        let h = (9, 0);
        for n in [11008, 14336] {
            assert_eq!(pick(h, 1, n, DType::BF16, true), Path::FusedSkinny);
            assert_eq!(pick(h, 15, n, DType::BF16, true), Path::FusedSkinny);
            // Concatenated weights, M = 16..32: cuBLAS B2 measured faster
            // (SKINNY_CONCAT_CUBLAS_MIN_M); separate weights keep the decode
            // kernel; sm_80..89 (unmeasured) keep it too.
            assert_eq!(pick(h, 16, n, DType::BF16, true), Path::CublasConcat);
            assert_eq!(pick(h, 32, n, DType::BF16, true), Path::CublasConcat);
            assert_eq!(pick_split(h, 16, n), Path::FusedSkinny);
            assert_eq!(pick_split(h, 32, n), Path::FusedSkinny);
            assert_eq!(pick((8, 0), 16, n, DType::BF16, true), Path::FusedSkinny);
            assert_eq!(pick((8, 9), 32, n, DType::BF16, true), Path::FusedSkinny);
            for m in [33, 64, 128, 512, 2048, 16384] {
                assert_eq!(
                    pick(h, m, n, DType::F16, true),
                    Path::FusedWgmma,
                    "m={m} n={n}"
                );
            }
        }
        // 172 tiles on 132 SMs: 65% of two waves; cuBLAS measured faster.
        assert_eq!(pick(h, 256, 11008, DType::BF16, true), Path::CublasConcat);
        assert_eq!(pick(h, 256, 14336, DType::BF16, true), Path::FusedWgmma);
        // Unaligned bf16: the exact kernel. f32: cuBLAS's exact SGEMM (the
        // SIMT kernel measured 2-6.5x slower, 2026-11-30).
        assert_eq!(pick(h, 2048, 11008, DType::BF16, false), Path::FusedSimt);
        for m in [1, 16, 256, 2048] {
            assert_eq!(pick(h, m, 11008, DType::F32, true), Path::CublasConcat);
        }
    }

    #[test]
    fn other_architectures() {
        assert_eq!(pick((8, 0), 2048, 11008, DType::BF16, true), Path::FusedMma);
        assert_eq!(pick((8, 9), 256, 11008, DType::BF16, true), Path::FusedMma);
        assert_eq!(pick((8, 6), 4, 11008, DType::BF16, true), Path::FusedSkinny);
        // 9.x parts other than 9.0 have no sm_90a kernel: cuBLAS.
        assert_eq!(
            pick((9, 1), 2048, 11008, DType::BF16, true),
            Path::CublasConcat
        );
    }

    #[test]
    fn wave_efficiency() {
        use crate::cuda::hopper::wgmma_wave_efficiency as eff;
        assert!((eff(256, 11008, 132) - 172.0 / 264.0).abs() < 1e-12);
        assert!((eff(512, 11008, 132) - 344.0 / 396.0).abs() < 1e-12);
        assert_eq!(eff(128 * 132, 128, 132), 1.0);
        assert_eq!(eff(0, 128, 132), 1.0);
    }

    /// Past the SIMT and mma.sync kernels' 65535 row tiles Auto takes cuBLAS
    /// (instead of a path that would return an overflow error); up to it,
    /// the kernels as before.
    #[test]
    fn auto_leaves_the_grid_bound_kernels_past_their_rows() {
        let simt_max = 65_535 * params::SIMT_BM;
        let mma_max = 65_535 * params::MMA_BM;
        let sm80 = (8, 0);
        // Unaligned bf16: the SIMT kernel.
        assert_eq!(
            pick(sm80, simt_max, 11008, DType::BF16, false),
            Path::FusedSimt
        );
        assert_eq!(
            pick(sm80, simt_max + 1, 11008, DType::BF16, false),
            Path::CublasConcat
        );
        assert_eq!(pick_split((9, 0), simt_max + 1, 11007), Path::CublasSplit);
        // sm_80..89, aligned: mma.sync.
        assert_eq!(
            pick(sm80, mma_max, 11008, DType::BF16, true),
            Path::FusedMma
        );
        assert_eq!(
            pick(sm80, mma_max + 1, 11008, DType::BF16, true),
            Path::CublasConcat
        );
        // tf32 likewise.
        let tf32 = |m| {
            auto_path_for(
                sm80,
                108,
                Problem {
                    m,
                    k: 4096,
                    n: 11008,
                    dtype: DType::F32,
                    layout: WeightLayout::NK,
                    aligned: true,
                    concatenated: false,
                    allow_tf32: true,
                },
            )
        };
        assert_eq!(tf32(mma_max), Path::FusedMmaTf32);
        assert_eq!(tf32(mma_max + 1), Path::CublasSplit);
        assert!(rows_fit_grid(0, params::SIMT_BM) && !rows_fit_grid(usize::MAX, 1));
    }

    /// The scratch sizes never panic or wrap, whatever the shape: empty
    /// problems, rows past a decode kernel's limit and sizes at the edge of
    /// `usize` give 0 or saturate; a split decode plan gives its partial sums.
    #[test]
    fn workspace_bytes_take_any_shape() {
        let paths = std::iter::once(Path::Auto).chain(Path::CONCRETE);
        let big = usize::MAX / 2;
        let dims = [0, 1, 7, 16, 17, 64, 65, 129, 4096, 1 << 40, big, usize::MAX];
        for path in paths {
            for &m in &dims {
                for &k in &dims {
                    for &n in &dims {
                        for sm in [0, 1, 132] {
                            let b = planned_workspace_bytes(path, (m, k, n), DType::BF16, sm, 0);
                            if m == 0 || n == 0 {
                                assert_eq!(b, 0, "{path:?} {m}x{k}x{n}");
                            }
                        }
                    }
                }
            }
        }
        let ws = |path, m, k, n| planned_workspace_bytes(path, (m, k, n), DType::BF16, 132, 232448);
        assert_eq!(
            ws(Path::FusedSkinny, 65, 4096, 4096),
            0,
            "beyond the decode rows"
        );
        assert_eq!(
            ws(Path::FusedSkinnyRs, 17, 4096, 4096),
            0,
            "beyond the RS rows"
        );
        assert_eq!(ws(Path::CublasSplit, big, 1, big), usize::MAX, "saturates");
        assert_eq!(ws(Path::CublasConcat, 3, 8, 5), 2 * 3 * 5 * 2);
        // One column tile and a deep K: the decode plans split K, and the
        // scratch holds `splits` f32 copies of the [M, 2N] partial sums.
        let plan = super::super::skinny::skinny_plan(16, 64, 1 << 16, 132, 232448);
        assert!(plan.splits > 1, "{plan:?}");
        assert_eq!(
            ws(Path::FusedSkinny, 16, 1 << 16, 64),
            (plan.splits * 16 * 2 * 64 + plan.n_tiles) * 4
        );
        assert!(ws(Path::FusedSkinnyRs, 16, 1 << 16, 64) > 0);
    }
}
