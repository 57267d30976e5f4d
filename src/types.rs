//! Element types, activations and weight layouts.

use crate::error::{GluError, Result};
use half::{bf16, f16};

/// The element type of a tensor.
///
/// ```
/// use swiglu::{bf16, DType, Element};
/// assert_eq!(DType::F32.size(), 4);
/// assert_eq!(DType::BF16.size(), 2);
/// assert_eq!(DType::F16.name(), "f16");
/// // Every element type carries its tag.
/// assert_eq!(<bf16 as Element>::DTYPE, DType::BF16);
/// assert_eq!(f32::DTYPE, DType::F32);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
}

impl DType {
    /// Size of one element in bytes.
    ///
    /// ```
    /// use swiglu::DType;
    /// assert_eq!(DType::F32.size(), 4);
    /// assert_eq!(DType::BF16.size(), 2);
    /// assert_eq!(DType::F16.size(), std::mem::size_of::<swiglu::f16>());
    /// ```
    pub const fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Short lowercase name used in kernel names and CLI flags (`f32`, `f16`, `bf16`).
    ///
    /// ```
    /// use swiglu::DType;
    /// let names: Vec<_> = [DType::F32, DType::F16, DType::BF16].map(DType::name).into();
    /// assert_eq!(names, ["f32", "f16", "bf16"]);
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A supported element type: `f32`, [`half::f16`] or [`half::bf16`].
///
/// Arithmetic always happens in `f32` (or `f64` in the reference); these
/// conversions are the only place the element type matters.
///
/// ```
/// use swiglu::{bf16, f16, Element};
/// // Widening is exact; narrowing rounds to nearest even.
/// assert_eq!(bf16::from_f32(1.0).to_f32(), 1.0);
/// assert_eq!(bf16::from_f32(1.0 + 1.0 / 512.0).to_f32(), 1.0); // below bf16's resolution
/// assert_eq!(f16::from_f32(1.0 + 1.0 / 512.0).to_f32(), 1.0 + 1.0 / 512.0);
///
/// // Code generic over the element type:
/// fn sum<T: Element>(v: &[T]) -> f32 {
///     v.iter().map(|x| x.to_f32()).sum()
/// }
/// assert_eq!(sum(&[f16::from_f32(0.5), f16::from_f32(0.25)]), 0.75);
/// ```
pub trait Element:
    sealed::Sealed + Copy + Default + Send + Sync + std::fmt::Debug + PartialEq + 'static
{
    /// The runtime tag of this type.
    const DTYPE: DType;
    /// Widen to `f32` (exact).
    fn to_f32(self) -> f32;
    /// Round from `f32` (round to nearest even).
    fn from_f32(v: f32) -> Self;
    /// Widen to `f64` (exact).
    fn to_f64(self) -> f64 {
        self.to_f32() as f64
    }
    /// Round from `f64`.
    fn from_f64(v: f64) -> Self;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        f16::from_f64(v)
    }
}

impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        bf16::from_f64(v)
    }
}

/// How a weight matrix of logical shape `[K, N]` is stored.
///
/// ```
/// use swiglu::{GluWeights, WeightLayout};
/// let (k, n) = (3, 2);
/// // Logical element (k=2, n=1) of a [K=3, N=2] matrix:
/// assert_eq!(WeightLayout::KN.index(2, 1, k, n), 2 * n + 1); // [K, N] row-major
/// assert_eq!(WeightLayout::NK.index(2, 1, k, n), k + 2); // [N, K] row-major: 1·K + 2
///
/// // The same logical matrix stored both ways gives the same weights.
/// let kn = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // rows k = 0, 1, 2
/// let nk = [1.0f32, 3.0, 5.0, 2.0, 4.0, 6.0]; // rows n = 0, 1
/// let a = GluWeights::new(&kn, &kn, k, n, WeightLayout::KN).unwrap();
/// let b = GluWeights::new(&nk, &nk, k, n, WeightLayout::NK).unwrap();
/// assert_eq!(a.gate_at(2, 1), 6.0);
/// assert_eq!(b.gate_at(2, 1), 6.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightLayout {
    /// `[K, N]` row-major: element `(k, n)` at `k * N + n`.
    KN,
    /// `[N, K]` row-major, as `nn.Linear` and checkpoints store `gate_proj` /
    /// `up_proj`: element `(k, n)` at `n * K + k`.
    NK,
}

