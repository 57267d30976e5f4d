//! Training: what the forward pass keeps, and the backward pass.

use super::blas::{Mat, MatMut, as_f32_mut, matmul, narrow_into, to_f32, widen_into};
use super::fused::{fused, rows_per_chunk};
use crate::error::{GluError, Result};
use crate::types::{Activation, Element, WeightLayout};
use crate::weights::{GluWeights, check_io, checked_elems, checked_len, rows_of};
use gemm::Parallelism;
use rayon::prelude::*;
use std::marker::PhantomData;

/// What [`forward_train`](super::forward_train) keeps for the backward pass.
///
/// Both modes give the same gradients; they trade memory held between the
/// passes against two extra GEMMs in the backward pass.
///
/// ```
/// use swiglu::cpu::{self, SaveMode};
/// use swiglu::{Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (4, 8, 4);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.3).sin()).collect();
/// let wg: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.7).cos() * 0.4).collect();
/// let w = GluWeights::new(&wg, &wg, k, n, WeightLayout::KN)?;
/// let d_out = vec![1.0f32; m * n];
/// let mut out = vec![0.0f32; m * n];
/// let mut grads = Vec::new();
/// for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
///     let saved = cpu::forward_train(&x, &[m, k], &w, Activation::Silu, mode, &mut out)?;
///     assert_eq!(saved.mode(), mode);
///     grads.push(cpu::backward::<f32, f32>(&x, &[m, k], &w, Activation::Silu, &saved, &d_out)?);
/// }
/// for (a, b) in grads[0].dx.iter().zip(&grads[1].dx) {
///     assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()));
/// }
/// # Ok::<(), swiglu::GluError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaveMode {
    /// Keep the biased gate and up pre-activations `g = x·Wg + bg` and
    /// `u = x·Wu + bu` as f32: `2·M·N·4` bytes, and the backward pass needs no
    /// GEMM to get them back.
    PreActivations,
    /// Keep nothing; the backward pass recomputes `g` and `u` from `x` (two
    /// extra GEMMs, no memory held between the passes).
    Recompute,
}

