//! Training on the device: forward with saved state, and the backward pass.
//!
//! * forward, [`SaveMode::PreActivations`]: the biased pre-activations
//!   `P = [x·Wg + bg | x·Wu + bu]` (`[M, 2N]`, element type `T`) and
//!   `out = act(P_g) ⊙ P_u`; `P` is kept. cuBLAS for `P` (one GEMM for
//!   both halves when the weights are one `[2N, K]` tensor, see
//!   [`DeviceGluWeights::from_gate_up`]), then `act_and_mul`; with fused
//!   [`TrainingKernels`] (off by default: measured slower, see there) and
//!   where the Hopper kernel can take the
//!   problem, one launch of the fused kernel with an epilogue that also
//!   stores `P`.
//! * forward, [`SaveMode::Recompute`]: the fused kernel ([`Path::Auto`]);
//!   nothing is kept.
//! * backward, first stage: `D = [dG | dU]` with `dG = dOut ⊙ u ⊙ act'(g)`
//!   and `dU = dOut ⊙ act(g)` (f32 math). From saved `P`: one elementwise
//!   pass (`glu_bwd`). Recompute mode: cuBLAS recomputes `P`, then
//!   `glu_bwd`; with the fused training kernels on, the Hopper kernel
//!   recomputes `g` and `u` tile by tile and its epilogue writes `D`
//!   directly (no `P` in memory, no separate pass).
//! * [`TrainingKernels::Eager`], the unfused baseline of the training
//!   benchmark: the forward adds an activation kernel and a multiply kernel
//!   to the cuBLAS GEMMs and keeps `act(g)` too; the backward's first stage
//!   is three kernels (`dOut ⊙ u`, `dOut ⊙ act(g)`, the activation's
//!   backward) instead of `glu_bwd`.
//! * backward, second stage:
//!   `dX = dG·Wgᵀ + dU·Wuᵀ` (one GEMM over K = 2N with `[2N, K]` weights,
//!   else two), `dWg = xᵀ·dG`, `dWu = xᵀ·dU` and the bias
//!   gradients (column sums, as GEMMs against a ones vector), all with f32
//!   accumulation and optional accumulation into the existing gradients.

use super::blas::Operand;
use super::elementwise::EltOp;
use super::forward::SKINNY_AUTO_MAX_M;
use super::forward::{is_aligned16, opt_ptr};
use super::hopper::{
    DwProblem, DxProblem, Epilogue, wgmma_dw_eligible, wgmma_dx_eligible, wgmma_eligible,
};
use super::params::{
    EPI_DGU, EPI_DGU_TMA, EPI_OUT_PRE, EPI_OUT_PRE_TMA, GluEltParams, GluParams, GluTrainParams,
};
use super::{CudaElement, CudaGlu, DeviceGluWeights, Path, TrainingKernels};
use crate::cpu::SaveMode;
use crate::error::{GluError, Result};
use crate::types::{Activation, DType, Element, WeightLayout};
use crate::weights::{check_io, checked_len};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
use std::ffi::c_void;

/// What [`CudaGlu::forward_train`] keeps for [`CudaGlu::backward_into`].
///
/// ```no_run
/// # fn main() -> swiglu::Result<()> {
/// use swiglu::cpu::SaveMode;
/// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
/// use swiglu::{Activation, WeightLayout, bf16};
/// let g = CudaGlu::new(0)?;
/// let (m, k, n) = (8192, 4096, 11008);
/// let x = g.stream().alloc_zeros::<bf16>(m * k)?;
/// let wg = g.stream().alloc_zeros::<bf16>(n * k)?;
/// let w = DeviceGluWeights::new(wg.as_view(), wg.as_view(), k, n, WeightLayout::NK)?;
/// let mut out = g.stream().alloc_zeros::<bf16>(m * n)?;
/// let act = Activation::Silu;
/// let kept = g.forward_train(&x, &[m, k], &w, act, SaveMode::PreActivations, &mut out)?;
/// assert_eq!(kept.bytes(), 2 * m * n * 2); // g and u in bf16
/// let light = g.forward_train(&x, &[m, k], &w, act, SaveMode::Recompute, &mut out)?;
/// assert_eq!(light.bytes(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DeviceSaved<T> {
    mode: SaveMode,
    m: usize,
    n: usize,
    /// `[M, 2N]`: each row is the biased gate pre-activations, then the up ones.
    pre: Option<CudaSlice<T>>,
    /// `[M, N]`: `act(g)`, kept only by [`TrainingKernels::Eager`] (as an
    /// eager framework's autograd keeps the activation's output for the
    /// multiply's backward).
    act: Option<CudaSlice<T>>,
}