impl WeightLayout {
    /// Index of logical element `(k, n)` in a matrix of logical shape
    /// `[k_dim, n_dim]`. Plain arithmetic: it does not check `k < k_dim`,
    /// `n < n_dim` (an index from outside the matrix lands in another
    /// element or past the end; [`crate::GluWeights::get_gate`] checks), and
    /// it wraps on overflow in release builds, panics in debug builds.
    ///
    /// ```
    /// use swiglu::WeightLayout;
    /// let (k_dim, n_dim) = (4, 3);
    /// assert_eq!(WeightLayout::KN.index(1, 2, k_dim, n_dim), 1 * n_dim + 2); // 5
    /// assert_eq!(WeightLayout::NK.index(1, 2, k_dim, n_dim), 2 * k_dim + 1); // 9
    /// ```
    #[inline(always)]
    pub fn index(self, k: usize, n: usize, k_dim: usize, n_dim: usize) -> usize {
        match self {
            WeightLayout::KN => k * n_dim + n,
            WeightLayout::NK => n * k_dim + k,
        }
    }

    /// The code the kernels use (`GLU_LAYOUT_*` in `kernels/glu_params.cuh`).
    ///
    /// ```
    /// use swiglu::WeightLayout;
    /// assert_eq!(WeightLayout::KN.code(), 0);
    /// assert_eq!(WeightLayout::NK.code(), 1);
    /// ```
    pub const fn code(self) -> i32 {
        match self {
            WeightLayout::KN => 0,
            WeightLayout::NK => 1,
        }
    }

    /// Short lower-case name: `"kn"` or `"nk"` (kernel names, autotuner
    /// tables).
    ///
    /// ```
    /// use swiglu::WeightLayout;
    /// assert_eq!(WeightLayout::KN.short_name(), "kn");
    /// assert_eq!(WeightLayout::NK.short_name(), "nk");
    /// ```
    pub const fn short_name(self) -> &'static str {
        match self {
            WeightLayout::KN => "kn",
            WeightLayout::NK => "nk",
        }
    }
}

/// The gate activation: `out = act(x·Wg + bg) ⊙ (x·Wu + bu)`.
///
/// ```
/// use swiglu::Activation;
/// let z = 0.75;
/// // SiLU is Swish with β = 1.
/// let silu = Activation::Silu.apply_f64(z);
/// assert_eq!(silu, Activation::Swish { beta: 1.0 }.apply_f64(z));
/// assert!((silu - z / (1.0 + (-z).exp())).abs() < 1e-15);
/// // The f32 forms agree with the f64 reference.
/// for act in Activation::ALL {
///     let (a32, a64) = (act.apply_f32(z as f32) as f64, act.apply_f64(z));
///     assert!((a32 - a64).abs() < 1e-6, "{}", act.name());
///     assert!((act.grad_f32(z as f32) as f64 - act.grad_f64(z)).abs() < 1e-5);
/// }
/// assert_eq!(Activation::Relu.apply_f64(-2.0), 0.0);
/// assert_eq!(Activation::GeluTanh.name(), "gelu-tanh");
/// assert_eq!(Activation::Swish { beta: 1.5 }.beta(), 1.5);
/// assert_eq!(Activation::Silu.beta(), 1.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `z·σ(z)`: SwiGLU (LLaMA, PaLM).
    Silu,
    /// `z·σ(βz)`: Swish-β. `Swish { beta: 1.0 }` equals [`Activation::Silu`].
    Swish {
        /// The β parameter; must be finite.
        beta: f32,
    },
    /// `σ(z)`: the original GLU.
    Sigmoid,
    /// `0.5·z·(1 + erf(z/√2))`: GEGLU with exact GELU.
    GeluErf,
    /// `0.5·z·(1 + tanh(√(2/π)(z + 0.044715z³)))`: GEGLU as in T5 v1.1.
    GeluTanh,
    /// `max(z, 0)`: ReGLU. NaN stays NaN.
    Relu,
    /// `z`: the bilinear layer.
    Identity,
}

impl Activation {
    /// Every activation, with β = 1.5 for Swish (for tests and sweeps).
    pub const ALL: [Activation; 7] = [
        Activation::Silu,
        Activation::Swish { beta: 1.5 },
        Activation::Sigmoid,
        Activation::GeluErf,
        Activation::GeluTanh,
        Activation::Relu,
        Activation::Identity,
    ];