/// State saved by [`forward_train`](super::forward_train) for
/// [`backward`](super::backward).
///
/// For [`SaveMode::PreActivations`] it holds the gate and up pre-activations,
/// biases included, each `[M, N]` row-major **in f32** whatever `T` is (they
/// are the unrounded f32 accumulations the output was computed from, so the
/// backward pass sees exactly what the forward pass did). For
/// [`SaveMode::Recompute`] it holds only the shape.
///
/// ```
/// use swiglu::cpu::{self, SaveMode};
/// use swiglu::{Activation, GluWeights, WeightLayout};
/// // One row, K = 2, N = 1: g = x·Wg + bg, u = x·Wu.
/// let (wg, wu, bg) = ([1.0f32, 2.0], [3.0f32, -1.0], [0.5f32]);
/// let w = GluWeights::new(&wg, &wu, 2, 1, WeightLayout::KN)?.with_biases(Some(&bg), None)?;
/// let mut out = [0.0f32];
/// let saved = cpu::forward_train(&[1.0f32, 1.0], &[1, 2], &w, Activation::Relu, SaveMode::PreActivations, &mut out)?;
/// assert_eq!((saved.m(), saved.n()), (1, 1));
/// assert_eq!(saved.gate_pre(), Some(&[3.5f32][..])); // 1 + 2 + 0.5
/// assert_eq!(saved.up_pre(), Some(&[2.0f32][..])); // 3 - 1
/// assert_eq!(out, [7.0]); // relu(3.5) · 2
/// # Ok::<(), swiglu::GluError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Saved<T> {
    pub(crate) mode: SaveMode,
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) gate: Vec<f32>,
    pub(crate) up: Vec<f32>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Saved<T> {
    /// State for [`SaveMode::PreActivations`] from pre-activations computed
    /// elsewhere (another device, a checkpointing scheme): `gate` and `up`
    /// are the biased `[M, N]` row-major pre-activations.
    ///
    /// ```
    /// use swiglu::cpu::{SaveMode, Saved};
    /// let s = Saved::<f32>::from_pre_activations(2, 3, vec![0.5; 6], vec![1.0; 6]).unwrap();
    /// assert_eq!(s.mode(), SaveMode::PreActivations);
    /// assert!(Saved::<f32>::from_pre_activations(2, 3, vec![0.5; 5], vec![1.0; 6]).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`GluError::LengthMismatch`] if `gate` or `up` does not hold `M·N`
    /// elements; [`GluError::Overflow`] if `M·N` overflows.
    pub fn from_pre_activations(m: usize, n: usize, gate: Vec<f32>, up: Vec<f32>) -> Result<Self> {
        let expected = checked_elems("M*N", m, n)?;
        for (what, v) in [("gate", &gate), ("up", &up)] {
            if v.len() != expected {
                return Err(GluError::LengthMismatch {
                    what,
                    shape: vec![m, n],
                    expected,
                    got: v.len(),
                });
            }
        }
        Ok(Saved {
            mode: SaveMode::PreActivations,
            m,
            n,
            gate,
            up,
            _t: PhantomData,
        })
    }
    /// How this state was saved.
    ///
    /// ```
    /// # use swiglu::cpu::{self, SaveMode};
    /// # use swiglu::{Activation, GluWeights, WeightLayout};
    /// # let (m, k, n) = (3, 2, 4);
    /// # let w = [0.5f32; 8];
    /// # let w = GluWeights::new(&w, &w, k, n, WeightLayout::KN)?;
    /// # let (x, mut out) = (vec![1.0f32; m * k], vec![0.0f32; m * n]);
    /// let mode = SaveMode::Recompute;
    /// let saved = cpu::forward_train(&x, &[m, k], &w, Activation::Silu, mode, &mut out)?;
    /// assert_eq!(saved.mode(), SaveMode::Recompute);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn mode(&self) -> SaveMode {
        self.mode
    }
    /// Rows M of the forward input.
    ///
    /// ```
    /// # use swiglu::cpu::{self, SaveMode};
    /// # use swiglu::{Activation, GluWeights, WeightLayout};
    /// # let (k, n) = (2, 4);
    /// # let w = [0.5f32; 8];
    /// # let w = GluWeights::new(&w, &w, k, n, WeightLayout::KN)?;
    /// # let (x, mut out) = (vec![1.0f32; 2 * 3 * k], vec![0.0f32; 2 * 3 * n]);
    /// // Leading dims are flattened: an input [2, 3, K] has M = 6 rows.
    /// let mode = SaveMode::Recompute;
    /// let saved = cpu::forward_train(&x, &[2, 3, k], &w, Activation::Silu, mode, &mut out)?;
    /// assert_eq!(saved.m(), 6);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn m(&self) -> usize {
        self.m
    }
    /// Hidden features N.
    ///
    /// ```
    /// use swiglu::cpu::Saved;
    /// let saved = Saved::<f32>::from_pre_activations(2, 3, vec![0.0; 6], vec![0.0; 6])?;
    /// assert_eq!((saved.m(), saved.n()), (2, 3));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn n(&self) -> usize {
        self.n
    }
    /// The biased gate pre-activations `[M, N]`, if saved.
    ///
    /// ```
    /// # use swiglu::cpu::{self, SaveMode};
    /// # use swiglu::{Activation, GluWeights, WeightLayout};
    /// # let (m, k, n) = (3, 2, 4);
    /// # let w = [0.5f32; 8];
    /// # let w = GluWeights::new(&w, &w, k, n, WeightLayout::KN)?;
    /// # let (x, mut out) = (vec![1.0f32; m * k], vec![0.0f32; m * n]);
    /// let act = Activation::Relu;
    /// let saved = cpu::forward_train(&x, &[m, k], &w, act, SaveMode::PreActivations, &mut out)?;
    /// assert_eq!(saved.gate_pre(), Some(&[1.0f32; 3 * 4][..])); // x·Wg = 2 · 0.5
    /// let saved = cpu::forward_train(&x, &[m, k], &w, act, SaveMode::Recompute, &mut out)?;
    /// assert_eq!(saved.gate_pre(), None); // nothing kept
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn gate_pre(&self) -> Option<&[f32]> {
        (self.mode == SaveMode::PreActivations).then_some(&self.gate[..])
    }
    /// The biased up pre-activations `[M, N]`, if saved.
    ///
    /// ```
    /// use swiglu::cpu::Saved;
    /// let (gate, up) = (vec![0.5f32; 6], vec![-1.0f32; 6]);
    /// let saved = Saved::<f32>::from_pre_activations(2, 3, gate, up.clone())?;
    /// assert_eq!(saved.up_pre(), Some(&up[..]));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn up_pre(&self) -> Option<&[f32]> {
        (self.mode == SaveMode::PreActivations).then_some(&self.up[..])
    }
    /// Heap bytes held: `2·M·N·4` for [`SaveMode::PreActivations`], 0 for
    /// [`SaveMode::Recompute`].
    ///
    /// ```
    /// use swiglu::cpu::Saved;
    /// use swiglu::bf16;
    /// let (m, n) = (2, 3);
    /// // Pre-activations are f32 whatever the element type.
    /// let saved = Saved::<bf16>::from_pre_activations(m, n, vec![0.0; m * n], vec![0.0; m * n])?;
    /// assert_eq!(saved.bytes(), 2 * m * n * 4);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn bytes(&self) -> usize {
        (self.gate.len() + self.up.len()) * std::mem::size_of::<f32>()
    }
}

