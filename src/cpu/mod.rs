//! The CPU path: a fused, blocked, multi-threaded forward pass, an unfused
//! baseline on the same GEMM engine, and the backward pass.
//!
//! This is both the working fallback on machines without a GPU and the
//! oracle the CUDA kernels are tested against, so it is exact in the sense
//! the whole crate uses: products accumulate in f32 (the [`gemm`] crate's
//! f32 kernels), bias, activation and the gating product are applied in f32,
//! and the output is rounded to `T` once.
//!
//! **Fused forward.** The `[M, N]` output is split into tiles of up to 512
//! rows (balanced row blocks) by a column width chosen so that a tile holds
//! about 512 × 64 elements (wider for small M) while every thread still gets
//! several tiles. Each tile is one rayon task: two single-threaded GEMMs
//! compute the matching `x·Wg` and `x·Wu` tiles into task-local f32 buffers
//! (about 2 × 128 KiB), then bias + `act(g)·u` is
//! applied and the tile is rounded into `out`. The `[M, 2N]` intermediate is
//! never materialised. f32 inputs are read in place, weights in either
//! layout (an `[N, K]` matrix is just a transposed stride pattern); f16/bf16
//! `x` and weights are widened to f32 once per call (an `(M·K + 2·K·N)·4`-byte
//! temporary), since every row block meets every column block.
//!
//! All functions validate their arguments and return a [`GluError`] instead
//! of panicking; a call that fails writes nothing to its outputs. `M = 0` is
//! valid and does nothing.
//!
//! ```
//! use swiglu::{cpu, Activation, GluWeights, WeightLayout};
//! let (k, n) = (8, 4);
//! let wg: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.37).sin()).collect();
//! let wu: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
//! let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK).unwrap();
//! let x = vec![0.5f32; 2 * 3 * k]; // [B=2, S=3, K]
//! let out = cpu::forward_alloc(&x, &[2, 3, k], &w, Activation::Silu).unwrap();
//! assert_eq!(out.len(), 2 * 3 * n);
//!
//! let mut out2 = vec![0.0f32; out.len()];
//! cpu::unfused_forward(&x, &[2, 3, k], &w, Activation::Silu, &mut out2).unwrap();
//! assert!(out.iter().zip(&out2).all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + a.abs())));
//! ```

mod blas;
mod fused;
mod train;

pub use train::{Grads, SaveMode, Saved};

#[cfg(doc)]
use crate::error::GluError;
use crate::error::Result;
use crate::types::{Activation, Element};
use crate::weights::{GluWeights, check_io, checked_len, rows_of};

/// Validates a forward call and returns M.
fn check_forward<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    out_len: usize,
) -> Result<usize> {
    act.validate()?;
    check_io(x.len(), x_shape, w.k(), w.n(), out_len)
}

/// The fused forward pass `out = act(x·Wg + bg) ⊙ (x·Wu + bu)`.
///
/// `x` has shape `x_shape = [.., K]` (row-major; the leading dims are
/// flattened into M rows) and `out` must hold `M·N` elements (shape
/// `[.., N]`). See the [module docs](self) for how the work is split.
///
/// # Errors
///
/// [`GluError::BadShape`], [`GluError::DimMismatch`],
/// [`GluError::LengthMismatch`] or [`GluError::Overflow`] if the shapes and
/// lengths disagree; [`GluError::BadActivation`] for a non-finite Swish β.
/// On error `out` is untouched.
///
/// # Examples
///
/// ```
/// use swiglu::{cpu, reference, Activation, GluError, GluWeights, WeightLayout};
/// let (m, k, n) = (5, 32, 16);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.21).sin()).collect();
/// let wg: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.13).cos() * 0.2).collect();
/// let wu: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.07).sin() * 0.2).collect();
/// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK)?;
///
/// let mut out = vec![0.0f32; m * n];
/// cpu::forward(&x, &[m, k], &w, Activation::Silu, &mut out)?;
/// let want = reference::forward_f64(&x, &[m, k], &w, Activation::Silu)?;
/// let got: Vec<f64> = out.iter().map(|&v| v as f64).collect();
/// assert!(reference::rel_err(&got, &want) < 1e-5);
///
/// // An output of the wrong length is an error, and nothing is written.
/// let mut short = vec![0.0f32; m * n - 1];
/// let err = cpu::forward(&x, &[m, k], &w, Activation::Silu, &mut short).unwrap_err();
/// assert!(matches!(err, GluError::LengthMismatch { what: "out", .. }));
/// assert!(short.iter().all(|&v| v == 0.0));
/// # Ok::<(), GluError>(())
/// ```
pub fn forward<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    out: &mut [T],
) -> Result<()> {
    let m = check_forward(x, x_shape, w, act, out.len())?;
    fused::fused(x, m, w, act, out, None);
    Ok(())
}