    /// The code the kernels use (`GLU_ACT_*` in `kernels/glu_params.cuh`).
    ///
    /// ```
    /// use swiglu::Activation;
    /// assert_eq!(Activation::Silu.code(), 0);
    /// // β is a separate kernel parameter, not part of the code.
    /// assert_eq!(Activation::Swish { beta: 2.0 }.code(), Activation::Swish { beta: 0.5 }.code());
    /// // Codes are distinct, in the order of `ALL`.
    /// let codes: Vec<i32> = Activation::ALL.iter().map(|a| a.code()).collect();
    /// assert_eq!(codes, (0..7).collect::<Vec<_>>());
    /// ```
    pub const fn code(self) -> i32 {
        match self {
            Activation::Silu => 0,
            Activation::Swish { .. } => 1,
            Activation::Sigmoid => 2,
            Activation::GeluErf => 3,
            Activation::GeluTanh => 4,
            Activation::Relu => 5,
            Activation::Identity => 6,
        }
    }

    /// β for Swish, 1 otherwise.
    ///
    /// ```
    /// use swiglu::Activation;
    /// assert_eq!(Activation::Swish { beta: 1.5 }.beta(), 1.5);
    /// assert_eq!(Activation::Silu.beta(), 1.0);
    /// assert_eq!(Activation::Relu.beta(), 1.0); // ignored by non-Swish activations
    /// ```
    pub const fn beta(self) -> f32 {
        match self {
            Activation::Swish { beta } => beta,
            _ => 1.0,
        }
    }

