//! A slow, obviously-correct f64 oracle for the forward and backward passes.
//!
//! Every product and sum is taken in `f64` straight from the definitions, with
//! no blocking, no parallelism and no rounding of the results, so the numbers
//! returned here are what the fast paths ([`crate::cpu`], `cuda`) are compared
//! against. The inputs are the caller's (already rounded) `T` values widened
//! exactly to `f64`; tests round the reference to `T` themselves when they want
//! to compare an output of type `T`.
//!
//! ```
//! use swiglu::{reference, Activation, GluWeights, WeightLayout};
//! let (k, n) = (2, 1);
//! let x = [1.0f32, 2.0];
//! let wg = [0.5f32, 0.25];
//! let wu = [1.0f32, -1.0];
//! let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::KN).unwrap();
//! let out = reference::forward_f64(&x, &[1, 2], &w, Activation::Identity).unwrap();
//! // g = 1*0.5 + 2*0.25 = 1, u = 1 - 2 = -1
//! assert_eq!(out, vec![-1.0]);
//! ```

use crate::error::{GluError, Result};
use crate::types::{Activation, Element};
use crate::weights::{GluWeights, check_io, checked_elems};

/// Gradients computed by [`backward_f64`], all in `f64`.
///
/// Bias gradients are always computed (a layer without biases simply ignores
/// them). Weight gradients are stored in the weights' own layout, exactly like
/// the weights they belong to.
#[derive(Clone, Debug, PartialEq)]
pub struct RefGrads {
    /// `dL/dx`, shape `[M, K]` row-major.
    pub dx: Vec<f64>,
    /// `dL/dWg`, `K*N` elements in the weights' layout.
    pub d_w_gate: Vec<f64>,
    /// `dL/dWu`, `K*N` elements in the weights' layout.
    pub d_w_up: Vec<f64>,
    /// `dL/dbg`, `N` elements.
    pub d_b_gate: Vec<f64>,
    /// `dL/dbu`, `N` elements.
    pub d_b_up: Vec<f64>,
}

/// The gate and up pre-activations `g = x·Wg + bg`, `u = x·Wu + bu` in f64,
/// each `[M, N]` row-major.
fn pre_activations<T: Element>(x: &[T], m: usize, w: &GluWeights<T>) -> (Vec<f64>, Vec<f64>) {
    let (k, n) = (w.k(), w.n());
    let mut g = vec![0.0f64; m * n];
    let mut u = vec![0.0f64; m * n];
    for i in 0..m {
        let row = &x[i * k..(i + 1) * k];
        for j in 0..n {
            let mut sg = w.bias_gate().map_or(0.0, |b| b[j].to_f64());
            let mut su = w.bias_up().map_or(0.0, |b| b[j].to_f64());
            for (kk, xv) in row.iter().enumerate() {
                let xv = xv.to_f64();
                sg += xv * w.gate_at(kk, j).to_f64();
                su += xv * w.up_at(kk, j).to_f64();
            }
            g[i * n + j] = sg;
            u[i * n + j] = su;
        }
    }
    (g, u)
}

/// `act(x·Wg + bg) ⊙ (x·Wu + bu)` in f64, `[M, N]` row-major (M is the product
/// of the leading dims of `x_shape`), not rounded.
///
/// Validates exactly like [`crate::cpu::forward`]: `x_shape` must end in K and
/// match `x.len()`, and the activation must be valid. `M = 0` gives an empty
/// vector.
///
/// The typical use: check a fast path against it.
///
/// ```
/// use swiglu::{cpu, reference, Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (3, 16, 8);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
/// let wg: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos() * 0.3).collect();
/// let wu: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.23).sin() * 0.3).collect();
/// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::KN)?;
///
/// let want = reference::forward_f64(&x, &[m, k], &w, Activation::GeluTanh)?;
/// let got = cpu::forward_alloc(&x, &[m, k], &w, Activation::GeluTanh)?;
/// let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
/// assert!(reference::rel_err(&got, &want) < 1e-5);
/// # Ok::<(), swiglu::GluError>(())
/// ```
pub fn forward_f64<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
) -> Result<Vec<f64>> {
    act.validate()?;
    let m = rows_of_checked(x, x_shape, w)?;
    let (g, u) = pre_activations(x, m, w);
    Ok(g.iter()
        .zip(&u)
        .map(|(&g, &u)| act.apply_f64(g) * u)
        .collect())
}