/// [`forward`] into a freshly allocated `Vec` of `M·N` elements.
///
/// # Errors
///
/// As [`forward`].
///
/// # Examples
///
/// ```
/// use swiglu::{bf16, cpu, Activation, GluWeights, WeightLayout};
/// let (k, n) = (8, 4);
/// let w16: Vec<bf16> = (0..k * n).map(|i| bf16::from_f32(i as f32 * 0.01)).collect();
/// let w = GluWeights::new(&w16, &w16, k, n, WeightLayout::KN)?;
/// let x = vec![bf16::ONE; 2 * 3 * k]; // [B = 2, S = 3, K]
/// let out = cpu::forward_alloc(&x, &[2, 3, k], &w, Activation::Relu)?;
/// assert_eq!(out.len(), 2 * 3 * n); // [B, S, N]
/// // M = 0 is valid and gives an empty output.
/// assert!(cpu::forward_alloc(&x[..0], &[0, k], &w, Activation::Relu)?.is_empty());
/// # Ok::<(), swiglu::GluError>(())
/// ```
pub fn forward_alloc<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
) -> Result<Vec<T>> {
    let m = rows_of(x_shape, w.k())?;
    let mn = checked_len::<T>("M*N", m, w.n())?;
    // Validate before allocating, so a bad shape never triggers a huge allocation.
    check_forward(x, x_shape, w, act, mn)?;
    let mut out = vec![T::default(); mn];
    forward(x, x_shape, w, act, &mut out)?;
    Ok(out)
}

/// The unfused baseline, on the same GEMM engine as [`forward`]: two full
/// multi-threaded GEMMs into `[M, N]` f32 buffers (`x·Wg` and `x·Wu`, `2·M·N·4`
/// bytes), then a separate bias + activation + multiply pass.
///
/// Same arithmetic as [`forward`] (f32 accumulation, the same epilogue, one
/// rounding); the two can differ in the last bits only because `gemm` blocks
/// and orders the sums differently for a whole matrix than for a tile. It
/// exists as the comparison point for benchmarks and the CLI.
///
/// # Errors
///
/// As [`forward`]; on error `out` is untouched.
///
/// # Examples
///
/// ```
/// use swiglu::{cpu, Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (4, 16, 8);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.3).cos()).collect();
/// let wg: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.17).sin() * 0.25).collect();
/// let w = GluWeights::new(&wg, &wg, k, n, WeightLayout::KN)?;
/// let mut fused = vec![0.0f32; m * n];
/// let mut unfused = vec![0.0f32; m * n];
/// cpu::forward(&x, &[m, k], &w, Activation::Sigmoid, &mut fused)?;
/// cpu::unfused_forward(&x, &[m, k], &w, Activation::Sigmoid, &mut unfused)?;
/// // Same arithmetic; at most last-bit differences from the summation order.
/// assert!(fused.iter().zip(&unfused).all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + a.abs())));
/// # Ok::<(), swiglu::GluError>(())
/// ```
pub fn unfused_forward<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    out: &mut [T],
) -> Result<()> {
    let m = check_forward(x, x_shape, w, act, out.len())?;
    fused::unfused(x, m, w, act, out);
    Ok(())
}