    /// Short name used by the CLI (`silu`, `swish`, `sigmoid`, `gelu`, `gelu-tanh`, `relu`, `identity`).
    ///
    /// ```
    /// use swiglu::Activation;
    /// assert_eq!(Activation::GeluErf.name(), "gelu");
    /// assert_eq!(Activation::GeluTanh.name(), "gelu-tanh");
    /// assert_eq!(Activation::Swish { beta: 1.5 }.name(), "swish"); // β is not in the name
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Swish { .. } => "swish",
            Activation::Sigmoid => "sigmoid",
            Activation::GeluErf => "gelu",
            Activation::GeluTanh => "gelu-tanh",
            Activation::Relu => "relu",
            Activation::Identity => "identity",
        }
    }

    /// Rejects a non-finite Swish β.
    ///
    /// Every entry point calls this first, so a bad β is an error, never
    /// NaN output.
    ///
    /// ```
    /// use swiglu::{Activation, GluError};
    /// assert!(Activation::Swish { beta: 2.0 }.validate().is_ok());
    /// assert!(matches!(
    ///     Activation::Swish { beta: f32::NAN }.validate(),
    ///     Err(GluError::BadActivation(_))
    /// ));
    /// ```
    pub fn validate(self) -> Result<()> {
        match self {
            Activation::Swish { beta } if !beta.is_finite() => Err(GluError::BadActivation(
                format!("Swish beta must be finite, got {beta}"),
            )),
            _ => Ok(()),
        }
    }

    /// `act(z)` in f64 (the reference).
    ///
    /// ```
    /// use swiglu::Activation;
    /// assert_eq!(Activation::Silu.apply_f64(0.0), 0.0);
    /// assert_eq!(Activation::Sigmoid.apply_f64(0.0), 0.5);
    /// assert_eq!(Activation::Relu.apply_f64(-2.0), 0.0);
    /// // Swish-β: z·σ(βz).
    /// let (z, beta) = (0.8, 1.5);
    /// let swish = Activation::Swish { beta: beta as f32 }.apply_f64(z);
    /// assert!((swish - z / (1.0 + (-beta * z).exp())).abs() < 1e-15);
    /// ```
    pub fn apply_f64(self, z: f64) -> f64 {
        match self {
            Activation::Silu => z * sigmoid64(z),
            Activation::Swish { beta } => z * sigmoid64(beta as f64 * z),
            Activation::Sigmoid => sigmoid64(z),
            Activation::GeluErf => 0.5 * z * erfc64(-z / std::f64::consts::SQRT_2),
            // z·σ(2u) equals 0.5·z·(1 + tanh u) without its cancellation for z ≪ 0.
            Activation::GeluTanh => z * sigmoid64(2.0 * gelu_tanh_inner64(z)),
            Activation::Relu => relu(z),
            Activation::Identity => z,
        }
    }

    /// `act'(z)` in f64 (the reference).
    ///
    /// ```
    /// use swiglu::Activation;
    /// // Matches a central finite difference of `apply_f64`.
    /// let (act, z, h) = (Activation::GeluErf, 0.3, 1e-6);
    /// let fd = (act.apply_f64(z + h) - act.apply_f64(z - h)) / (2.0 * h);
    /// assert!((act.grad_f64(z) - fd).abs() < 1e-8);
    /// assert_eq!(Activation::Identity.grad_f64(z), 1.0);
    /// ```
    pub fn grad_f64(self, z: f64) -> f64 {
        match self {
            Activation::Silu => swish_grad64(z, 1.0),
            Activation::Swish { beta } => swish_grad64(z, beta as f64),
            Activation::Sigmoid => sigmoid64(z) * sigmoid64(-z),
            Activation::GeluErf => {
                let cdf = 0.5 * erfc64(-z / std::f64::consts::SQRT_2);
                let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                cdf + z * pdf
            }
            Activation::GeluTanh => {
                // With s = σ(2u): d/dz z·s = s + 2·z·s·(1−s)·u'.
                let c = (2.0 / std::f64::consts::PI).sqrt();
                let u2 = 2.0 * gelu_tanh_inner64(z);
                let s = sigmoid64(u2);
                s + 2.0 * z * s * sigmoid64(-u2) * c * (1.0 + 3.0 * 0.044715 * z * z)
            }
            Activation::Relu => relu_grad(z),
            Activation::Identity => 1.0,
        }
    }

    /// `act(z)` in f32, as the CPU path and the kernels compute it.
    ///
    /// ```
    /// use swiglu::Activation;
    /// assert_eq!(Activation::Identity.apply_f32(-3.0), -3.0);
    /// assert!(Activation::Relu.apply_f32(f32::NAN).is_nan()); // NaN propagates
    /// // Agrees with the f64 reference to f32 accuracy.
    /// let (act, z) = (Activation::GeluTanh, -1.25f32);
    /// let (a32, a64) = (act.apply_f32(z), act.apply_f64(z as f64));
    /// assert!((a32 as f64 - a64).abs() < 1e-6);
    /// ```
    #[inline(always)]
    pub fn apply_f32(self, z: f32) -> f32 {
        match self {
            Activation::Silu => z * sigmoid32(z),
            Activation::Swish { beta } => z * sigmoid32(beta * z),
            Activation::Sigmoid => sigmoid32(z),
            // The erf form has no f32 std implementation; f64 is exact enough and rare enough.
            Activation::GeluErf => self.apply_f64(z as f64) as f32,
            Activation::GeluTanh => {
                let c = (2.0f32 / std::f32::consts::PI).sqrt();
                z * sigmoid32(2.0 * c * (z + 0.044715 * z * z * z))
            }
            Activation::Relu => relu(z),
            Activation::Identity => z,
        }
    }

    /// `act'(z)` in f32.
    ///
    /// ```
    /// use swiglu::Activation;
    /// assert_eq!(Activation::Silu.grad_f32(0.0), 0.5); // σ(0)
    /// assert_eq!(Activation::Relu.grad_f32(-1.0), 0.0);
    /// // Agrees with the f64 reference.
    /// let act = Activation::Swish { beta: 1.5 };
    /// assert!((act.grad_f32(0.7) as f64 - act.grad_f64(0.7)).abs() < 1e-6);
    /// ```
    #[inline(always)]
    pub fn grad_f32(self, z: f32) -> f32 {
        match self {
            // σ(−t) instead of 1 − σ(t): no cancellation for large t.
            Activation::Silu | Activation::Swish { .. } => {
                let t = self.beta() * z;
                let s = sigmoid32(t);
                s + t * s * sigmoid32(-t)
            }
            Activation::Sigmoid => sigmoid32(z) * sigmoid32(-z),
            // The GELUs are rare enough in training loops that the f64 form is fine here.
            Activation::GeluErf | Activation::GeluTanh => self.grad_f64(z as f64) as f32,
            Activation::Relu => relu_grad(z),
            Activation::Identity => 1.0,
        }
    }
}

#[inline(always)]
fn relu<F: PartialOrd + Default + Copy>(z: F) -> F {
    // `z > 0 ? z : 0` would turn NaN into 0; keep NaN.
    #[allow(clippy::eq_op)]
    if z > F::default() || z != z {
        z
    } else {
        F::default()
    }
}

/// ReLU's derivative: 1 above zero, 0 at or below, NaN for NaN.
#[inline(always)]
fn relu_grad<F: PartialOrd + From<u8> + Copy>(z: F) -> F {
    #[allow(clippy::eq_op)]
    if z != z {
        z
    } else if z > F::from(0) {
        F::from(1)
    } else {
        F::from(0)
    }
}

