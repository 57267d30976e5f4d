//! The CUDA path: fused kernels, cuBLAS baselines and dispatch.
//!
//! [`CudaGlu`] owns (or borrows) a context and stream, loads the embedded
//! kernel modules lazily, holds a cuBLAS handle, and runs the gated FFN on
//! device buffers ([`cudarc::driver::CudaSlice`] / views) without hidden copies.
//! Every entry point validates shapes, lengths and alignment first and
//! returns a [`GluError`]; nothing is launched or written on error.
//!
//! Nothing here panics when CUDA is missing: [`CudaGlu::new`] checks for the
//! driver library, a device, cuBLAS and the embedded kernels, and says which
//! one is missing.

mod autotune;
mod backward;
mod baselines;
mod blas;
mod diagnostics;
mod elementwise;
mod forward;
mod hopper;
pub(crate) mod params;
mod pool;
mod scratch;
mod skinny;
mod timeline;
mod train;
mod weights;

pub use autotune::TunedPath;
pub use diagnostics::FragmentMismatch;
pub use forward::Path;
pub use pool::PoolUsage;
pub use timeline::StageTime;
pub use train::{DeviceGrads, DeviceSaved};
pub use weights::DeviceGluWeights;

use crate::error::{GluError, Result};
use crate::types::Element;
use cudarc::cublas::CudaBlas;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, DeviceRepr, ValidAsZeroBits,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

/// Whether this build embeds the CUDA kernels (false when nvcc was missing at build time).
///
/// See [`unavailable_reason`] for an example.
pub const KERNELS_BUILT: bool = embedded::KERNELS_BUILT;

/// An element type the CUDA path handles: `f32`, `f16`, `bf16`.
///
/// Implemented for every [`Element`]; use it as the bound of code generic
/// over the device element type.
///
/// ```no_run
/// use swiglu::cuda::{CudaElement, CudaGlu};
/// use cudarc::driver::CudaSlice;
/// fn upload<T: CudaElement>(g: &CudaGlu, host: &[T]) -> swiglu::Result<CudaSlice<T>> {
///     Ok(g.stream().clone_htod(host)?)
/// }
/// # fn main() -> swiglu::Result<()> {
/// let g = CudaGlu::new(0)?;
/// let x = upload(&g, &[swiglu::bf16::ONE; 8])?;
/// assert_eq!(x.len(), 8);
/// # Ok(())
/// # }
/// ```
pub trait CudaElement: Element + DeviceRepr + ValidAsZeroBits {}
impl<T: Element + DeviceRepr + ValidAsZeroBits> CudaElement for T {}

/// Why CUDA cannot be used on this machine, or `None` if it can be tried.
///
/// Checks, in order: kernels embedded at build time, the driver library
/// (`libcuda`), at least one device, cuBLAS. Never panics.
///
/// ```
/// use swiglu::cuda::{unavailable_reason, KERNELS_BUILT};
/// match unavailable_reason() {
///     None => println!("CUDA can be tried"),
///     Some(why) => println!("CPU only: {why}"),
/// }
/// // A build without embedded kernels can never use CUDA.
/// if !KERNELS_BUILT {
///     assert!(unavailable_reason().unwrap().starts_with("kernels not built"));
/// }
/// ```
pub fn unavailable_reason() -> Option<String> {
    if !embedded::KERNELS_BUILT {
        return Some(format!(
            "kernels not built: {}",
            embedded::KERNELS_MISSING_REASON
        ));
    }
    // SAFETY: `is_culib_present` only tries to dlopen the library by name.
    // (With `candle-cuda`, candle's cudarc links libcuda at build time and
    // cudarc has no `is_culib_present`.)
    #[cfg(not(feature = "candle-cuda"))]
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Some("NVIDIA driver library (libcuda) not found".into());
    }
    match CudaContext::device_count() {
        Ok(0) => return Some("no CUDA device".into()),
        Ok(_) => {}
        Err(e) => return Some(format!("CUDA driver error while counting devices: {e:?}")),
    }
    // SAFETY: as above, a dlopen probe.
    #[cfg(not(feature = "candle-cuda"))]
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Some("cuBLAS library (libcublas) not found".into());
    }
    None
}

