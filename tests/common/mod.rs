//! Shared test helpers: a seeded generator, an f64 reference and error metrics.
#![allow(dead_code)]

#[cfg(feature = "cuda")]
pub mod gpu;

use swiglu::{Activation, Element, GluWeights, WeightLayout};

/// SplitMix64: small, seedable, and good enough for test data.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed`, or from the clock (printed) when
    /// `SWIGLU_TEST_SEED` is unset, so every run draws fresh inputs.
    pub fn fresh(tag: &str) -> Self {
        let seed = std::env::var("SWIGLU_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("[{tag}] SWIGLU_TEST_SEED={seed}");
        Rng(seed)
    }
    /// A generator with a given seed (threads of one test derive theirs
    /// from the printed one).
    pub fn from_seed(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1), never exactly zero.
    pub fn uniform(&mut self) -> f32 {
        let v = ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
        if v == 0.0 { 0.5 } else { v }
    }
    /// `len` values uniform in [-scale, scale), rounded to T.
    pub fn vec<T: Element>(&mut self, len: usize, scale: f32) -> Vec<T> {
        (0..len)
            .map(|_| T::from_f32(self.uniform() * scale))
            .collect()
    }
}

/// Pre-activations `x·W + b` in f64 for a logical `[k, n]` weight.
pub fn preact_f64<T: Element>(
    x: &[T],
    m: usize,
    w: &[T],
    b: Option<&[T]>,
    k: usize,
    n: usize,
    layout: WeightLayout,
) -> Vec<f64> {
    let mut out = vec![0.0f64; m * n];
    // Transpose to [n][k] for a contiguous inner loop.
    let mut wt = vec![0.0f64; n * k];
    for kk in 0..k {
        for nn in 0..n {
            wt[nn * k + kk] = w[layout.index(kk, nn, k, n)].to_f64();
        }
    }
    let xf: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    for r in 0..m {
        let xr = &xf[r * k..(r + 1) * k];
        for nn in 0..n {
            let wr = &wt[nn * k..(nn + 1) * k];
            let mut acc = 0.0;
            for i in 0..k {
                acc += xr[i] * wr[i];
            }
            out[r * n + nn] = acc + b.map_or(0.0, |b| b[nn].to_f64());
        }
    }
    out
}

/// The f64 reference output for the given weights.
pub fn reference<T: Element>(
    x: &[T],
    m: usize,
    w: &GluWeights<'_, T>,
    act: Activation,
) -> Vec<f64> {
    let g = preact_f64(x, m, w.gate(), w.bias_gate(), w.k(), w.n(), w.layout());
    let u = preact_f64(x, m, w.up(), w.bias_up(), w.k(), w.n(), w.layout());
    g.iter()
        .zip(&u)
        .map(|(g, u)| act.apply_f64(*g) * u)
        .collect()
}

/// ‖got − want‖ / ‖want‖ (‖got − want‖ when `want` is all zeros), never
/// NaN (panics when the lengths differ): +inf when a pair differs in finiteness (a
/// NaN/Inf in `got` where `want` is finite, or the reverse); a pair that is
/// non-finite on both sides counts as equal (no contribution) only when
/// both are NaN or both the same infinity, and as +inf otherwise.
pub fn rel_err<T: Element>(got: &[T], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length");
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (g, &w) in got.iter().zip(want) {
        let g = g.to_f64();
        if g.is_finite() && w.is_finite() {
            num += (g - w) * (g - w);
            den += w * w;
        } else if !((g.is_nan() && w.is_nan()) || g == w) {
            return f64::INFINITY;
        }
    }
    let e = if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    };
    nan_to_inf(e)
}

/// `e`, with NaN read as +inf (an error metric that failed to compute is a
/// failure, never a pass).
pub fn nan_to_inf(e: f64) -> f64 {
    if e.is_nan() { f64::INFINITY } else { e }
}

/// The larger of two error metrics, NaN-safe (a NaN in either gives +inf;
/// `f64::max` would drop it).
pub fn worst_of(a: f64, b: f64) -> f64 {
    nan_to_inf(a).max(nan_to_inf(b))
}

/// The largest [`rel_err`] over the column blocks `[c, c + width)` of an
/// `[m, n]` output: an error confined to one block (say one lost partial
/// sum of one tile) can stay under the tolerance in the whole-output error.
pub fn worst_block_rel_err<T: Element>(got: &[T], want: &[f64], n: usize, width: usize) -> f64 {
    assert_eq!(got.len(), want.len(), "length");
    let rows = got.len().checked_div(n).unwrap_or(0);
    (0..n.div_ceil(width.max(1)))
        .map(|b| {
            let cols = b * width..((b + 1) * width).min(n);
            let pick = |r: usize| cols.clone().map(move |c| r * n + c);
            let g: Vec<T> = (0..rows).flat_map(pick).map(|i| got[i]).collect();
            let w: Vec<f64> = (0..rows).flat_map(pick).map(|i| want[i]).collect();
            rel_err(&g, &w)
        })
        .fold(0.0, worst_of)
}

pub use swiglu::reference::ulp;

/// Elementwise check of an output of type `T` against its f64 reference,
/// alongside the normwise [`rel_err`] (which one wrong element in thousands
/// passes): every element whose reference `w` is finite must satisfy
/// `|got − w| ≤ ulp_T(w) + tol·scale`, `scale` = the largest finite `|want|`
/// of the output, `tol` the caller's normwise tolerance for the dtype/path
/// (f32-accumulating kernels err by far less per element). A non-finite
/// `got` where `w` is finite fails; where `w` is non-finite, `got` must be
/// NaN for NaN and the same infinity. `Err` names the first bad element.
pub fn check_elems<T: Element>(got: &[T], want: &[f64], tol: f64) -> Result<(), String> {
    let g: Vec<f64> = got.iter().map(|v| v.to_f64()).collect();
    check_elems_wide::<T>(&g, want, tol)
}

/// [`check_elems`] on values already widened to f64 that were stored as `T`
/// (whose ulp is allowed).
pub fn check_elems_wide<T: Element>(got: &[f64], want: &[f64], tol: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "length {} != reference length {}",
            got.len(),
            want.len()
        ));
    }
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !w.is_finite() {
            if !((g.is_nan() && w.is_nan()) || g == w) {
                return Err(format!("element {i}: got {g:e}, reference {w:e}"));
            }
            continue;
        }
        let bound = ulp::<T>(w) + tol * scale;
        let err = (g - w).abs();
        // A NaN or infinite `g` fails too.
        if err.is_nan() || err > bound {
            return Err(format!(
                "element {i}: got {g:e}, reference {w:e}, |error| {err:.3e} > {bound:.3e} \
                 (ulp + {tol:.0e} x max|ref| {scale:.3e})"
            ));
        }
    }
    Ok(())
}

/// Stores a logical `[k, n]` matrix (given as `[k][n]`) in `layout`.
pub fn store<T: Copy>(logical_kn: &[T], k: usize, n: usize, layout: WeightLayout) -> Vec<T> {
    match layout {
        WeightLayout::KN => logical_kn.to_vec(),
        WeightLayout::NK => {
            let mut v = Vec::with_capacity(k * n);
            for nn in 0..n {
                for kk in 0..k {
                    v.push(logical_kn[kk * n + nn]);
                }
            }
            v
        }
    }
}