impl<T: Element> DeviceSaved<T> {
    /// How this state was saved.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cpu::SaveMode;
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// use swiglu::{Activation, bf16};
    /// let g = CudaGlu::new(0)?;
    /// # let (s, m, k, n) = (g.stream(), 4, 64, 128);
    /// # let x = s.clone_htod(&vec![bf16::from_f32(0.5); m * k])?;
    /// # let gu = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// # let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n)?;
    /// # let mut out = s.alloc_zeros::<bf16>(m * n)?;
    /// let mode = SaveMode::Recompute;
    /// let saved = g.forward_train(&x, &[m, k], &w, Activation::Silu, mode, &mut out)?;
    /// assert_eq!(saved.mode(), SaveMode::Recompute);
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(&self) -> SaveMode {
        self.mode
    }
    /// The saved pre-activations, `[M, 2N]` row-major (each row: the biased
    /// gate pre-activations, then the up ones, rounded to `T`), for
    /// [`SaveMode::PreActivations`]; `None` for [`SaveMode::Recompute`].
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cpu::SaveMode;
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// use swiglu::{Activation, bf16};
    /// let g = CudaGlu::new(0)?;
    /// let s = g.stream();
    /// let (m, k, n) = (4, 64, 128);
    /// let x = s.clone_htod(&vec![bf16::from_f32(0.5); m * k])?;
    /// let gu = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n)?;
    /// let mut out = s.alloc_zeros::<bf16>(m * n)?;
    /// let saved = g.forward_train(&x, &[m, k], &w, Activation::Silu, SaveMode::PreActivations, &mut out)?;
    /// assert_eq!(saved.pre_activations().map(|p| p.len()), Some(m * 2 * n));
    /// # Ok(())
    /// # }
    /// ```
    pub fn pre_activations(&self) -> Option<&CudaSlice<T>> {
        self.pre.as_ref()
    }
    /// Device bytes held between the passes: `2·M·N·size_of::<T>()` for
    /// [`SaveMode::PreActivations`] (`3·M·N·size_of::<T>()` with
    /// [`TrainingKernels::Eager`], which also keeps `act(g)`), 0 for
    /// [`SaveMode::Recompute`].
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cpu::SaveMode;
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// use swiglu::{Activation, bf16};
    /// let g = CudaGlu::new(0)?; // default `TrainingKernels::Cublas`
    /// # let (s, m, k, n) = (g.stream(), 4, 64, 128);
    /// # let x = s.clone_htod(&vec![bf16::from_f32(0.5); m * k])?;
    /// # let gu = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// # let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n)?;
    /// # let mut out = s.alloc_zeros::<bf16>(m * n)?;
    /// let (act, pre) = (Activation::Silu, SaveMode::PreActivations);
    /// let saved = g.forward_train(&x, &[m, k], &w, act, pre, &mut out)?;
    /// assert_eq!(saved.bytes(), 2 * m * n * 2); // [M, 2N] bf16
    /// let saved = g.forward_train(&x, &[m, k], &w, act, SaveMode::Recompute, &mut out)?;
    /// assert_eq!(saved.bytes(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn bytes(&self) -> usize {
        let len = |b: &Option<CudaSlice<T>>| b.as_ref().map_or(0, |p| p.len());
        (len(&self.pre) + len(&self.act)) * T::DTYPE.size()
    }
}

/// Device gradients of one gated FFN, in element type `G` (`T` or `f32`).
/// Weight gradients use the weights' layout.
#[derive(Debug)]
pub struct DeviceGrads<G> {
    /// `dL/dx`, `[M, K]`.
    pub dx: CudaSlice<G>,
    /// `dL/dWg`, stored like the gate weight.
    pub d_w_gate: CudaSlice<G>,
    /// `dL/dWu`, stored like the up weight.
    pub d_w_up: CudaSlice<G>,
    /// `dL/dbg`, present iff the gate bias is.
    pub d_b_gate: Option<CudaSlice<G>>,
    /// `dL/dbu`, present iff the up bias is.
    pub d_b_up: Option<CudaSlice<G>>,
}

impl<G: CudaElement> DeviceGrads<G> {
    /// Zeroed gradients for `m` rows and the weights `w`.
    ///
    /// Bias gradients are allocated exactly for the biases `w` has.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights, DeviceGrads};
    /// use swiglu::bf16;
    /// let g = CudaGlu::new(0)?;
    /// let (m, k, n) = (32, 64, 128);
    /// let gu = g.stream().clone_htod(&vec![bf16::ZERO; 2 * n * k])?;
    /// let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n)?;
    /// // f32 gradients for bf16 weights.
    /// let grads = DeviceGrads::<f32>::zeros(&g, m, &w)?;
    /// assert_eq!((grads.dx.len(), grads.d_w_gate.len()), (m * k, k * n));
    /// assert!(grads.d_b_gate.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn zeros<T: CudaElement>(
        glu: &CudaGlu,
        m: usize,
        w: &DeviceGluWeights<'_, T>,
    ) -> Result<Self> {
        let s = &glu.stream;
        let mk = checked_len::<G>("M*K", m, w.k)?;
        let kn = checked_len::<G>("K*N", w.k, w.n)?;
        Ok(Self {
            dx: s.alloc_zeros(mk)?,
            d_w_gate: s.alloc_zeros(kn)?,
            d_w_up: s.alloc_zeros(kn)?,
            d_b_gate: w
                .bias_gate
                .as_ref()
                .map(|_| s.alloc_zeros(w.n))
                .transpose()?,
            d_b_up: w.bias_up.as_ref().map(|_| s.alloc_zeros(w.n)).transpose()?,
        })
    }
}

/// The stage that allocates the saved `[M, 2N]` pre-activations.
const ALLOC_PRE: &str = "allocate [M,2N] pre-activations";