/// The kernels of the GPU training path ([`CudaGlu::set_training_kernels`]).
///
/// Measured on the H200 (2026-11-28, bf16, K = 4096, N = 11008, training
/// step = `forward_train` + `backward_into`): [`TrainingKernels::Fused`] was
/// correct but slower than [`TrainingKernels::Cublas`] (0.90–0.99x with saved
/// pre-activations, 0.92–0.97x of the cuBLAS recompute), likely because its
/// epilogues store `[M, 2N]` straight from the accumulator fragments while the
/// tensor cores wait; hence the cuBLAS-based default. Session 16
/// (2026-11-30, two runs, M = 512 / 2048 / 8192): the Fused PreActivations
/// step at 0.78–1.00x of the cuBLAS-based one, FusedStaged at 0.80–1.00x;
/// the best step of this crate 1.02–1.08x over [`TrainingKernels::Eager`],
/// short of the ≥ 1.10x target.
///
/// ```no_run
/// # fn main() -> swiglu::Result<()> {
/// use swiglu::cuda::{CudaGlu, TrainingKernels};
/// let g = CudaGlu::new(0)?;
/// assert_eq!(g.training_kernels(), TrainingKernels::default()); // Cublas
/// // The fused Hopper training kernels, opt-in (compute capability 9.0):
/// g.set_training_kernels(TrainingKernels::FusedStaged);
/// // What an eager framework runs, as a baseline for benchmarks:
/// g.set_training_kernels(TrainingKernels::Eager);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum TrainingKernels {
    /// cuBLAS GEMMs for the pre-activations, `act_and_mul`, `glu_bwd` for the
    /// gate gradients, cuBLAS GEMMs for dX, dW, db. The default.
    #[default]
    Cublas = 0,
    /// The Hopper training kernels with direct-store epilogues: one launch
    /// writes `out` and the pre-activations ([`SaveMode::PreActivations`]
    /// forward, `fused_glu_wgmma_pre_*`); one recomputes them and writes the
    /// gate gradients ([`SaveMode::Recompute`] backward,
    /// `fused_glu_wgmma_dgu_*`). Ran and passed on an H200. Since session 5
    /// the backward's GEMMs run on the same tile loop too: dX as one pass
    /// over both projections (`fused_glu_wgmma_dx*`, K a multiple of 16) and
    /// both weight gradients in one launch (`fused_glu_wgmma_dw*`, A read
    /// transposed); those two passed on the H200 in session 16, at 783–787
    /// (dX) and 727–767 (dW) TFLOP/s alone. The bias gradients stay cuBLAS
    /// reductions.
    ///
    /// [`SaveMode::PreActivations`]: crate::cpu::SaveMode::PreActivations
    /// [`SaveMode::Recompute`]: crate::cpu::SaveMode::Recompute
    Fused = 1,
    /// As [`TrainingKernels::Fused`], with staged epilogues: the
    /// PreActivations forward stages `out` and the pre-activations through
    /// shared memory and stores them with TMA (`fused_glu_wgmma_prestaged_*`);
    /// the Recompute backward loads `dOut` into shared memory with coalesced
    /// 16-byte loads and stores dGate | dUp with TMA
    /// (`fused_glu_wgmma_dgustaged_*`, when `dOut` is 16-byte aligned).
    /// Passed on the H200 in session 16 (racecheck clean); its
    /// PreActivations step ran at 0.80–1.00x of the cuBLAS-based one.
    FusedStaged = 2,
    /// The unfused baseline: what an eager framework runs for
    /// `act(x·Wg + bg) ⊙ (x·Wu + bu)` and its autograd backward, one kernel
    /// per operation. Forward: two cuBLAS GEMMs (bias included, like
    /// `addmm`), an activation kernel, a multiply kernel; with
    /// [`SaveMode::PreActivations`] it keeps the pre-activations **and**
    /// `act(g)` (`3·M·N` elements, what autograd saves for the activation
    /// and the multiply), with [`SaveMode::Recompute`] nothing (the backward
    /// recomputes them, like activation checkpointing). Backward: separate
    /// kernels for `dOut ⊙ u`, `dOut ⊙ act(g)` and the activation's
    /// backward, then the same cuBLAS GEMMs as [`TrainingKernels::Cublas`]
    /// (dX as two GEMMs, the second accumulating, where a framework would
    /// add two products in a third kernel). It is the reference of the
    /// training benchmark, not a path to train with. Passed on the H200 in
    /// session 16.
    ///
    /// [`SaveMode::PreActivations`]: crate::cpu::SaveMode::PreActivations
    /// [`SaveMode::Recompute`]: crate::cpu::SaveMode::Recompute
    Eager = 3,
}