/// Gradients from [`backward`](super::backward), in element type `G`.
///
/// Weight gradients are stored in the same layout as the weights (`[K, N]`
/// for [`WeightLayout::KN`](crate::WeightLayout::KN), `[N, K]` for
/// [`WeightLayout::NK`](crate::WeightLayout::NK)); for weights built with
/// [`GluWeights::from_gate_up`] the two halves of the concatenated gradient
/// are `d_w_gate` followed by `d_w_up`.
///
/// ```
/// use swiglu::cpu::{self, SaveMode};
/// use swiglu::{Activation, GluWeights, WeightLayout};
/// // K = N = 1, bilinear: g = 3x, u = 0.5x, out = g·u.
/// let w = GluWeights::new(&[3.0f32], &[0.5f32], 1, 1, WeightLayout::KN)?;
/// let (x, mut out) = ([2.0f32], [0.0f32]);
/// let saved =
///     cpu::forward_train(&x, &[1, 1], &w, Activation::Identity, SaveMode::Recompute, &mut out)?;
/// let grads = cpu::backward::<f32, f32>(&x, &[1, 1], &w, Activation::Identity, &saved, &[1.0])?;
/// // dG = u = 1, dU = g = 6: dx = 1·3 + 6·0.5, dWg = x·dG, dWu = x·dU.
/// assert_eq!((grads.dx[0], grads.d_w_gate[0], grads.d_w_up[0]), (6.0, 2.0, 12.0));
/// assert_eq!(grads.d_b_gate, None); // no biases, no bias gradients
/// # Ok::<(), swiglu::GluError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Grads<G> {
    /// `dL/dx`, `[.., K]` like `x`.
    pub dx: Vec<G>,
    /// `dL/dWg`, `K·N` elements in the weights' layout.
    pub d_w_gate: Vec<G>,
    /// `dL/dWu`, `K·N` elements in the weights' layout.
    pub d_w_up: Vec<G>,
    /// `dL/dbg` (`N`), present exactly when the weights have a gate bias.
    pub d_b_gate: Option<Vec<G>>,
    /// `dL/dbu` (`N`), present exactly when the weights have an up bias.
    pub d_b_up: Option<Vec<G>>,
}

impl<G: Element> Grads<G> {
    /// Zeroed gradients shaped for input `x_shape` and weights `w`, ready for
    /// [`backward_into`](super::backward_into) (for example to accumulate
    /// weight gradients over micro-batches).
    ///
    /// # Examples
    ///
    /// ```
    /// use swiglu::cpu::Grads;
    /// use swiglu::{bf16, GluWeights, WeightLayout};
    /// let (k, n) = (4, 3);
    /// let wg = vec![bf16::ZERO; k * n];
    /// let bg = vec![bf16::ZERO; n];
    /// let w = GluWeights::new(&wg, &wg, k, n, WeightLayout::NK)?.with_biases(Some(&bg), None)?;
    /// // f32 gradients for bf16 weights, for an input [2, 5, K].
    /// let g = Grads::<f32>::zeros(&[2, 5, k], &w)?;
    /// assert_eq!(g.dx.len(), 2 * 5 * k);
    /// assert_eq!(g.d_w_gate.len(), k * n);
    /// assert_eq!(g.d_b_gate.as_ref().map(Vec::len), Some(n));
    /// assert!(g.d_b_up.is_none()); // no up bias
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn zeros<T: Element>(x_shape: &[usize], w: &GluWeights<T>) -> Result<Self> {
        let m = rows_of(x_shape, w.k())?;
        let mk = checked_len::<G>("M*K", m, w.k())?;
        let kn = checked_len::<G>("K*N", w.k(), w.n())?;
        Ok(Self {
            dx: vec![G::default(); mk],
            d_w_gate: vec![G::default(); kn],
            d_w_up: vec![G::default(); kn],
            d_b_gate: w.bias_gate().map(|_| vec![G::default(); w.n()]),
            d_b_up: w.bias_up().map(|_| vec![G::default(); w.n()]),
        })
    }