/// The gradients of `L = Σ d_out ⊙ out` with respect to `x`, both weights and
/// both biases, in f64, given the upstream gradient `d_out` (`[M, N]`).
///
/// With `g = x·Wg + bg`, `u = x·Wu + bu`:
/// `dG = d_out ⊙ u ⊙ act'(g)`, `dU = d_out ⊙ act(g)`,
/// `dx = dG·Wgᵀ + dU·Wuᵀ`, `dWg = xᵀ·dG`, `dWu = xᵀ·dU`,
/// `dbg = Σ_rows dG`, `dbu = Σ_rows dU`.
///
/// ```
/// use swiglu::cpu::{self, SaveMode};
/// use swiglu::{reference, Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (2, 4, 3);
/// let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.5).sin()).collect();
/// let wg: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.3).cos() * 0.5).collect();
/// let wu: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.7).sin() * 0.5).collect();
/// let bg = vec![0.1f32; n];
/// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK)?.with_biases(Some(&bg), None)?;
/// let d_out: Vec<f32> = (0..m * n).map(|i| 1.0 - i as f32 * 0.25).collect();
/// let d_out64: Vec<f64> = d_out.iter().map(|&v| v as f64).collect();
///
/// let want = reference::backward_f64(&x, &[m, k], &w, Activation::Silu, &d_out64)?;
/// assert_eq!(want.dx.len(), m * k);
/// assert_eq!(want.d_b_up.len(), n); // bias gradients are always computed
///
/// let mut out = vec![0.0f32; m * n];
/// let saved = cpu::forward_train(&x, &[m, k], &w, Activation::Silu, SaveMode::Recompute, &mut out)?;
/// let got = cpu::backward::<f32, f32>(&x, &[m, k], &w, Activation::Silu, &saved, &d_out)?;
/// let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
/// assert!(reference::rel_err(&f64s(&got.dx), &want.dx) < 1e-5);
/// assert!(reference::rel_err(&f64s(&got.d_w_gate), &want.d_w_gate) < 1e-5);
/// assert!(reference::rel_err(&f64s(got.d_b_gate.as_ref().unwrap()), &want.d_b_gate) < 1e-5);
/// assert!(got.d_b_up.is_none()); // no up bias, no up bias gradient
/// # Ok::<(), swiglu::GluError>(())
/// ```
pub fn backward_f64<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    d_out: &[f64],
) -> Result<RefGrads> {
    act.validate()?;
    let m = rows_of_checked(x, x_shape, w)?;
    let n = w.n();
    if d_out.len() != m * n {
        return Err(GluError::LengthMismatch {
            what: "d_out",
            shape: vec![m, n],
            expected: m * n,
            got: d_out.len(),
        });
    }
    let (g, u) = pre_activations(x, m, w);
    Ok(backward_from_pre(x, m, w, act, &g, &u, d_out))
}