/// A handle to one GPU: context, stream, kernel modules and cuBLAS.
///
/// `Send + Sync`: several threads may share one `CudaGlu`; launches are
/// serialised on its stream.
///
/// ```no_run
/// # fn main() -> swiglu::Result<()> {
/// use swiglu::cuda::{CudaGlu, Path};
/// use swiglu::{bf16, Activation, GluWeights, WeightLayout};
/// let g = CudaGlu::new(0)?;
/// let (major, minor) = g.compute_capability();
/// println!("{} (sm_{major}{minor}, {} SMs)", g.device_name()?, g.sm_count());
///
/// // Host slices in, host Vec out (see `forward` for device buffers).
/// let (m, k, n) = (16, 64, 128);
/// let x = vec![bf16::from_f32(0.5); m * k];
/// let wg = vec![bf16::from_f32(0.01); n * k];
/// let wu = vec![bf16::from_f32(0.02); n * k];
/// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK)?;
/// let (out, ran) = g.forward_host(&x, &[m, k], &w, Activation::Silu, Path::Auto)?;
/// assert_eq!(out.len(), m * n);
/// println!("ran {}", ran.name());
/// # Ok(())
/// # }
/// ```
pub struct CudaGlu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    cc: (i32, i32),
    sm_count: u32,
    /// Dynamic shared memory a block may opt into
    /// (`CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN`): picks the
    /// decode kernel's configurations.
    smem_optin: u32,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    /// Loaded kernels, each with the dynamic shared memory limit raised so
    /// far ([`CudaGlu::function_with_smem`]; 0 while at the 48 KiB default).
    functions: Mutex<HashMap<String, (CudaFunction, u32)>>,
    /// [`TrainingKernels`] as its `u8` discriminant.
    training_kernels: std::sync::atomic::AtomicU8,
    /// [`CudaGlu::set_allow_tf32`].
    allow_tf32: std::sync::atomic::AtomicBool,
    /// The decode kernel's split-K partial sums and tickets, allocated on
    /// first need and reused by every later launch on `stream`.
    skinny_scratch: Mutex<Option<scratch::SplitScratch>>,
    /// The stream-K decode kernel's partial sums and tile counters
    /// ([`Path::FusedSkinnyStreamK`]), allocated on first need.
    skinny_sk_scratch: Mutex<Option<scratch::SplitScratch>>,
    /// Resident blocks per SM of each stream-K decode kernel (by name),
    /// asked of the driver on first need.
    skinny_sk_capacity: Mutex<HashMap<String, usize>>,
    /// The Hopper forward's tail-split partial sums and tile counters
    /// ([`Path::FusedWgmmaTailSplit`]), allocated on first need.
    wgmma_split_scratch: Mutex<Option<scratch::SplitScratch>>,
    /// How many two-CTA clusters of the Hopper cluster kernel
    /// ([`Path::FusedWgmmaCluster`]) can be resident at once
    /// (`cuOccupancyMaxActiveClusters`), asked on its first launch.
    wgmma_clusters: std::sync::OnceLock<usize>,
    /// [`CudaGlu::set_autotune`].
    autotune: std::sync::atomic::AtomicBool,
    /// The autotuner's decisions, per problem class.
    tuned: Mutex<HashMap<autotune::TuneKey, TunedPath>>,
    /// Held while a problem class is being timed (one at a time).
    tune_lock: Mutex<()>,
    /// [`CudaGlu::set_stage_timing`].
    stage_timing: std::sync::atomic::AtomicBool,
    /// The stage marks recorded while stage timing is on.
    timeline: Mutex<timeline::Timeline>,
}