    /// Checks every buffer against the shapes it must have.
    fn check(&self, m: usize, w: &GluWeights<impl Element>) -> Result<()> {
        let (k, n) = (w.k(), w.n());
        let len = |what, shape: Vec<usize>, got: usize| {
            let expected = shape.iter().product();
            if got == expected {
                Ok(())
            } else {
                Err(GluError::LengthMismatch {
                    what,
                    shape,
                    expected,
                    got,
                })
            }
        };
        len("grads.dx", vec![m, k], self.dx.len())?;
        len("grads.d_w_gate", vec![k, n], self.d_w_gate.len())?;
        len("grads.d_w_up", vec![k, n], self.d_w_up.len())?;
        for (what, g, has) in [
            ("grads.d_b_gate", &self.d_b_gate, w.bias_gate().is_some()),
            ("grads.d_b_up", &self.d_b_up, w.bias_up().is_some()),
        ] {
            match g {
                Some(g) if has => len(what, vec![n], g.len())?,
                None if !has => {}
                _ => {
                    return Err(GluError::BadShape {
                        what,
                        shape: g.as_ref().map_or(vec![], |g| vec![g.len()]),
                        why: "a bias gradient must be present exactly when the bias is",
                    });
                }
            }
        }
        Ok(())
    }
}

/// See [`super::forward_train`]; inputs validated by the caller.
pub(crate) fn forward_train<T: Element>(
    x: &[T],
    m: usize,
    w: &GluWeights<T>,
    act: Activation,
    mode: SaveMode,
    out: &mut [T],
) -> Result<Saved<T>> {
    let n = w.n();
    let (mut gate, mut up) = (Vec::new(), Vec::new());
    match mode {
        SaveMode::Recompute => fused(x, m, w, act, out, None),
        SaveMode::PreActivations => {
            let mn = checked_len::<f32>("M*N", m, n)?;
            gate = vec![0.0; mn];
            up = vec![0.0; mn];
            fused(x, m, w, act, out, Some((&mut gate, &mut up)));
        }
    }
    Ok(Saved {
        mode,
        m,
        n,
        gate,
        up,
        _t: PhantomData,
    })
}

/// Turns the biased pre-activations `g`, `u` (in place) into
/// `dG = d_out ⊙ u ⊙ act'(g)` and `dU = d_out ⊙ act(g)`.
fn pre_to_grads<T: Element>(act: Activation, d_out: &[T], n: usize, g: &mut [f32], u: &mut [f32]) {
    let rows = rows_per_chunk(n);
    g.par_chunks_mut(rows * n)
        .zip(u.par_chunks_mut(rows * n))
        .zip(d_out.par_chunks(rows * n))
        .for_each(|((g, u), d)| {
            for ((g, u), d) in g.chunks_mut(n).zip(u.chunks_mut(n)).zip(d.chunks(n)) {
                for c in 0..n {
                    let (gv, uv, dv) = (g[c], u[c], d[c].to_f32());
                    g[c] = dv * uv * act.grad_f32(gv);
                    u[c] = dv * act.apply_f32(gv);
                }
            }
        });
}

/// Column sums of the `[m, n]` matrix `d`, written to (or added into) `dst`.
fn colsum_into<G: Element>(d: &[f32], m: usize, n: usize, dst: &mut [G], accumulate: bool) {
    const CHUNK: usize = 256;
    dst.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, dst)| {
        let c0 = ci * CHUNK;
        let mut acc = vec![0.0f32; dst.len()];
        for i in 0..m {
            let row = &d[i * n + c0..i * n + c0 + dst.len()];
            acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
        }
        for (o, a) in dst.iter_mut().zip(acc) {
            *o = G::from_f32(if accumulate { o.to_f32() + a } else { a });
        }
    });
}

/// `dst (=|+=) a·b` into a weight-shaped `[k, n]` buffer of element type `G`
/// stored in `layout`: in place for `G = f32`, through an f32 copy otherwise.
fn weight_grad_into<G: Element>(
    dst: &mut [G],
    (k, n, layout): (usize, usize, WeightLayout),
    a: Mat<'_>,
    b: Mat<'_>,
    accumulate: bool,
) {
    let par = Parallelism::Rayon(0);
    if let Some(d) = as_f32_mut(dst) {
        matmul(&mut MatMut::weight(d, k, n, layout), a, b, accumulate, par);
    } else {
        let mut tmp = vec![0.0f32; dst.len()];
        if accumulate {
            widen_into(dst, &mut tmp);
        }
        matmul(
            &mut MatMut::weight(&mut tmp, k, n, layout),
            a,
            b,
            accumulate,
            par,
        );
        narrow_into(&tmp, dst);
    }
}