/// [`backward_f64`] from given pre-activations `g`, `u` (`[M, N]` each, for
/// example the f32 ones a [`cpu::forward_train`](crate::cpu::forward_train)
/// saved, widened): isolates the backward pass from the rounding of the
/// forward GEMMs, which near `g = 0` flips ReLU's derivative and where a sum
/// cancels dominates the error of everything downstream.
///
/// ```
/// use swiglu::{reference, Activation, GluWeights, WeightLayout};
/// let (m, k, n) = (2, 3, 2);
/// let x = vec![1.0f32; m * k];
/// let w = vec![0.5f32; k * n];
/// let gw = GluWeights::new(&w, &w, k, n, WeightLayout::KN)?;
/// let (g, u) = (vec![1.5f64; m * n], vec![1.5f64; m * n]);
/// let d_out = vec![1.0f64; m * n];
/// let from_pre = reference::backward_f64_from_pre(&x, &[m, k], &gw, Activation::Identity, &g, &u, &d_out)?;
/// let full = reference::backward_f64(&x, &[m, k], &gw, Activation::Identity, &d_out)?;
/// assert_eq!(from_pre.dx, full.dx); // here g and u are exactly x·W
/// # Ok::<(), swiglu::GluError>(())
/// ```
///
/// # Errors
///
/// As [`backward_f64`]; [`GluError::LengthMismatch`] if `g` or `u` does not
/// hold `M·N` elements.
pub fn backward_f64_from_pre<T: Element>(
    x: &[T],
    x_shape: &[usize],
    w: &GluWeights<T>,
    act: Activation,
    g: &[f64],
    u: &[f64],
    d_out: &[f64],
) -> Result<RefGrads> {
    act.validate()?;
    let m = rows_of_checked(x, x_shape, w)?;
    let n = w.n();
    for (what, v) in [("g", g), ("u", u), ("d_out", d_out)] {
        if v.len() != m * n {
            return Err(GluError::LengthMismatch {
                what,
                shape: vec![m, n],
                expected: m * n,
                got: v.len(),
            });
        }
    }
    Ok(backward_from_pre(x, m, w, act, g, u, d_out))
}

/// The backward pass from pre-activations (lengths checked by the callers).
fn backward_from_pre<T: Element>(
    x: &[T],
    m: usize,
    w: &GluWeights<T>,
    act: Activation,
    g: &[f64],
    u: &[f64],
    d_out: &[f64],
) -> RefGrads {
    let (k, n) = (w.k(), w.n());
    let dg: Vec<f64> = (0..m * n)
        .map(|i| d_out[i] * u[i] * act.grad_f64(g[i]))
        .collect();
    let du: Vec<f64> = (0..m * n).map(|i| d_out[i] * act.apply_f64(g[i])).collect();

    let mut dx = vec![0.0f64; m * k];
    for i in 0..m {
        for kk in 0..k {
            let mut s = 0.0;
            for j in 0..n {
                s += dg[i * n + j] * w.gate_at(kk, j).to_f64()
                    + du[i * n + j] * w.up_at(kk, j).to_f64();
            }
            dx[i * k + kk] = s;
        }
    }
    let mut d_w_gate = vec![0.0f64; k * n];
    let mut d_w_up = vec![0.0f64; k * n];
    for kk in 0..k {
        for j in 0..n {
            let (mut sg, mut su) = (0.0, 0.0);
            for i in 0..m {
                let xv = x[i * k + kk].to_f64();
                sg += xv * dg[i * n + j];
                su += xv * du[i * n + j];
            }
            let idx = w.layout().index(kk, j, k, n);
            d_w_gate[idx] = sg;
            d_w_up[idx] = su;
        }
    }
    let colsum =
        |d: &[f64]| -> Vec<f64> { (0..n).map(|j| (0..m).map(|i| d[i * n + j]).sum()).collect() };
    RefGrads {
        dx,
        d_w_gate,
        d_w_up,
        d_b_gate: colsum(&dg),
        d_b_up: colsum(&du),
    }
}

/// Validates `x` against the weights and returns M.
fn rows_of_checked<T: Element>(x: &[T], x_shape: &[usize], w: &GluWeights<T>) -> Result<usize> {
    let m = crate::weights::rows_of(x_shape, w.k())?;
    let mn = checked_elems("M*N", m, w.n())?;
    check_io(x.len(), x_shape, w.k(), w.n(), mn)
}