/// Peak extra memory, in bytes, the two forward paths need for an `[M, N]`
/// output with reduction dim `K` and `T`-typed inputs, on the current rayon
/// pool: `(fused, unfused)`.
///
/// The fused figure is the per-task f32 gate and up tiles of every rayon
/// thread; the unfused figure is its two `[M, N]` f32 intermediates. For
/// f16/bf16 both add the widened f32 copies of `x` and the weights. Buffers
/// internal to `gemm` (its packing panels, the same for both) are not
/// counted. Saturates instead of overflowing.
///
/// # Examples
///
/// ```
/// use swiglu::{bf16, cpu};
/// let (m, k, n) = (8192, 4096, 11008);
/// let (fused, unfused) = cpu::working_set_bytes::<f32>(m, k, n);
/// assert_eq!(unfused, 2 * m * n * 4); // the two [M, N] f32 intermediates
/// assert!(fused < unfused); // per-thread tiles only
/// // bf16 inputs add their widened f32 copies to both.
/// let (fused16, unfused16) = cpu::working_set_bytes::<bf16>(m, k, n);
/// assert_eq!(unfused16 - unfused, (m * k + 2 * k * n) * 4);
/// assert_eq!(fused16 - fused, (m * k + 2 * k * n) * 4);
/// ```
pub fn working_set_bytes<T: Element>(m: usize, k: usize, n: usize) -> (usize, usize) {
    let fused = fused::working_set_bytes(m, n, k, T::DTYPE.size());
    let widen = if T::DTYPE.size() == 4 {
        0
    } else {
        m.saturating_mul(k)
            .saturating_add(k.saturating_mul(n).saturating_mul(2))
    };
    let unfused = m
        .saturating_mul(n)
        .saturating_mul(2)
        .saturating_add(widen)
        .saturating_mul(4);
    (fused, unfused)
}

/// The forward pass for training: computes `out` exactly like [`forward`]
/// and returns what [`backward`] needs, according to `mode`.
///
/// With [`SaveMode::PreActivations`] the biased f32 pre-activations are
/// written by the fused kernel as it goes (no extra pass);
/// [`Saved::bytes`] reports the memory held.
///
/// # Errors
///
/// As [`forward`]; on error `out` is untouched.
///
/// # Examples
///
/// ```
/// use swiglu::cpu::{self, SaveMode};
/// use swiglu::{Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (4, 8, 6);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.4).sin()).collect();
/// let wg: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.2).cos() * 0.3).collect();
/// let w = GluWeights::new(&wg, &wg, k, n, WeightLayout::NK)?;
///
/// let mut out = vec![0.0f32; m * n];
/// let saved = cpu::forward_train(&x, &[m, k], &w, Activation::Silu, SaveMode::PreActivations, &mut out)?;
/// assert_eq!(saved.bytes(), 2 * m * n * 4); // gate and up, f32
/// // `out` is exactly what the inference forward computes.
/// assert_eq!(out, cpu::forward_alloc(&x, &[m, k], &w, Activation::Silu)?);
///
/// let light = cpu::forward_train(&x, &[m, k], &w, Activation::Silu, SaveMode::Recompute, &mut out)?;
/// assert_eq!(light.bytes(), 0);
/// # Ok::<(), swiglu::GluError>(())
/// ```
pub fn forward_train<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    mode: SaveMode,
    out: &mut [T],
) -> Result<Saved<T>> {
    let m = check_forward(x, x_shape, w, act, out.len())?;
    train::forward_train(x, m, w, act, mode, out)
}

