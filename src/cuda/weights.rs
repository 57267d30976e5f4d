//! Device-side weight views.

use super::CudaElement;
use crate::error::Result;
use crate::types::WeightLayout;
use crate::weights::{check_biases, check_gate_up, check_pair};
use cudarc::driver::CudaView;

/// Gate and up weights (and optional biases) of one gated FFN in device
/// memory. The device twin of [`crate::GluWeights`]: same shapes, same
/// layouts, no copies.
///
/// ```no_run
/// # fn main() -> swiglu::Result<()> {
/// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
/// use swiglu::{bf16, WeightLayout};
/// let g = CudaGlu::new(0)?;
/// let (k, n) = (4096, 11008);
/// // Separate gate_proj / up_proj as checkpoints store them ([N, K] each) ...
/// let wg = g.stream().alloc_zeros::<bf16>(n * k)?;
/// let wu = g.stream().alloc_zeros::<bf16>(n * k)?;
/// let w = DeviceGluWeights::new(wg.as_view(), wu.as_view(), k, n, WeightLayout::NK)?;
/// assert!(!w.is_concatenated());
/// // ... or one merged gate_up_proj [2N, K] (one GEMM over both in the baselines).
/// let gu = g.stream().alloc_zeros::<bf16>(2 * n * k)?;
/// let bias = g.stream().alloc_zeros::<bf16>(n)?;
/// let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n)?
///     .with_biases(Some(bias.as_view()), None)?;
/// assert!(w.is_concatenated());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DeviceGluWeights<'a, T> {
    pub(crate) gate: CudaView<'a, T>,
    pub(crate) up: CudaView<'a, T>,
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) layout: WeightLayout,
    pub(crate) bias_gate: Option<CudaView<'a, T>>,
    pub(crate) bias_up: Option<CudaView<'a, T>>,
    /// True when `up` starts right where `gate` ends in one allocation with
    /// layout NK, i.e. the pair is one `[2N, K]` tensor (baseline B2 needs it).
    pub(crate) concatenated: bool,
}