/// Relative error `‖got − want‖₂ / ‖want‖₂`, built so that a NaN never passes.
///
/// * Elements where both sides are NaN, or both are the same infinity, count
///   as equal and are left out of both norms.
/// * Any other NaN or infinity on either side (a NaN where a number was
///   expected, a number where NaN was expected, mismatched infinities), or a
///   length mismatch, gives `f64::INFINITY`.
/// * If `want` is all zeros the result is 0 when `got` is too and
///   `f64::INFINITY` otherwise.
///
/// ```
/// use swiglu::reference::rel_err;
/// assert_eq!(rel_err(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
/// assert!(rel_err(&[1.0, 2.1], &[1.0, 2.0]) < 0.05);
/// assert_eq!(rel_err(&[f64::NAN], &[1.0]), f64::INFINITY);
/// assert_eq!(rel_err(&[1.0], &[f64::NAN]), f64::INFINITY);
/// assert_eq!(rel_err(&[f64::NAN, 1.0], &[f64::NAN, 1.0]), 0.0);
/// ```
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let (mut num, mut den, mut exact) = (0.0f64, 0.0f64, true);
    for (&g, &w) in got.iter().zip(want) {
        if g.is_finite() && w.is_finite() {
            exact &= g == w;
            num += (g - w) * (g - w);
            den += w * w;
        } else if (g.is_nan() && w.is_nan()) || g == w {
            // Both NaN, or the same infinity: equal, and no contribution.
        } else {
            return f64::INFINITY;
        }
    }
    if den == 0.0 {
        return if exact { 0.0 } else { f64::INFINITY };
    }
    let r = (num / den).sqrt();
    if r.is_nan() { f64::INFINITY } else { r }
}

/// The spacing of `T` values around `v`: one unit in the last place of the
/// binade holding `|v|` (the subnormal spacing below the smallest normal;
/// that spacing for 0 and non-finite `v`). The rounding error of storing
/// `v` as `T` is at most half of it, which is what per-element tolerances
/// against this module's f64 results allow for the output's one rounding.
///
/// ```
/// use swiglu::{bf16, f16, reference::ulp};
/// assert_eq!(ulp::<f32>(1.0), f32::EPSILON as f64);
/// assert_eq!(ulp::<bf16>(3.0), 2.0f64.powi(-6)); // 3 is in [2, 4): 2^(1-7)
/// assert_eq!(ulp::<f16>(0.0), 2.0f64.powi(-24)); // f16's subnormal spacing
/// ```
pub fn ulp<T: Element>(v: f64) -> f64 {
    let (mant_bits, min_exp) = match T::DTYPE {
        crate::DType::F32 => (23, -126),
        crate::DType::F16 => (10, -14),
        crate::DType::BF16 => (7, -126),
    };
    let a = v.abs();
    let e = if a == 0.0 || !a.is_finite() {
        min_exp
    } else {
        (a.log2().floor() as i32).max(min_exp)
    };
    2f64.powi(e - mant_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::WeightLayout;

    #[test]
    fn tiny_hand_checked_forward_and_backward() {
        // x = [1, 2], Wg = [[1], [0]], Wu = [[0], [1]] (KN), identity: out = x0 * x1.
        let x = [1.0f32, 2.0];
        let wg = [1.0f32, 0.0];
        let wu = [0.0f32, 1.0];
        let w = GluWeights::new(&wg, &wu, 2, 1, WeightLayout::KN).unwrap();
        let out = forward_f64(&x, &[1, 2], &w, Activation::Identity).unwrap();
        assert_eq!(out, vec![2.0]);
        let g = backward_f64(&x, &[1, 2], &w, Activation::Identity, &[1.0]).unwrap();
        assert_eq!(g.dx, vec![2.0, 1.0]);
        assert_eq!(g.d_w_gate, vec![2.0, 4.0]);
        assert_eq!(g.d_w_up, vec![1.0, 2.0]);
        assert_eq!(g.d_b_gate, vec![2.0]);
        assert_eq!(g.d_b_up, vec![1.0]);
    }

    #[test]
    fn rel_err_rejects_nan_and_inf_mismatches() {
        assert_eq!(rel_err(&[1.0], &[1.0, 2.0]), f64::INFINITY);
        assert_eq!(rel_err(&[f64::INFINITY], &[1.0]), f64::INFINITY);
        assert_eq!(
            rel_err(&[f64::INFINITY], &[f64::NEG_INFINITY]),
            f64::INFINITY
        );
        assert_eq!(rel_err(&[f64::INFINITY, 1.0], &[f64::INFINITY, 1.0]), 0.0);
        assert_eq!(rel_err(&[0.0], &[0.0]), 0.0);
        assert_eq!(rel_err(&[1e-300], &[0.0]), f64::INFINITY);
        assert_eq!(rel_err(&[], &[]), 0.0);
    }
}