// The documented `Send + Sync` promise, checked at compile time.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<CudaGlu>();
};

impl std::fmt::Debug for CudaGlu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaGlu")
            .field("ordinal", &self.ctx.ordinal())
            .field("compute_capability", &self.cc)
            .field("sm_count", &self.sm_count)
            .finish()
    }
}

impl CudaGlu {
    /// Opens device `ordinal` with its own new stream.
    ///
    /// Returns [`GluError::CudaUnavailable`] when the driver, a device, cuBLAS
    /// or the embedded kernels are missing.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, Path};
    /// use swiglu::{cpu, Activation, GluError, GluWeights, WeightLayout};
    /// let (k, n) = (32, 16);
    /// let (wg, wu) = (vec![0.1f32; k * n], vec![0.2f32; k * n]);
    /// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK)?;
    /// let x = vec![1.0f32; 4 * k];
    /// // Use the GPU when there is one, else the CPU path.
    /// let out = match CudaGlu::new(0) {
    ///     Ok(g) => g.forward_host(&x, &[4, k], &w, Activation::Silu, Path::Auto)?.0,
    ///     Err(GluError::CudaUnavailable(why)) => {
    ///         eprintln!("CPU fallback: {why}");
    ///         cpu::forward_alloc(&x, &[4, k], &w, Activation::Silu)?
    ///     }
    ///     Err(e) => return Err(e),
    /// };
    /// assert_eq!(out.len(), 4 * n);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(ordinal: usize) -> Result<Self> {
        if let Some(why) = unavailable_reason() {
            return Err(GluError::CudaUnavailable(why));
        }
        let count = CudaContext::device_count()? as usize;
        if ordinal >= count {
            return Err(GluError::CudaUnavailable(format!(
                "device {ordinal} requested, {count} present"
            )));
        }
        let ctx = CudaContext::new(ordinal)?;
        let stream = ctx.new_stream()?;
        Self::with_stream(stream)
    }

    /// Runs everything on a caller-provided stream (and its context).
    ///
    /// Returns [`GluError::CudaUnavailable`] as [`CudaGlu::new`] does, and
    /// also for a device below compute capability 8.0.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use cudarc::driver::CudaContext;
    /// use swiglu::cuda::CudaGlu;
    /// let ctx = CudaContext::new(0)?;
    /// let stream = ctx.new_stream()?; // shared with the rest of the program
    /// let g = CudaGlu::with_stream(stream.clone())?;
    /// assert!(std::sync::Arc::ptr_eq(g.stream(), &stream));
    /// assert!(std::sync::Arc::ptr_eq(g.context(), &ctx));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_stream(stream: Arc<CudaStream>) -> Result<Self> {
        if let Some(why) = unavailable_reason() {
            return Err(GluError::CudaUnavailable(why));
        }
        let ctx = stream.context().clone();
        let cc = ctx.compute_capability()?;
        if cc.0 < 8 {
            return Err(GluError::CudaUnavailable(format!(
                "compute capability {}.{} is below the 8.0 the kernels need",
                cc.0, cc.1
            )));
        }
        let sm_count = ctx.attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )? as u32;
        let smem_optin = ctx.attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
        )? as u32;
        let blas = CudaBlas::new(stream.clone())?;
        Ok(Self {
            ctx,
            stream,
            blas,
            cc,
            sm_count,
            smem_optin,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            training_kernels: std::sync::atomic::AtomicU8::new(TrainingKernels::Cublas as u8),
            allow_tf32: std::sync::atomic::AtomicBool::new(false),
            skinny_scratch: Mutex::new(None),
            skinny_sk_scratch: Mutex::new(None),
            skinny_sk_capacity: Mutex::new(HashMap::new()),
            wgmma_split_scratch: Mutex::new(None),
            wgmma_clusters: std::sync::OnceLock::new(),
            autotune: std::sync::atomic::AtomicBool::new(autotune::default_from_env()),
            tuned: Mutex::new(HashMap::new()),
            tune_lock: Mutex::new(()),
            stage_timing: std::sync::atomic::AtomicBool::new(false),
            timeline: Mutex::new(timeline::Timeline::default()),
        })
    }

    /// Chooses the kernels [`CudaGlu::forward_train`] and
    /// [`CudaGlu::backward_into`] use ([`TrainingKernels::Cublas`] by
    /// default). The fused choices run the Hopper kernel's training variants
    /// wherever the Hopper kernel can run (compute capability 9.0, bf16/f16,
    /// K and N multiples of 8, aligned buffers, M > 32) and the cuBLAS-based
    /// path elsewhere; [`TrainingKernels::Eager`] is the unfused baseline.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, TrainingKernels};
    /// let g = CudaGlu::new(0)?;
    /// g.set_training_kernels(TrainingKernels::Fused); // opt in
    /// assert_eq!(g.training_kernels(), TrainingKernels::Fused);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_training_kernels(&self, k: TrainingKernels) {
        self.training_kernels
            .store(k as u8, std::sync::atomic::Ordering::Relaxed);
    }
    /// The kernels the training path uses; set with
    /// [`CudaGlu::set_training_kernels`].
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, TrainingKernels};
    /// let g = CudaGlu::new(0)?;
    /// assert_eq!(g.training_kernels(), TrainingKernels::Cublas); // the default
    /// # Ok(())
    /// # }
    /// ```
    pub fn training_kernels(&self) -> TrainingKernels {
        match self
            .training_kernels
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            1 => TrainingKernels::Fused,
            2 => TrainingKernels::FusedStaged,
            3 => TrainingKernels::Eager,
            _ => TrainingKernels::Cublas,
        }
    }

    /// Lets f32 problems use the tf32 tensor cores (10 mantissa bits per
    /// input inside the tensor core, f32 accumulation and output), like
    /// PyTorch's `allow_tf32`: [`Path::Auto`] then takes
    /// [`Path::FusedMmaTf32`] on sm_80..sm_89 where it can (K and N
    /// multiples of 4, 16-byte aligned buffers) and cuBLAS's tf32 GEMMs
    /// (baselines B2/B1, on wgmma) on 9.x and newer; every cuBLAS matrix
    /// product of this handle with f32 inputs (baselines, training)
    /// computes in tf32, the rank-1 bias broadcasts and single-row
    /// bias-gradient sums excepted (they stay exact).
    /// Off by default: f32 then takes exact f32 cuBLAS (or, forced, the
    /// exact [`Path::FusedSimt`]). Forcing [`Path::FusedMmaTf32`] works regardless of
    /// this setting.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, Path};
    /// use swiglu::{DType, WeightLayout};
    /// let g = CudaGlu::new(0)?;
    /// let auto = |g: &CudaGlu| g.auto_path(512, 4096, 11008, DType::F32, WeightLayout::NK, true, false);
    /// assert_eq!(auto(&g), Path::CublasSplit);
    /// g.set_allow_tf32(true);
    /// let want = if g.compute_capability().0 >= 9 { Path::CublasSplit } else { Path::FusedMmaTf32 };
    /// assert_eq!(auto(&g), want);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_allow_tf32(&self, allow: bool) {
        self.allow_tf32
            .store(allow, std::sync::atomic::Ordering::Relaxed);
    }
    /// Whether f32 problems may use the tf32 tensor cores; set with
    /// [`CudaGlu::set_allow_tf32`].
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(0)?;
    /// assert!(!g.allow_tf32()); // off by default: exact f32
    /// g.set_allow_tf32(true);
    /// assert!(g.allow_tf32());
    /// # Ok(())
    /// # }
    /// ```
    pub fn allow_tf32(&self) -> bool {
        self.allow_tf32.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The context.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(1)?;
    /// assert_eq!(g.context().ordinal(), 1); // the device it was opened on
    /// # Ok(())
    /// # }
    /// ```
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
    /// The stream every launch goes to.
    ///
    /// Use it to allocate and copy the buffers passed to the launches.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(0)?;
    /// let x = g.stream().clone_htod(&[1.0f32, 2.0, 3.0])?; // host -> device
    /// assert_eq!(g.stream().clone_dtoh(&x)?, [1.0, 2.0, 3.0]); // and back
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
    /// Compute capability `(major, minor)`.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(0)?;
    /// let (major, minor) = g.compute_capability();
    /// assert!(major >= 8); // `CudaGlu` refuses devices below sm_80
    /// println!("sm_{major}{minor}, Hopper kernels: {}", (major, minor) == (9, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn compute_capability(&self) -> (i32, i32) {
        self.cc
    }
    /// Number of streaming multiprocessors.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(0)?;
    /// assert!(g.sm_count() > 0);
    /// println!("{} SMs", g.sm_count()); // 132 on an H100/H200 SXM
    /// # Ok(())
    /// # }
    /// ```
    pub fn sm_count(&self) -> u32 {
        self.sm_count
    }
    /// Device name as the driver reports it.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(0)?;
    /// let name = g.device_name()?; // e.g. "NVIDIA H200"
    /// assert!(!name.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn device_name(&self) -> Result<String> {
        Ok(self.ctx.name()?)
    }

    /// Looks up (loading its module on first use) the kernel `name` in module `module`.
    pub(crate) fn function(&self, module: &'static str, name: &str) -> Result<CudaFunction> {
        if let Some((f, _)) = self
            .functions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(f.clone());
        }
        let m = {
            let mut mods = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            match mods.get(module) {
                Some(m) => m.clone(),
                None => {
                    let image = embedded::FATBINS
                        .iter()
                        .find(|(n, _)| *n == module)
                        .map(|(_, img)| *img)
                        .ok_or_else(|| {
                            GluError::CudaUnavailable(format!(
                                "kernel module `{module}` not embedded"
                            ))
                        })?;
                    let m = self
                        .ctx
                        .load_module(cudarc::nvrtc::Ptx::from_binary(image.to_vec()))?;
                    mods.insert(module, m.clone());
                    m
                }
            }
        };
        let f = m.load_function(name)?;
        // Two threads may both get here for one kernel: the first handle
        // cached is the one every caller uses, so that an attribute set
        // through it (`function_with_smem`) holds for every launch, whether
        // or not the driver returns the same handle for both lookups.
        let cached = self
            .functions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_insert_with(|| (f, 0))
            .0
            .clone();
        Ok(cached)
    }

    /// Waits for all work on the stream.
    ///
    /// Launches return as soon as they are queued; call this before timing
    /// on the host or reading results other than through the stream.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights, Path};
    /// use swiglu::{bf16, Activation};
    /// let g = CudaGlu::new(0)?;
    /// # let (s, k, n) = (g.stream(), 64, 128);
    /// # let gate_up = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// # let w = DeviceGluWeights::from_gate_up(gate_up.as_view(), k, n)?;
    /// # let x = s.clone_htod(&vec![bf16::ONE; k])?;
    /// # let mut out = s.alloc_zeros::<bf16>(n)?;
    /// let t = std::time::Instant::now();
    /// g.forward(&x, &[1, k], &w, Activation::Silu, &mut out, Path::Auto)?; // queued
    /// g.synchronize()?; // finished
    /// println!("forward took {:?}", t.elapsed());
    /// # Ok(())
    /// # }
    /// ```
    pub fn synchronize(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
    }
}
