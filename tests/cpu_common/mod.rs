//! Helpers shared by the `cpu_*` integration tests: seeded random inputs,
//! owned weights in every layout, and tolerance checks against the f64
//! reference.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use swiglu::reference::rel_err;
use swiglu::{Activation, DType, Element, GluWeights, WeightLayout};

/// The dims the shape sweeps cover.
pub const DIMS: [usize; 7] = [1, 2, 7, 31, 64, 129, 257];

/// The seed for this test run: `SWIGLU_TEST_SEED` if set, else fresh from the
/// clock. Every failure message includes it; rerun with it to reproduce.
pub fn seed() -> u64 {
    if let Some(s) = std::env::var("SWIGLU_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}

/// A seeded RNG.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `len` uniform values in `±[scale/64, scale]` with random sign: never zero.
pub fn rand_vec<T: Element>(rng: &mut StdRng, len: usize, scale: f32) -> Vec<T> {
    (0..len)
        .map(|_| {
            let mag: f32 = rng.random_range(scale / 64.0..=scale);
            let v = if rng.random_bool(0.5) { mag } else { -mag };
            T::from_f32(v)
        })
        .collect()
}

/// How the weights are handed to the crate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lay {
    /// Separate `[K, N]` matrices.
    Kn,
    /// Separate `[N, K]` matrices.
    Nk,
    /// One concatenated `[2N, K]` tensor (`GluWeights::from_gate_up`).
    GateUp,
}

/// Every weight arrangement.
pub const LAYS: [Lay; 3] = [Lay::Kn, Lay::Nk, Lay::GateUp];

/// Owned weights; [`Owned::view`] borrows them as `GluWeights`.
#[derive(Clone, Debug)]
pub struct Owned<T> {
    pub k: usize,
    pub n: usize,
    pub lay: Lay,
    /// Gate then up for `GateUp`; just the gate otherwise.
    pub gate: Vec<T>,
    pub up: Vec<T>,
    pub bg: Option<Vec<T>>,
    pub bu: Option<Vec<T>>,
}

impl<T: Element> Owned<T> {
    /// Random weights scaled by `1/sqrt(K)` (so pre-activations are O(1)) and
    /// random biases where asked for.
    pub fn random(rng: &mut StdRng, k: usize, n: usize, lay: Lay, bias: (bool, bool)) -> Self {
        let s = 1.0 / (k as f32).sqrt();
        let (gate, up) = match lay {
            Lay::GateUp => (rand_vec(rng, 2 * k * n, s), Vec::new()),
            _ => (rand_vec(rng, k * n, s), rand_vec(rng, k * n, s)),
        };
        let bg = bias.0.then(|| rand_vec(rng, n, 0.5));
        let bu = bias.1.then(|| rand_vec(rng, n, 0.5));
        Self {
            k,
            n,
            lay,
            gate,
            up,
            bg,
            bu,
        }
    }

    /// The condition scale of each output element of `x·W` (`x` is `[m, k]`):
    /// `|act'(g)|·|u|·G + |act(g)|·U`, where `g`, `u` are the exact biased
    /// pre-activations and `G = Σ|x||Wg| + |bg|`, `U = Σ|x||Wu| + |bu|` their
    /// magnitude sums. An f32 accumulation errs by a few ulp of `G` and `U`,
    /// so where `x·W` cancels this, not `|out|`, sizes the output's error.
    /// It is never below `|out|`.
    pub fn condition(&self, x: &[T], m: usize, act: Activation) -> Vec<f64> {
        let (k, n) = (self.k, self.n);
        let w = self.view();
        let b = |v: Option<&[T]>, j: usize| v.map_or(0.0, |b| b[j].to_f64());
        let mut cond = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let (mut g, mut u) = (b(w.bias_gate(), j), b(w.bias_up(), j));
                let (mut ga, mut ua) = (g.abs(), u.abs());
                for kk in 0..k {
                    let xv = x[i * k + kk].to_f64();
                    let (wg, wu) = (w.gate_at(kk, j).to_f64(), w.up_at(kk, j).to_f64());
                    g += xv * wg;
                    u += xv * wu;
                    ga += (xv * wg).abs();
                    ua += (xv * wu).abs();
                }
                cond[i * n + j] =
                    act.grad_f64(g).abs() * u.abs() * ga + act.apply_f64(g).abs() * ua;
            }
        }
        cond
    }

    /// The storage layout the crate sees.
    pub fn layout(&self) -> WeightLayout {
        match self.lay {
            Lay::Kn => WeightLayout::KN,
            Lay::Nk | Lay::GateUp => WeightLayout::NK,
        }
    }

    /// The borrowed view.
    pub fn view(&self) -> GluWeights<'_, T> {
        let w = match self.lay {
            Lay::Kn => GluWeights::new(&self.gate, &self.up, self.k, self.n, WeightLayout::KN),
            Lay::Nk => GluWeights::new(&self.gate, &self.up, self.k, self.n, WeightLayout::NK),
            Lay::GateUp => GluWeights::from_gate_up(&self.gate, self.k, self.n),
        }
        .expect("valid weights");
        w.with_biases(self.bg.as_deref(), self.bu.as_deref())
            .expect("valid biases")
    }
}