#[inline(always)]
fn sigmoid32(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn sigmoid64(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn swish_grad64(z: f64, beta: f64) -> f64 {
    let t = beta * z;
    let s = sigmoid64(t);
    s + t * s * sigmoid64(-t)
}

fn gelu_tanh_inner64(z: f64) -> f64 {
    (2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z * z * z)
}

/// erf in f64 (about 1e-15 absolute): a Taylor series for |x| < 2.5,
/// else `1 - erfc`.
pub(crate) fn erf64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let r = if ax < 2.5 {
        erf_taylor(ax)
    } else {
        1.0 - erfc_cf(ax)
    };
    if x < 0.0 { -r } else { r }
}

/// erfc in f64 with full relative accuracy in the tail (x ≫ 0), where
/// `1 - erf(x)` would cancel.
pub(crate) fn erfc64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x >= 2.5 { erfc_cf(x) } else { 1.0 - erf64(x) }
}

/// erf(x) for 0 ≤ x < 2.5: 2/√π · Σ (−1)ⁿ x^(2n+1) / (n!·(2n+1)).
fn erf_taylor(ax: f64) -> f64 {
    let mut term = ax;
    let mut sum = ax;
    let x2 = ax * ax;
    let mut n = 0.0;
    loop {
        n += 1.0;
        term *= -x2 / n;
        let add = term / (2.0 * n + 1.0);
        sum += add;
        if add.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// erfc(x) for x ≥ 2.5 by its continued fraction (modified Lentz).
fn erfc_cf(ax: f64) -> f64 {
    if ax.is_infinite() {
        return 0.0;
    }
    let tiny = 1e-300;
    let mut f = ax;
    let mut c = ax;
    let mut d = 0.0;
    let mut i = 1.0;
    loop {
        let a = i / 2.0;
        d = ax + a * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = ax + a / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        i += 1.0;
        if (delta - 1.0).abs() < 1e-16 || i > 500.0 {
            break;
        }
    }
    (-ax * ax).exp() / (f * std::f64::consts::PI.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-1.5, -0.966_105_146_475_310_7),
        ];
        for (x, want) in cases {
            assert!(
                (erf64(x) - want).abs() < 1e-14,
                "erf({x}) = {} want {want}",
                erf64(x)
            );
        }
    }

    #[test]
    fn erfc_keeps_relative_accuracy_in_the_tail() {
        // erfc(3) = 2.209049699858544e-5, erfc(5) = 1.5374597944280349e-12.
        assert!((erfc64(3.0) / 2.209_049_699_858_544e-5 - 1.0).abs() < 1e-13);
        assert!((erfc64(5.0) / 1.537_459_794_428_035e-12 - 1.0).abs() < 1e-13);
        assert!((erfc64(-1.0) - 1.842_700_792_949_715).abs() < 1e-14);
        // GELU far in the negative tail is tiny but not zero, in f32 too.
        assert!(Activation::GeluErf.apply_f32(-6.0) < 0.0);
        assert!(Activation::GeluTanh.apply_f32(-6.0) < 0.0);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for act in Activation::ALL {
            for &z in &[-3.1, -0.7, -0.01, 0.3, 1.2, 4.0] {
                let h = 1e-6;
                let fd = (act.apply_f64(z + h) - act.apply_f64(z - h)) / (2.0 * h);
                let g = act.grad_f64(z);
                assert!((fd - g).abs() < 1e-7, "{act:?} at {z}: fd {fd} vs {g}");
                let g32 = act.grad_f32(z as f32) as f64;
                assert!(
                    (g32 - g).abs() < 1e-5,
                    "{act:?} f32 grad at {z}: {g32} vs {g}"
                );
                let a32 = act.apply_f32(z as f32) as f64;
                assert!((a32 - act.apply_f64(z)).abs() < 1e-5, "{act:?} f32 at {z}");
            }
        }
    }

    #[test]
    fn nan_propagates_through_every_activation() {
        for act in Activation::ALL {
            assert!(act.apply_f64(f64::NAN).is_nan(), "{act:?}");
            assert!(act.apply_f32(f32::NAN).is_nan(), "{act:?}");
            if act != Activation::Identity {
                assert!(act.grad_f32(f32::NAN).is_nan(), "{act:?}");
            }
        }
    }
}