/// Validates `x` and `d_out` (whose length errors name `d_out`); returns M.
pub(crate) fn check_backward_io<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    d_out_len: usize,
) -> Result<usize> {
    check_io(x.len(), x_shape, w.k(), w.n(), d_out_len).map_err(|e| match e {
        GluError::LengthMismatch {
            what: "out",
            shape,
            expected,
            got,
        } => GluError::LengthMismatch {
            what: "d_out",
            shape,
            expected,
            got,
        },
        e => e,
    })
}

/// See [`super::backward_into`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_into<T: Element, G: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    saved: &Saved<T>,
    d_out: &[T],
    grads: &mut Grads<G>,
    accumulate: bool,
) -> Result<()> {
    act.validate()?;
    let (k, n, layout) = (w.k(), w.n(), w.layout());
    let m = check_backward_io(x, x_shape, w, d_out.len())?;
    if saved.m != m || saved.n != n {
        return Err(GluError::SavedMismatch(format!(
            "saved state is for M={}, N={} but the backward call has M={m}, N={n}",
            saved.m, saved.n
        )));
    }
    let mn = m * n;
    if saved.mode == SaveMode::PreActivations && (saved.gate.len() != mn || saved.up.len() != mn) {
        return Err(GluError::SavedMismatch(format!(
            "saved pre-activations hold {} and {} elements, expected {mn}",
            saved.gate.len(),
            saved.up.len()
        )));
    }
    grads.check(m, w)?;

    // Everything below is infallible: outputs are written only from here on.
    let x32 = to_f32(x);
    // The biased pre-activations: saved, or recomputed by the same fused
    // forward that `PreActivations` saves from, so the two modes give
    // bit-identical gradients (a separate GEMM would sum in another order:
    // other roundings where x·W cancels, and a ReLU' that can flip near 0).
    let (mut dg, mut du) = match saved.mode {
        SaveMode::PreActivations => (saved.gate.clone(), saved.up.clone()),
        SaveMode::Recompute => {
            let (mut g, mut u) = (vec![0.0f32; mn], vec![0.0f32; mn]);
            // The forward's output itself is not needed.
            let mut scratch = vec![T::default(); mn];
            fused(x, m, w, act, &mut scratch, Some((&mut g, &mut u)));
            (g, u)
        }
    };
    // In place: g, u -> dG, dU.
    pre_to_grads(act, d_out, n, &mut dg, &mut du);
    let (dgm, dum) = (Mat::row_major(&dg, m, n), Mat::row_major(&du, m, n));

    // Bias gradients first: cheap, and `dg`/`du` stay borrowed below.
    if let Some(db) = grads.d_b_gate.as_mut() {
        colsum_into(&dg, m, n, db, accumulate);
    }
    if let Some(db) = grads.d_b_up.as_mut() {
        colsum_into(&du, m, n, db, accumulate);
    }

    {
        let wg32 = to_f32(w.gate());
        let wu32 = to_f32(w.up());
        let wg = Mat::weight(&wg32, k, n, layout);
        let wu = Mat::weight(&wu32, k, n, layout);
        // dx = dG·Wgᵀ + dU·Wuᵀ, always overwritten.
        let par = Parallelism::Rayon(0);
        let dx_f32 = |d: &mut [f32]| {
            let mut dst = MatMut::row_major(d, m, k);
            matmul(&mut dst, dgm, wg.t(), false, par);
            matmul(&mut dst, dum, wu.t(), true, par);
        };
        match as_f32_mut(&mut grads.dx) {
            Some(d) => dx_f32(d),
            None => {
                let mut tmp = vec![0.0f32; m * k];
                dx_f32(&mut tmp);
                narrow_into(&tmp, &mut grads.dx);
            }
        }
    }

    // dWg = xᵀ·dG, dWu = xᵀ·dU, in the weights' layout.
    let xt = Mat::row_major(&x32, m, k).t();
    weight_grad_into(&mut grads.d_w_gate, (k, n, layout), xt, dgm, accumulate);
    weight_grad_into(&mut grads.d_w_up, (k, n, layout), xt, dum, accumulate);
    Ok(())
}