pub use swiglu::reference::ulp;

/// Widens a `T` slice to f64.
pub fn f64s<T: Element>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// Checks an output of type `T` against the f64 reference computed on the
/// same inputs. f32: `rel_err ≤ 1e-5`. f16/bf16: every element within one
/// ulp of `T` of the reference plus `1e-5·max|ref|` (room for the f32
/// accumulation where the result cancels). NaN and infinities must match
/// exactly in both cases.
pub fn check_out<T: Element>(got: &[T], want: &[f64], ctx: &str) {
    check_out_cond(got, want, None, ctx);
}

/// [`check_out`], where f32 may also pass by `‖got − ref‖ ≤ 1e-5·‖cond‖`
/// with `cond` from [`Owned::condition`] (≥ |ref| elementwise): on a small
/// output whose pre-activations cancel (one element, K = 129), the f32 sums'
/// rounding can exceed 1e-5 of `‖ref‖` without anything being wrong.
pub fn check_out_cond<T: Element>(got: &[T], want: &[f64], cond: Option<&[f64]>, ctx: &str) {
    let g = f64s(got);
    assert_eq!(g.len(), want.len(), "{ctx}: length");
    let e = rel_err(&g, want);
    if T::DTYPE == DType::F32 {
        if e <= 1e-5 {
            return;
        }
        assert!(
            e.is_finite(),
            "{ctx}: NaN/Inf pattern differs from the reference"
        );
        let c = cond.unwrap_or_else(|| panic!("{ctx}: f32 rel_err {e:e} > 1e-5"));
        assert_eq!(c.len(), want.len(), "{ctx}: condition length");
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|d| d * d).sum::<f64>().sqrt();
        let err = norm(&mut g.iter().zip(want).map(|(a, b)| a - b));
        let scale = norm(&mut c.iter().copied());
        assert!(
            err <= 1e-5 * scale,
            "{ctx}: f32 rel_err {e:e} > 1e-5, and ‖err‖ {err:e} > 1e-5 x ‖condition‖ {scale:e}"
        );
        return;
    }
    assert!(
        e.is_finite(),
        "{ctx}: NaN/Inf pattern differs from the reference"
    );
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    for (i, (&g, &w)) in g.iter().zip(want).enumerate() {
        if !w.is_finite() {
            continue; // pattern checked by rel_err above
        }
        let tol = ulp::<T>(w) + 1e-5 * scale;
        assert!(
            (g - w).abs() <= tol,
            "{ctx}: element {i}: got {g:e}, reference {w:e} (rounded {:e}), tolerance {tol:e}",
            T::from_f64(w).to_f64()
        );
    }
}

/// Checks f32-or-wider gradients against the reference: `rel_err ≤ tol`.
pub fn check_grad(got: &[f64], want: &[f64], tol: f64, ctx: &str) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{ctx}: rel_err {e:e} > {tol:e}");
}