impl CudaGlu {
    /// Forward pass for training: writes `out` like [`CudaGlu::forward`] and
    /// returns what [`CudaGlu::backward_into`] needs.
    ///
    /// Errors as [`CudaGlu::forward`]; see [`CudaGlu::backward_into`] for a
    /// whole training step.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cpu::SaveMode;
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// use swiglu::{bf16, Activation};
    /// let g = CudaGlu::new(0)?;
    /// let s = g.stream();
    /// let (m, k, n) = (64, 256, 512);
    /// let x = s.clone_htod(&vec![bf16::from_f32(0.5); m * k])?;
    /// let gu = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n)?;
    /// let mut out = s.alloc_zeros::<bf16>(m * n)?;
    /// let kept = g.forward_train(&x, &[m, k], &w, Activation::Silu, SaveMode::PreActivations, &mut out)?;
    /// assert_eq!(kept.bytes(), 2 * m * n * 2); // [M, 2N] bf16
    /// let none = g.forward_train(&x, &[m, k], &w, Activation::Silu, SaveMode::Recompute, &mut out)?;
    /// assert_eq!((none.mode(), none.bytes()), (SaveMode::Recompute, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward_train<T: CudaElement, X: DevicePtr<T>, O: DevicePtrMut<T>>(
        &self,
        x: &X,
        x_shape: &[usize],
        w: &DeviceGluWeights<'_, T>,
        act: Activation,
        mode: SaveMode,
        out: &mut O,
    ) -> Result<DeviceSaved<T>> {
        let _end = self.pass_end();
        act.validate()?;
        let m = check_io(x.len(), x_shape, w.k, w.n, out.len())?;
        let n = w.n;
        let eager = self.training_kernels() == TrainingKernels::Eager;
        match mode {
            SaveMode::Recompute => {
                let path = if eager { Path::CublasEager } else { Path::Auto };
                self.mark("fwd: inference forward (Recompute)");
                self.forward(x, x_shape, w, act, out, path)?;
                Ok(DeviceSaved {
                    mode,
                    m,
                    n,
                    pre: None,
                    act: None,
                })
            }
            SaveMode::PreActivations if eager => {
                let pre = self.preactivations(x, m, w)?;
                let act_g = self.eager_act(&pre, m, n, act)?;
                if m > 0 {
                    self.mark("fwd: multiply kernel (eager)");
                    let s = &self.stream;
                    let (pp, _g1) = pre.device_ptr(s);
                    let (ap, _g2) = act_g.device_ptr(s);
                    let (op, _g3) = out.device_ptr_mut(s);
                    let mut e = GluEltParams::empty(m, n, act.code(), act.beta());
                    e.a = ap as *const c_void;
                    e.b = (pp + (n * T::DTYPE.size()) as u64) as *const c_void;
                    e.ld_b = 2 * n as i64;
                    e.out0 = op as *mut c_void;
                    // SAFETY: act_g and out hold [m, n], pre [m, 2n] elements
                    // of T (checked above); no bias (already inside `pre`).
                    unsafe { self.launch_elt(EltOp::MulBias, T::DTYPE, &e) }?;
                }
                Ok(DeviceSaved {
                    mode,
                    m,
                    n,
                    pre: Some(pre),
                    act: Some(act_g),
                })
            }
            SaveMode::PreActivations => {
                let out_ptr = out.device_ptr_mut(&self.stream).0;
                if self.wgmma_train_ok(x, Some(out_ptr), m, w) {
                    let s = &self.stream;
                    self.mark(ALLOC_PRE);
                    // SAFETY: the kernel writes every element of [m, 2n].
                    let mut pre =
                        unsafe { s.alloc::<T>(checked_len::<T>("M*2N", m, n.saturating_mul(2))?) }?;
                    self.mark("fwd: fused forward, out + pre-activations (Hopper)");
                    {
                        let (op, _go) = out.device_ptr_mut(s);
                        let (pp, _gp) = pre.device_ptr_mut(s);
                        let epi = if self.training_kernels() == TrainingKernels::FusedStaged {
                            EPI_OUT_PRE_TMA
                        } else {
                            EPI_OUT_PRE
                        };
                        self.launch_wgmma_train(x, w, act, m, op, pp, 0, epi)?;
                    }
                    return Ok(DeviceSaved {
                        mode,
                        m,
                        n,
                        pre: Some(pre),
                        act: None,
                    });
                }
                let pre = self.preactivations(x, m, w)?;
                if m > 0 {
                    self.mark("fwd: act_and_mul kernel");
                    let s = &self.stream;
                    let (pp, _g1) = pre.device_ptr(s);
                    let (op, _g2) = out.device_ptr_mut(s);
                    let mut e = GluEltParams::empty(m, n, act.code(), act.beta());
                    e.a = pp as *const c_void;
                    e.b = (pp + (n * T::DTYPE.size()) as u64) as *const c_void;
                    e.ld_a = 2 * n as i64;
                    e.ld_b = 2 * n as i64;
                    e.out0 = op as *mut c_void;
                    // SAFETY: `pre` holds [m, 2n] and `out` [m, n] elements of
                    // T (checked above); biases are already inside `pre`.
                    unsafe { self.launch_elt(EltOp::ActAndMul, T::DTYPE, &e) }?;
                }
                Ok(DeviceSaved {
                    mode,
                    m,
                    n,
                    pre: Some(pre),
                    act: None,
                })
            }
        }
    }

    /// `act(g)`, `[m, n]`, from the pre-activations `pre` (`[m, 2n]`): the
    /// separate activation kernel of [`TrainingKernels::Eager`].
    fn eager_act<T: CudaElement>(
        &self,
        pre: &CudaSlice<T>,
        m: usize,
        n: usize,
        act: Activation,
    ) -> Result<CudaSlice<T>> {
        let s = &self.stream;
        self.mark("allocate act(g) [M,N] (eager)");
        // SAFETY: the activation kernel writes all [m, n] elements (m > 0).
        let mut a = unsafe { s.alloc::<T>(checked_len::<T>("M*N", m, n)?) }?;
        if m > 0 {
            self.mark("activation kernel (eager)");
            let (pp, _g1) = pre.device_ptr(s);
            let (ap, _g2) = a.device_ptr_mut(s);
            let mut e = GluEltParams::empty(m, n, act.code(), act.beta());
            e.a = pp as *const c_void;
            e.ld_a = 2 * n as i64;
            e.out0 = ap as *mut c_void;
            // SAFETY: pre holds [m, 2n], `a` [m, n] elements of T.
            unsafe { self.launch_elt(EltOp::ActInplace, T::DTYPE, &e) }?;
        }
        Ok(a)
    }

    /// Whether the Hopper kernel's training variants take this problem: the
    /// fused training kernels are chosen ([`CudaGlu::set_training_kernels`])
    /// and the Hopper kernel can run it (compute capability 9.0, bf16/f16,
    /// K and N multiples of 8, 16-byte aligned buffers, M > 32). Unlike
    /// [`Path::Auto`] this ignores the wave-fill rule: opting in means using
    /// them wherever they run.
    fn wgmma_train_ok<T: CudaElement, X: DevicePtr<T>>(
        &self,
        x: &X,
        out: Option<u64>,
        m: usize,
        w: &DeviceGluWeights<'_, T>,
    ) -> bool {
        if !self.fused_training_for(m) {
            return false;
        }
        let s = &self.stream;
        let mut ptrs = vec![
            x.device_ptr(s).0,
            w.gate.device_ptr(s).0,
            w.up.device_ptr(s).0,
        ];
        ptrs.extend(out);
        wgmma_eligible(self.cc, w.k, w.n, T::DTYPE, w.layout, is_aligned16(&ptrs))
    }

    /// Whether the fused training kernels are chosen and M is large enough
    /// for them (M > 32, as the forward's Hopper kernel; below that the
    /// decode kernel's regime). Each use adds its own eligibility.
    fn fused_training_for(&self, m: usize) -> bool {
        matches!(
            self.training_kernels(),
            TrainingKernels::Fused | TrainingKernels::FusedStaged
        ) && m > SKINNY_AUTO_MAX_M
    }

    /// Whether the backward's dX runs on the Hopper kernel
    /// ([`CudaGlu::launch_wgmma_dx`]): the fused training kernels are chosen,
    /// M > 32 as for the forward, and [`wgmma_dx_eligible`] holds for the
    /// gate gradient buffer at `dgu` and the weights (K a multiple of 16).
    /// dx needs no check: [`DeviceGrads`] owns whole allocations (256-byte
    /// aligned), more than the kernel's 8-byte stores need.
    fn wgmma_dx_ok<T: CudaElement>(&self, dgu: u64, m: usize, w: &DeviceGluWeights<'_, T>) -> bool {
        if !self.fused_training_for(m) {
            return false;
        }
        let s = &self.stream;
        let ptrs = [dgu, w.gate.device_ptr(s).0, w.up.device_ptr(s).0];
        wgmma_dx_eligible(self.cc, w.k, w.n, T::DTYPE, w.layout, is_aligned16(&ptrs))
    }

    /// Whether the backward's weight gradients run on the Hopper kernel
    /// ([`CudaGlu::launch_wgmma_dw`]): the fused training kernels are
    /// chosen, M > 32, and [`wgmma_dw_eligible`] holds for x at `x` and the
    /// gate gradient buffer at `dgu` (the gradients themselves are whole
    /// allocations of [`DeviceGrads`], aligned for any of its stores).
    fn wgmma_dw_ok<T: CudaElement>(
        &self,
        x: u64,
        dgu: u64,
        m: usize,
        w: &DeviceGluWeights<'_, T>,
    ) -> bool {
        self.fused_training_for(m)
            && wgmma_dw_eligible(
                self.cc,
                w.k,
                w.n,
                T::DTYPE,
                w.layout,
                is_aligned16(&[x, dgu]),
            )
    }

    /// One launch of `fused_glu_wgmma_{pre,dgu,prestaged,dgustaged}_*`: `aux`
    /// is `[m, 2n]` of T; `out` (`[m, n]`) for [`EPI_OUT_PRE`] and
    /// [`EPI_OUT_PRE_TMA`], `d_out` (`[m, n]`) for [`EPI_DGU`] and
    /// [`EPI_DGU_TMA`].
    #[allow(clippy::too_many_arguments)]
    fn launch_wgmma_train<T: CudaElement, X: DevicePtr<T>>(
        &self,
        x: &X,
        w: &DeviceGluWeights<'_, T>,
        act: Activation,
        m: usize,
        out: u64,
        aux: u64,
        d_out: u64,
        epi: i32,
    ) -> Result<()> {
        let s = &self.stream;
        let (xp, _gx) = x.device_ptr(s);
        let (wg, _gwg) = w.gate.device_ptr(s);
        let (wu, _gwu) = w.up.device_ptr(s);
        let (bg, _gbg) = opt_ptr(w.bias_gate.as_ref(), s);
        let (bu, _gbu) = opt_ptr(w.bias_up.as_ref(), s);
        let p = GluParams::new([xp, wg, wu, bg, bu, out], (m, w.n, w.k), w.layout, act);
        if epi == EPI_OUT_PRE_TMA {
            return self.launch_wgmma_epi(&p, Epilogue::TrainPreStaged(aux), T::DTYPE, w.layout);
        }
        let t = GluTrainParams {
            d_out: d_out as *const c_void,
            aux: aux as *mut c_void,
            ld_aux: 2 * w.n as i64,
            epi,
            reserved: 0,
        };
        let e = if epi == EPI_DGU_TMA {
            Epilogue::TrainDguStaged(&t)
        } else {
            Epilogue::Train(&t)
        };
        self.launch_wgmma_epi(&p, e, T::DTYPE, w.layout)
    }

    /// `m` ones when `needed`, else nothing: the bias broadcasts and bias
    /// gradients are GEMMs against this vector. Filled on the device by a
    /// stream-ordered memset of 1.0's bit pattern (no host buffer, no copy).
    fn ones_if<T: CudaElement>(&self, needed: bool, m: usize) -> Result<Option<CudaSlice<T>>> {
        use cudarc::driver::sys;
        if !needed {
            return Ok(None);
        }
        // SAFETY: uninitialised device memory, filled by the memset below,
        // which this stream runs before any later use of the buffer.
        let mut ones = unsafe { self.stream.alloc::<T>(m) }?;
        if m == 0 {
            return Ok(Some(ones));
        }
        let one = one_bits(T::DTYPE);
        // The raw driver call below runs in the current context (cudarc's
        // own calls bind it themselves).
        self.ctx.bind_to_thread()?;
        {
            let (p, _guard) = ones.device_ptr_mut(&self.stream);
            let s = self.stream.cu_stream();
            // SAFETY: `p` addresses the `m` elements of `T` allocated just above
            // on this stream's context, each `T::DTYPE.size()` bytes wide, which
            // is the width of the memset chosen here (u16 writes for bf16/f16,
            // u32 for f32), so exactly those `m` elements are written.
            let r = unsafe {
                if T::DTYPE.size() == 2 {
                    sys::cuMemsetD16Async(p, one as u16, m, s)
                } else {
                    sys::cuMemsetD32Async(p, one, m, s)
                }
            };
            r.result()?;
        }
        Ok(Some(ones))
    }

    /// Whether the cuBLAS steps of training treat the weights as one
    /// `[2N, K]` matrix: one GEMM for both pre-activations and one GEMM over
    /// K = 2N for dX, instead of one per projection. Needs weights made with
    /// [`DeviceGluWeights::from_gate_up`]; never for the eager baseline,
    /// which runs the projections separately as unfused code does.
    fn concat_gemms<T: CudaElement>(&self, w: &DeviceGluWeights<'_, T>) -> bool {
        w.concatenated
            && w.layout == WeightLayout::NK
            && self.training_kernels() != TrainingKernels::Eager
    }

    /// `P = [x·Wg + bg | x·Wu + bu]`, `[m, 2n]` row-major: per projection a
    /// bias broadcast (rank-1 GEMM) and a GEMM accumulating onto it, or with
    /// concatenated weights ([`CudaGlu::concat_gemms`]) one `[m, 2n]` GEMM.
    fn preactivations<T: CudaElement, X: DevicePtr<T>>(
        &self,
        x: &X,
        m: usize,
        w: &DeviceGluWeights<'_, T>,
    ) -> Result<CudaSlice<T>> {
        let (k, n) = (w.k, w.n);
        let s = &self.stream;
        self.mark(ALLOC_PRE);
        // SAFETY: every element is written below (bias broadcast or beta = 0 GEMM).
        let mut pre = unsafe { s.alloc::<T>(checked_len::<T>("M*2N", m, n.saturating_mul(2))?) }?;
        if m == 0 {
            return Ok(pre);
        }
        self.mark("pre-activation GEMMs (cuBLAS)");
        let d = T::DTYPE;
        let es = d.size() as u64;
        // Biases are broadcast by a rank-1 GEMM against a ones vector.
        let ones = self.ones_if::<T>(w.bias_gate.is_some() || w.bias_up.is_some(), m)?;
        // One GEMM for both halves needs one beta for both: both biases
        // broadcast first (beta 1) or neither (beta 0).
        let one_gemm = self.concat_gemms(w) && w.bias_gate.is_some() == w.bias_up.is_some();
        {
            let (xp, _gx) = x.device_ptr(s);
            let (pp, _gp) = pre.device_ptr_mut(s);
            let x_op = Operand::rm(xp, d, k);
            let mut beta_all = 0.0;
            let halves = [
                (&w.gate, &w.bias_gate, pp),
                (&w.up, &w.bias_up, pp + n as u64 * es),
            ];
            for (wt, bias, dst) in halves {
                let (wp, _gw) = wt.device_ptr(s);
                let c = Operand::rm(dst, d, 2 * n);
                let beta = match (bias, &ones) {
                    (Some(b), Some(ones)) => {
                        let (op, _go) = ones.device_ptr(s);
                        let (bp, _gb) = b.device_ptr(s);
                        // SAFETY: ones [m,1] · bias [1,n] into the [m, n] half of
                        // `pre` (ld 2n): all within the allocations checked above.
                        unsafe {
                            self.gemm_rm(
                                (m, n, 1),
                                Operand::rm(op, d, 1),
                                Operand::rm(bp, d, n),
                                c,
                                0.0,
                            )
                        }?;
                        1.0
                    }
                    _ => 0.0,
                };
                if one_gemm {
                    beta_all = beta;
                    continue;
                }
                let wop = Operand::weight(wp, d, w.layout, n, k, false);
                // SAFETY: x [m,k], weight [k*n] in its layout, `pre` half [m, n] (ld 2n).
                unsafe { self.gemm_rm((m, n, k), x_op, wop, c, beta) }?;
            }
            if one_gemm {
                let (wp, _gw) = w.gate.device_ptr(s);
                // SAFETY: concatenated weights: `gate` starts one [2n, k]
                // row-major allocation (`up` follows it, DeviceGluWeights::
                // from_gate_up); x [m, k]; `pre` [m, 2n].
                unsafe {
                    self.gemm_rm(
                        (m, 2 * n, k),
                        x_op,
                        Operand::rm(wp, d, k).transposed(),
                        Operand::rm(pp, d, 2 * n),
                        beta_all,
                    )
                }?;
            }
        }
        Ok(pre)
    }

    /// The backward pass: gradients of `L = Σ d_out ⊙ out` into `grads`.
    ///
    /// With `accumulate = false` every gradient is overwritten; with `true`
    /// the weight and bias gradients are added to what `grads` holds (for
    /// micro-batch gradient accumulation); `dx` is always overwritten.
    ///
    /// Errors (nothing launched or written): shape and length checks as in
    /// [`CudaGlu::forward`], [`GluError::SavedMismatch`] for state saved for
    /// another M or N, [`GluError::LengthMismatch`] or
    /// [`GluError::BadShape`] for gradient buffers that do not match the
    /// weights (see [`DeviceGrads::zeros`]).
    ///
    /// A training step on the device, checked against the CPU path:
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cpu::{self, SaveMode};
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights, DeviceGrads};
    /// use swiglu::{Activation, GluWeights, WeightLayout};
    /// let g = CudaGlu::new(0)?;
    /// let s = g.stream();
    /// let (m, k, n) = (16, 64, 32);
    /// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.1).sin()).collect();
    /// let wg: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.3).cos() * 0.1).collect();
    /// let wu: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.7).sin() * 0.1).collect();
    /// let d_out = vec![1.0f32; m * n];
    ///
    /// let (dx, dwg, dwu, dd) = (s.clone_htod(&x)?, s.clone_htod(&wg)?, s.clone_htod(&wu)?, s.clone_htod(&d_out)?);
    /// let w = DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, WeightLayout::NK)?;
    /// let mut out = s.alloc_zeros::<f32>(m * n)?;
    /// let saved = g.forward_train(&dx, &[m, k], &w, Activation::Silu, SaveMode::PreActivations, &mut out)?;
    /// let mut grads = DeviceGrads::<f32>::zeros(&g, m, &w)?;
    /// g.backward_into(&dx, &[m, k], &w, Activation::Silu, &saved, &dd, &mut grads, false)?;
    /// let d_w_gate = s.clone_dtoh(&grads.d_w_gate)?;
    ///
    /// let hw = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK)?;
    /// let mut hout = vec![0.0f32; m * n];
    /// let hs = cpu::forward_train(&x, &[m, k], &hw, Activation::Silu, SaveMode::Recompute, &mut hout)?;
    /// let want = cpu::backward::<f32, f32>(&x, &[m, k], &hw, Activation::Silu, &hs, &d_out)?;
    /// assert!(d_w_gate.iter().zip(&want.d_w_gate).all(|(a, b)| (a - b).abs() <= 1e-3 * (1.0 + b.abs())));
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn backward_into<T: CudaElement, G: CudaElement, X: DevicePtr<T>, D: DevicePtr<T>>(
        &self,
        x: &X,
        x_shape: &[usize],
        w: &DeviceGluWeights<'_, T>,
        act: Activation,
        saved: &DeviceSaved<T>,
        d_out: &D,
        grads: &mut DeviceGrads<G>,
        accumulate: bool,
    ) -> Result<()> {
        let _end = self.pass_end();
        act.validate()?;
        let (k, n) = (w.k, w.n);
        let m = check_io(x.len(), x_shape, k, n, d_out.len())?;
        if saved.m != m || saved.n != n {
            return Err(GluError::SavedMismatch(format!(
                "saved for M={}, N={}, backward called with M={m}, N={n}",
                saved.m, saved.n
            )));
        }
        let kn = k * n;
        let check = |what: &'static str, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(GluError::LengthMismatch {
                    what,
                    shape: vec![want],
                    expected: want,
                    got,
                })
            }
        };
        check("grads.dx", grads.dx.len(), m * k)?;
        check("grads.d_w_gate", grads.d_w_gate.len(), kn)?;
        check("grads.d_w_up", grads.d_w_up.len(), kn)?;
        for (what, b, g) in [
            ("grads.d_b_gate", &w.bias_gate, &grads.d_b_gate),
            ("grads.d_b_up", &w.bias_up, &grads.d_b_up),
        ] {
            match (b.is_some(), g) {
                (true, Some(g)) => check(what, g.len(), n)?,
                (false, None) => {}
                _ => {
                    return Err(GluError::BadShape {
                        what,
                        shape: vec![n],
                        why: "bias gradient present iff the bias is",
                    });
                }
            }
        }
        let d = T::DTYPE;
        let gd = G::DTYPE;
        // cuBLAS (COMPUTE_32F) takes 16-bit inputs to the same type or f32,
        // and f32 to f32 only: other pairs would fail at the first GEMM,
        // after the gradient stage had run. Refuse them before any launch.
        if gd != d && gd != DType::F32 {
            return Err(GluError::Unsupported {
                what: format!(
                    "{} gradients for {} weights (gradients are in the weights' dtype or f32)",
                    gd.name(),
                    d.name()
                ),
                dtype: gd,
                layout: w.layout,
            });
        }
        // Every GEMM dimension and leading dimension below fits cuBLAS's
        // 32-bit ints: checked here, not halfway through the sequence.
        for (what, v) in [("M", m), ("K", k), ("2N", 2 * n)] {
            super::blas::to_c_int(what, v)?;
        }
        let s = &self.stream;
        if m == 0 {
            // No rows: dX is empty, and the weight and bias gradients are
            // sums over no rows: 0, added (nothing to do) or stored.
            if !accumulate {
                s.memset_zeros(&mut grads.d_w_gate)?;
                s.memset_zeros(&mut grads.d_w_up)?;
                for db in [&mut grads.d_b_gate, &mut grads.d_b_up]
                    .into_iter()
                    .flatten()
                {
                    s.memset_zeros(db)?;
                }
            }
            return Ok(());
        }
        let es = d.size() as u64;
        self.mark("bwd: allocate dG|dU [M,2N]");
        // SAFETY: the first stage below (glu_bwd or the fused kernel's
        // gradient epilogue) writes all [m, 2n] elements.
        let mut dgu = unsafe { s.alloc::<T>(m * 2 * n) }?;
        let fused_first_stage = saved.mode == SaveMode::Recompute
            && saved.pre.is_none()
            && d_out.device_ptr(s).0 % 4 == 0
            && self.wgmma_train_ok(x, None, m, w);
        if fused_first_stage {
            let (dp, _g2) = d_out.device_ptr(s);
            let (gp, _g3) = dgu.device_ptr_mut(s);
            // The staged gradient epilogue reads d_out with 16-byte loads.
            let epi = if self.training_kernels() == TrainingKernels::FusedStaged && dp % 16 == 0 {
                EPI_DGU_TMA
            } else {
                EPI_DGU
            };
            self.mark("bwd: dG|dU from a recomputing forward (Hopper)");
            self.launch_wgmma_train(x, w, act, m, 0, gp, dp, epi)?;
        } else {
            let (recomputed, recomputed_act);
            let pre = match (&saved.pre, saved.mode) {
                (Some(p), SaveMode::PreActivations) => p,
                (None, SaveMode::Recompute) => {
                    recomputed = self.preactivations(x, m, w)?;
                    &recomputed
                }
                _ => {
                    return Err(GluError::SavedMismatch(
                        "saved state has no pre-activations".into(),
                    ));
                }
            };
            if self.training_kernels() == TrainingKernels::Eager {
                let act_g = match &saved.act {
                    Some(a) => a,
                    None => {
                        recomputed_act = self.eager_act(pre, m, n, act)?;
                        &recomputed_act
                    }
                };
                self.eager_gate_grads(pre, act_g, d_out, &mut dgu, m, n, act)?;
            } else {
                let (pp, _g1) = pre.device_ptr(s);
                let (dp, _g2) = d_out.device_ptr(s);
                let (gp, _g3) = dgu.device_ptr_mut(s);
                let mut e = GluEltParams::empty(m, n, act.code(), act.beta());
                e.a = pp as *const c_void;
                e.b = (pp + n as u64 * es) as *const c_void;
                e.c = dp as *const c_void;
                e.out0 = gp as *mut c_void;
                e.out1 = (gp + n as u64 * es) as *mut c_void;
                (e.ld_a, e.ld_b, e.ld_out0, e.ld_out1) =
                    (2 * n as i64, 2 * n as i64, 2 * n as i64, 2 * n as i64);
                self.mark("bwd: glu_bwd kernel (dG|dU)");
                // SAFETY: pre and dgu hold [m, 2n], d_out [m, n] elements of T.
                unsafe { self.launch_elt(EltOp::GluBwd, d, &e) }?;
            }
        }
        let (gp, _g3) = dgu.device_ptr(s);

        let (xp, _g4) = x.device_ptr(s);
        let beta_w = if accumulate { 1.0 } else { 0.0 };
        // The bias gradients are GEMMs against a ones vector.
        self.mark("bwd: ones vector (bias gradients) and GEMM setup");
        let ones = self.ones_if::<T>(grads.d_b_gate.is_some() || grads.d_b_up.is_some(), m)?;
        let ones_view = ones.as_ref().map(|o| o.as_view());
        let (onep, _g5) = opt_ptr(ones_view.as_ref(), s);
        let (dxp, _g6) = grads.dx.device_ptr_mut(s);
        // dX = [dG | dU] · [Wg | Wu]ᵀ. With the fused training kernels on
        // Hopper: one pass of the fused kernel's tile loop over both
        // projections (any weight form, rounded once). Else with
        // concatenated weights one GEMM over K = 2N (the [2n, k] storage is
        // exactly [Wg | Wu]ᵀ), else one per projection, the second
        // accumulating.
        let dx_fused = self.wgmma_dx_ok(gp, m, w);
        let dx_one_gemm = !dx_fused && self.concat_gemms(w);
        // Two dX GEMMs into 16-bit gradients would round the first product
        // and again the sum: they accumulate into an f32 temporary instead,
        // narrowed once at the end (as the CPU path and the one-GEMM case).
        // Allocated, and the narrowing kernel loaded, before the first
        // launch that writes a gradient: a failure here leaves them as
        // they were.
        let mut dx_f32 = if !dx_fused && !dx_one_gemm && gd != DType::F32 {
            self.elt_function(EltOp::Narrow, gd)?;
            self.mark("bwd: allocate f32 dX temporary [M,K]");
            // SAFETY: the first dX GEMM below (beta 0) writes all [m, k].
            Some(unsafe { s.alloc::<f32>(m * k) }?)
        } else {
            None
        };
        let (dx32p, _g7) = match dx_f32.as_mut() {
            Some(t) => {
                let (p, g) = t.device_ptr_mut(s);
                (Some(p), Some(g))
            }
            None => (None, None),
        };
        if dx_fused {
            let (wg, _gwg) = w.gate.device_ptr(s);
            let (wu, _gwu) = w.up.device_ptr(s);
            let dp = DxProblem {
                m,
                n,
                k,
                dgu: gp,
                w_gate: wg,
                w_up: wu,
                layout: w.layout,
                dx: dxp,
                dx_f32: gd == DType::F32,
            };
            // gd is d or f32 (checked above); dgu [m, 2n], weights [k*n]
            // each and dx [m, k] of gd were sized above.
            self.mark("bwd: dX (Hopper kernel)");
            self.launch_wgmma_dx(&dp, d)?;
        }
        // [dWg, dWu], after dX: a fused dX launch that fails leaves the
        // (possibly accumulating) weight gradients untouched. With the fused
        // training kernels on Hopper, one pass of the fused kernel's tile
        // loop for both (A read transposed).
        let dw_fused = self.wgmma_dw_ok(xp, gp, m, w);
        if dw_fused {
            let (dwg, _gdwg) = grads.d_w_gate.device_ptr_mut(s);
            let (dwu, _gdwu) = grads.d_w_up.device_ptr_mut(s);
            let dp = DwProblem {
                m,
                n,
                k,
                x: xp,
                dgu: gp,
                layout: w.layout,
                dw_gate: dwg,
                dw_up: dwu,
                dw_f32: gd == DType::F32,
                accumulate,
            };
            // x [m, k], dgu [m, 2n] and both gradients [k*n] of gd (d or
            // f32, checked above) were sized above.
            self.mark("bwd: dW (Hopper kernel)");
            self.launch_wgmma_dw(&dp, d)?;
        }
        let halves = [
            (&w.gate, gp, &mut grads.d_w_gate, grads.d_b_gate.as_mut()),
            (
                &w.up,
                gp + n as u64 * es,
                &mut grads.d_w_up,
                grads.d_b_up.as_mut(),
            ),
        ];
        if dx_one_gemm {
            self.mark("bwd: dX (one cuBLAS GEMM over K=2N)");
            let (wp, _gw) = w.gate.device_ptr(s);
            // SAFETY: dgu [m, 2n]; concatenated weights: `gate` starts one
            // [2n, k] row-major allocation (DeviceGluWeights::from_gate_up);
            // dx [m, k] (length-checked above).
            unsafe {
                self.gemm_rm(
                    (m, k, 2 * n),
                    Operand::rm(gp, d, 2 * n),
                    Operand::rm(wp, d, k),
                    Operand::rm(dxp, gd, k),
                    0.0,
                )
            }?;
        }
        // What is left per projection: the dX GEMMs (unless fused or one
        // GEMM), the dW GEMM (unless fused) and the bias gradient. Buffers a
        // step does not use are not touched: in cudarc's multi-stream mode
        // every access records and waits on events.
        let dx_per_projection = !dx_fused && !dx_one_gemm;
        for (i, (wt, dh, dw, db)) in halves.into_iter().enumerate() {
            // One stage per GEMM, named by projection.
            let stage = |gate: &'static str, up: &'static str| if i == 0 { gate } else { up };
            let dh_op = Operand::rm(dh, d, 2 * n);
            let x_op = Operand::rm(xp, d, k);
            if dx_per_projection {
                self.mark(stage(
                    "bwd: gate dX GEMM (cuBLAS)",
                    "bwd: up dX GEMM (cuBLAS)",
                ));
                let (wp, _gw) = wt.device_ptr(s);
                // dX (+)= dH · Wᵀ
                let wt_op = Operand::weight(wp, d, w.layout, n, k, true);
                // dX, or its f32 temporary.
                let (ptr, dtype) = dx32p.map_or((dxp, gd), |p| (p, DType::F32));
                let dx_op = Operand::rm(ptr, dtype, k);
                // SAFETY: dh [m, n] (ld 2n), W [k*n], dX or its f32
                // temporary [m, k]: sized above.
                unsafe {
                    self.gemm_rm(
                        (m, k, n),
                        dh_op,
                        wt_op,
                        dx_op,
                        if i == 0 { 0.0 } else { 1.0 },
                    )
                }?;
            }
            if !dw_fused {
                self.mark(stage(
                    "bwd: gate dW GEMM (cuBLAS)",
                    "bwd: up dW GEMM (cuBLAS)",
                ));
                let (dwp, _gdw) = dw.device_ptr_mut(s);
                let (dims, a, b, ld) = match w.layout {
                    // dW [n, k] = dHᵀ · x
                    WeightLayout::NK => ((n, k, m), dh_op.transposed(), x_op, k),
                    // dW [k, n] = xᵀ · dH
                    WeightLayout::KN => ((k, n, m), x_op.transposed(), dh_op, n),
                };
                let dw_op = Operand::rm(dwp, gd, ld);
                // SAFETY: x [m, k], dh [m, n] (ld 2n), dW [k*n] of gd: sized
                // above.
                unsafe { self.gemm_rm(dims, a, b, dw_op, beta_w) }?;
            }
            if let Some(db) = db {
                self.mark(stage(
                    "bwd: gate bias gradient (cuBLAS)",
                    "bwd: up bias gradient (cuBLAS)",
                ));
                let (dbp, _gdb) = db.device_ptr_mut(s);
                // db [1, n] = onesᵀ [1, m] · dH [m, n]
                let ones_op = Operand::rm(onep, d, m);
                let db_op = Operand::rm(dbp, gd, n);
                // SAFETY: ones [m], dh [m, n] (ld 2n), db [n] of gd: sized
                // above.
                unsafe { self.gemm_rm((1, n, m), ones_op, dh_op, db_op, beta_w) }?;
            }
        }
        if let Some(p) = dx32p {
            self.mark("bwd: narrow f32 dX");
            let mut e = GluEltParams::empty(m, k, 0, 1.0);
            e.a = p as *const c_void;
            e.out0 = dxp as *mut c_void;
            (e.ld_a, e.ld_out0) = (k as i64, k as i64);
            // SAFETY: the f32 temporary and dx both hold [m, k] (dx
            // length-checked above); gd is f16 or bf16 here, the kernel's
            // output type; they do not overlap.
            unsafe { self.launch_elt(EltOp::Narrow, gd, &e) }?;
        }
        Ok(())
    }

    /// The eager first stage of the backward, three separate kernels:
    /// `t = dOut ⊙ u`, `dU = dOut ⊙ act(g)`, `dG = t ⊙ act'(g)`, into
    /// `dgu = [dG | dU]` (`[m, 2n]`). Only for [`TrainingKernels::Eager`].
    #[allow(clippy::too_many_arguments)]
    fn eager_gate_grads<T: CudaElement, D: DevicePtr<T>>(
        &self,
        pre: &CudaSlice<T>,
        act_g: &CudaSlice<T>,
        d_out: &D,
        dgu: &mut CudaSlice<T>,
        m: usize,
        n: usize,
        act: Activation,
    ) -> Result<()> {
        let s = &self.stream;
        let es = T::DTYPE.size() as u64;
        let ld2 = 2 * n as i64;
        self.mark("bwd: allocate t [M,N] (eager)");
        // SAFETY: the multiply kernel below writes all [m, n] elements.
        let mut t = unsafe { s.alloc::<T>(checked_len::<T>("M*N", m, n)?) }?;
        self.mark("bwd: three gradient kernels (eager)");
        let (pp, _g1) = pre.device_ptr(s);
        let (ap, _g2) = act_g.device_ptr(s);
        let (dp, _g3) = d_out.device_ptr(s);
        let (tp, _g4) = t.device_ptr_mut(s);
        let (gp, _g5) = dgu.device_ptr_mut(s);
        let base = GluEltParams::empty(m, n, act.code(), act.beta());
        // t = dOut ⊙ u
        let mut e = base;
        e.a = dp as *const c_void;
        e.b = (pp + n as u64 * es) as *const c_void;
        e.ld_b = ld2;
        e.out0 = tp as *mut c_void;
        // SAFETY: d_out and t hold [m, n], pre [m, 2n] elements of T.
        unsafe { self.launch_elt(EltOp::MulBias, T::DTYPE, &e) }?;
        // dU = dOut ⊙ act(g)
        let mut e = base;
        e.a = dp as *const c_void;
        e.b = ap as *const c_void;
        e.out0 = (gp + n as u64 * es) as *mut c_void;
        e.ld_out0 = ld2;
        // SAFETY: d_out and act_g hold [m, n], dgu [m, 2n] elements of T.
        unsafe { self.launch_elt(EltOp::MulBias, T::DTYPE, &e) }?;
        // dG = t ⊙ act'(g)
        let mut e = base;
        e.a = pp as *const c_void;
        e.ld_a = ld2;
        e.b = tp as *const c_void;
        e.out0 = gp as *mut c_void;
        e.ld_out0 = ld2;
        // SAFETY: pre and dgu hold [m, 2n], t [m, n] elements of T.
        unsafe { self.launch_elt(EltOp::ActBwd, T::DTYPE, &e) }
    }
}

/// The bit pattern of 1.0 in `dtype` (as the low bits of a u32).
fn one_bits(dtype: DType) -> u32 {
    match dtype {
        DType::F32 => 1.0f32.to_bits(),
        DType::BF16 => u32::from(half::bf16::ONE.to_bits()),
        DType::F16 => u32::from(half::f16::ONE.to_bits()),
    }
}

#[cfg(test)]
mod tests {
    use super::one_bits;
    use crate::types::DType;
    use crate::{bf16, f16};

    /// The memset patterns of `ones_if` are 1.0 in each dtype.
    #[test]
    fn one_bits_are_one() {
        assert_eq!(f32::from_bits(one_bits(DType::F32)), 1.0);
        assert_eq!(bf16::from_bits(one_bits(DType::BF16) as u16).to_f32(), 1.0);
        assert_eq!(f16::from_bits(one_bits(DType::F16) as u16).to_f32(), 1.0);
        assert!(one_bits(DType::BF16) <= 0xffff && one_bits(DType::F16) <= 0xffff);
    }
}