impl<'a, T: CudaElement> DeviceGluWeights<'a, T> {
    /// Separate gate and up matrices of logical shape `[k, n]` stored in `layout`.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// use swiglu::{f16, GluError, WeightLayout};
    /// let g = CudaGlu::new(0)?;
    /// let (k, n) = (64, 128);
    /// let wg = g.stream().clone_htod(&vec![f16::from_f32(0.01); k * n])?;
    /// let wu = g.stream().clone_htod(&vec![f16::from_f32(0.02); k * n])?;
    /// let w = DeviceGluWeights::new(wg.as_view(), wu.as_view(), k, n, WeightLayout::KN)?;
    /// assert_eq!((w.k(), w.n(), w.layout()), (k, n, WeightLayout::KN));
    /// assert!(!w.is_concatenated());
    /// // Lengths are checked as on the host.
    /// let short = DeviceGluWeights::new(wg.slice(1..), wu.as_view(), k, n, WeightLayout::KN);
    /// assert!(matches!(short, Err(GluError::LengthMismatch { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(
        gate: CudaView<'a, T>,
        up: CudaView<'a, T>,
        k: usize,
        n: usize,
        layout: WeightLayout,
    ) -> Result<Self> {
        check_pair(k, n, layout, gate.len(), up.len())?;
        Ok(Self {
            gate,
            up,
            k,
            n,
            layout,
            bias_gate: None,
            bias_up: None,
            concatenated: false,
        })
    }

    /// One concatenated `[2N, K]` tensor (`gate_up_proj`): rows `0..N` gate,
    /// `N..2N` up. Split without copying.
    ///
    /// The only form [`Path::CublasConcat`](super::Path::CublasConcat) takes.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// use swiglu::{bf16, WeightLayout};
    /// let g = CudaGlu::new(0)?;
    /// let (k, n) = (64, 128);
    /// let gate_up = g.stream().clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// let w = DeviceGluWeights::from_gate_up(gate_up.as_view(), k, n)?;
    /// assert_eq!(w.layout(), WeightLayout::NK);
    /// assert!(w.is_concatenated());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_gate_up(gate_up: CudaView<'a, T>, k: usize, n: usize) -> Result<Self> {
        let (gate, up) = gate_up.split_at(check_gate_up(k, n, gate_up.len())?);
        let mut w = Self::new(gate, up, k, n, WeightLayout::NK)?;
        w.concatenated = true;
        Ok(w)
    }

    /// Attaches optional biases of length `n`.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// use swiglu::GluError;
    /// let g = CudaGlu::new(0)?;
    /// let (k, n) = (32, 16);
    /// let gate_up = g.stream().clone_htod(&vec![0.01f32; 2 * n * k])?;
    /// let bias = g.stream().clone_htod(&vec![0.1f32; n])?;
    /// let w = DeviceGluWeights::from_gate_up(gate_up.as_view(), k, n)?
    ///     .with_biases(Some(bias.as_view()), None)?;
    /// assert_eq!(w.n(), n);
    /// // A bias must hold N elements.
    /// let bad = DeviceGluWeights::from_gate_up(gate_up.as_view(), k, n)?
    ///     .with_biases(None, Some(bias.slice(1..)));
    /// assert!(matches!(bad, Err(GluError::LengthMismatch { what: "up bias", .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_biases(
        mut self,
        bias_gate: Option<CudaView<'a, T>>,
        bias_up: Option<CudaView<'a, T>>,
    ) -> Result<Self> {
        check_biases(
            self.n,
            bias_gate.as_ref().map(|b| b.len()),
            bias_up.as_ref().map(|b| b.len()),
        )?;
        self.bias_gate = bias_gate;
        self.bias_up = bias_up;
        Ok(self)
    }

    /// Input features K.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// # use swiglu::WeightLayout;
    /// let g = CudaGlu::new(0)?;
    /// let wg = g.stream().clone_htod(&vec![0.0f32; 64 * 32])?; // [K, N] = [64, 32]
    /// let w = DeviceGluWeights::new(wg.as_view(), wg.as_view(), 64, 32, WeightLayout::KN)?;
    /// assert_eq!(w.k(), 64);
    /// # Ok(())
    /// # }
    /// ```
    pub fn k(&self) -> usize {
        self.k
    }
    /// Hidden features N.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// let g = CudaGlu::new(0)?;
    /// let gate_up = g.stream().clone_htod(&vec![0.0f32; 2 * 32 * 64])?; // [2N, K]
    /// let w = DeviceGluWeights::from_gate_up(gate_up.as_view(), 64, 32)?;
    /// assert_eq!(w.n(), 32);
    /// # Ok(())
    /// # }
    /// ```
    pub fn n(&self) -> usize {
        self.n
    }
    /// Storage layout.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// # use swiglu::WeightLayout;
    /// let g = CudaGlu::new(0)?;
    /// let wg = g.stream().clone_htod(&vec![0.0f32; 64 * 32])?; // [N, K] = [32, 64]
    /// let w = DeviceGluWeights::new(wg.as_view(), wg.as_view(), 64, 32, WeightLayout::NK)?;
    /// assert_eq!(w.layout(), WeightLayout::NK);
    /// # Ok(())
    /// # }
    /// ```
    pub fn layout(&self) -> WeightLayout {
        self.layout
    }
    /// Whether gate and up form one `[2N, K]` tensor.
    ///
    /// Only [`DeviceGluWeights::from_gate_up`] makes one, even when separate
    /// views happen to be adjacent.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights};
    /// # use swiglu::WeightLayout;
    /// let g = CudaGlu::new(0)?;
    /// let (k, n) = (64, 32);
    /// let gate_up = g.stream().clone_htod(&vec![0.0f32; 2 * n * k])?;
    /// assert!(DeviceGluWeights::from_gate_up(gate_up.as_view(), k, n)?.is_concatenated());
    /// let (wg, wu) = (gate_up.slice(..n * k), gate_up.slice(n * k..));
    /// assert!(!DeviceGluWeights::new(wg, wu, k, n, WeightLayout::NK)?.is_concatenated());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_concatenated(&self) -> bool {
        self.concatenated
    }
}