/// The backward pass: gradients of `L = Σ d_out ⊙ out` given the upstream
/// gradient `d_out` (`[.., N]`, the shape of `out`).
///
/// With `g = x·Wg + bg`, `u = x·Wu + bu` (taken from `saved` or recomputed
/// from `x`): `dG = d_out ⊙ u ⊙ act'(g)` and `dU = d_out ⊙ act(g)` in one f32
/// pass, then `dx = dG·Wgᵀ + dU·Wuᵀ`, `dWg = xᵀ·dG`, `dWu = xᵀ·dU` (f32
/// GEMMs, weight gradients in the weights' layout) and `dbg`, `dbu` the
/// column sums of `dG`, `dU` (present exactly when the biases are). Results
/// are rounded to `G` once.
///
/// `x`, `w` and `act` must be those of the [`forward_train`] call that
/// produced `saved`.
///
/// # Errors
///
/// As [`forward`] for `x`, `d_out` and `act`; [`GluError::SavedMismatch`] if
/// `saved` was made for a different M or N.
///
/// # Examples
///
/// A training step: forward, a loss gradient, backward; checked against the
/// f64 reference.
///
/// ```
/// use swiglu::cpu::{self, SaveMode};
/// use swiglu::{reference, Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (6, 16, 8);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.29).sin()).collect();
/// let wg: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.31).cos() * 0.25).collect();
/// let wu: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.19).sin() * 0.25).collect();
/// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK)?;
/// let act = Activation::Silu;
///
/// let mut out = vec![0.0f32; m * n];
/// let saved = cpu::forward_train(&x, &[m, k], &w, act, SaveMode::PreActivations, &mut out)?;
/// let d_out: Vec<f32> = out.iter().map(|&o| 2.0 * o).collect(); // L = Σ out²
/// let grads = cpu::backward::<f32, f32>(&x, &[m, k], &w, act, &saved, &d_out)?;
/// assert_eq!(grads.d_w_gate.len(), k * n); // in the weights' [N, K] layout
///
/// let d64: Vec<f64> = d_out.iter().map(|&v| v as f64).collect();
/// let want = reference::backward_f64(&x, &[m, k], &w, act, &d64)?;
/// let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
/// assert!(reference::rel_err(&f64s(&grads.dx), &want.dx) < 1e-5);
/// assert!(reference::rel_err(&f64s(&grads.d_w_up), &want.d_w_up) < 1e-5);
///
/// // State saved for other shapes is rejected.
/// let other = cpu::forward_train(&x[..k], &[1, k], &w, act, SaveMode::Recompute, &mut out[..n])?;
/// assert!(cpu::backward::<f32, f32>(&x, &[m, k], &w, act, &other, &d_out).is_err());
/// # Ok::<(), swiglu::GluError>(())
/// ```
pub fn backward<T: Element, G: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    saved: &Saved<T>,
    d_out: &[T],
) -> Result<Grads<G>> {
    // Validate before allocating the gradients.
    act.validate()?;
    train::check_backward_io(x, x_shape, w, d_out.len())?;
    let mut grads = Grads::zeros(x_shape, w)?;
    train::backward_into(x, x_shape, w, act, saved, d_out, &mut grads, false)?;
    Ok(grads)
}

/// [`backward`] into existing buffers (shaped as [`Grads::zeros`] makes them).
///
/// `dx` is always overwritten. With `accumulate = false` the weight and bias
/// gradients are overwritten too; with `accumulate = true` they are added to
/// what the buffers hold (`dW += xᵀ·dG`, in f32, then rounded to `G`), for
/// gradient accumulation over micro-batches.
///
/// # Errors
///
/// As [`backward`], plus [`GluError::LengthMismatch`] or
/// [`GluError::BadShape`] if a buffer in `grads` has the wrong length or a
/// bias gradient is present without its bias (or missing with it). On error
/// nothing in `grads` is written.
///
/// # Examples
///
/// Accumulating weight gradients over two micro-batches:
///
/// ```
/// use swiglu::cpu::{self, Grads, SaveMode};
/// use swiglu::{Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (3, 8, 4);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.5).cos()).collect();
/// let wg: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
/// let w = GluWeights::new(&wg, &wg, k, n, WeightLayout::KN)?;
/// let act = Activation::Identity;
/// let d_out = vec![1.0f32; m * n];
///
/// let mut out = vec![0.0f32; m * n];
/// let saved = cpu::forward_train(&x, &[m, k], &w, act, SaveMode::PreActivations, &mut out)?;
/// let once = cpu::backward::<f32, f32>(&x, &[m, k], &w, act, &saved, &d_out)?;
///
/// let mut acc = Grads::<f32>::zeros(&[m, k], &w)?;
/// for _ in 0..2 {
///     cpu::backward_into(&x, &[m, k], &w, act, &saved, &d_out, &mut acc, true)?;
/// }
/// for (a, g) in acc.d_w_gate.iter().zip(&once.d_w_gate) {
///     assert!((a - 2.0 * g).abs() <= 1e-5 * (1.0 + g.abs()));
/// }
/// assert_eq!(acc.dx, once.dx); // dx is overwritten, not accumulated
/// # Ok::<(), swiglu::GluError>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn backward_into<T: Element, G: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    saved: &Saved<T>,
    d_out: &[T],
    grads: &mut Grads<G>,
    accumulate: bool,
) -> Result<()> {
    train::backward_into(x, x_shape, w, act, saved, d_out, grads, accumulate)
}
