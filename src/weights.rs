//! Shape checking and the host-side weight view.

use crate::error::{GluError, Result};
use crate::types::{Element, WeightLayout};

/// Rows of an input of shape `[.., K]`: the product of the leading dims.
///
/// Fails if the shape is empty, its last dim is not `k`, or the product overflows.
///
/// ```
/// use swiglu::{rows_of, GluError};
/// assert_eq!(rows_of(&[2, 3, 8], 8).unwrap(), 6); // [B, S, K] -> M = B·S
/// assert_eq!(rows_of(&[8], 8).unwrap(), 1);
/// assert_eq!(rows_of(&[0, 8], 8).unwrap(), 0); // M = 0 is valid
/// assert!(matches!(rows_of(&[2, 4], 8), Err(GluError::DimMismatch { .. })));
/// assert!(matches!(rows_of(&[], 8), Err(GluError::BadShape { .. })));
/// ```
pub fn rows_of(shape: &[usize], k: usize) -> Result<usize> {
    let Some((&last, lead)) = shape.split_last() else {
        return Err(GluError::BadShape {
            what: "x",
            shape: shape.to_vec(),
            why: "x needs at least one dimension (its last is K)",
        });
    };
    if last != k {
        return Err(GluError::DimMismatch {
            what: "last dimension of x vs K of the weights",
            expected: k,
            got: last,
        });
    }
    lead.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| GluError::Overflow {
            what: "rows of x",
            dims: lead.to_vec(),
            limit: "usize",
        })
}

/// `a * b` or an [`GluError::Overflow`] naming `what`.
pub(crate) fn checked_elems(what: &'static str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b)
        .filter(|&v| v <= isize::MAX as usize)
        .ok_or_else(|| GluError::Overflow {
            what,
            dims: vec![a, b],
            limit: "isize::MAX",
        })
}

/// `a * b` elements of `T`, or an [`GluError::Overflow`] naming `what`
/// when that many elements would take more than `isize::MAX` bytes (more
/// than any host or device allocation can hold): the check before a buffer
/// of that size is allocated.
pub(crate) fn checked_len<T>(what: &'static str, a: usize, b: usize) -> Result<usize> {
    let size = std::mem::size_of::<T>().max(1);
    a.checked_mul(b)
        .filter(|&v| {
            v.checked_mul(size)
                .is_some_and(|bytes| bytes <= isize::MAX as usize)
        })
        .ok_or_else(|| GluError::Overflow {
            what,
            dims: vec![a, b],
            limit: "isize::MAX bytes",
        })
}

/// Checks that `len` equals the element count of `shape`.
pub(crate) fn check_len(what: &'static str, shape: &[usize], len: usize) -> Result<()> {
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| GluError::Overflow {
            what,
            dims: shape.to_vec(),
            limit: "usize",
        })?;
    if expected != len {
        return Err(GluError::LengthMismatch {
            what,
            shape: shape.to_vec(),
            expected,
            got: len,
        });
    }
    Ok(())
}

/// The gate and up projection weights (and optional biases) of one gated FFN,
/// borrowed from host memory.
///
/// Logical shapes: `Wg`, `Wu` are `[K, N]` (stored as [`WeightLayout::KN`] or
/// [`WeightLayout::NK`]), biases `[N]`. Nothing is copied.
///
/// ```
/// use swiglu::{cpu, Activation, GluWeights, WeightLayout};
/// let (k, n) = (2, 2);
/// let wg = [1.0f32, 0.0, 0.0, 1.0]; // identity, [K, N]
/// let wu = [2.0f32, 0.0, 0.0, 3.0];
/// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::KN)?;
/// // Bilinear: out = (x·Wg) ⊙ (x·Wu) = [1·2, 2·6].
/// let out = cpu::forward_alloc(&[1.0f32, 2.0], &[1, k], &w, Activation::Identity)?;
/// assert_eq!(out, [2.0, 12.0]);
/// # Ok::<(), swiglu::GluError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GluWeights<'a, T> {
    gate: &'a [T],
    up: &'a [T],
    k: usize,
    n: usize,
    layout: WeightLayout,
    bias_gate: Option<&'a [T]>,
    bias_up: Option<&'a [T]>,
}

impl<'a, T: Element> GluWeights<'a, T> {
    /// Separate gate and up matrices, each of logical shape `[k, n]` stored in `layout`.
    ///
    /// ```
    /// use swiglu::{GluWeights, WeightLayout};
    /// let (k, n) = (4, 3);
    /// let wg = vec![0.1f32; k * n];
    /// let wu = vec![0.2f32; k * n];
    /// let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK).unwrap();
    /// assert_eq!((w.k(), w.n()), (4, 3));
    /// assert!(GluWeights::new(&wg[1..], &wu, k, n, WeightLayout::NK).is_err());
    /// ```
    pub fn new(
        gate: &'a [T],
        up: &'a [T],
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
        })
    }

    /// One concatenated `[2N, K]` tensor (the `gate_up_proj` of merged
    /// checkpoints): rows `0..N` are the gate, rows `N..2N` the up projection.
    /// Split without copying.
    ///
    /// ```
    /// use swiglu::{GluWeights, WeightLayout};
    /// let (k, n) = (3, 2);
    /// // [2N, K] = 4 rows of 3: gate rows 0..2, up rows 2..4.
    /// let gate_up: Vec<f32> = (0..2 * n * k).map(|i| i as f32).collect();
    /// let w = GluWeights::from_gate_up(&gate_up, k, n).unwrap();
    /// assert_eq!(w.layout(), WeightLayout::NK);
    /// assert_eq!(w.gate(), &gate_up[..n * k]);
    /// assert_eq!(w.up(), &gate_up[n * k..]);
    /// assert_eq!(w.gate_at(2, 1), 5.0); // gate row n = 1, column k = 2
    /// assert_eq!(w.up_at(0, 0), 6.0); // first element of the up half
    /// // The length must be exactly 2·N·K.
    /// assert!(GluWeights::from_gate_up(&gate_up[1..], k, n).is_err());
    /// ```
    pub fn from_gate_up(gate_up: &'a [T], k: usize, n: usize) -> Result<Self> {
        let (gate, up) = gate_up.split_at(check_gate_up(k, n, gate_up.len())?);
        Self::new(gate, up, k, n, WeightLayout::NK)
    }

    /// Attaches optional biases of length `n` to the gate and up projections.
    ///
    /// ```
    /// use swiglu::{cpu, Activation, GluError, GluWeights, WeightLayout};
    /// let (k, n) = (2, 3);
    /// let zeros = vec![0.0f32; k * n];
    /// let (bg, bu) = (vec![1.0f32; n], vec![2.0f32; n]);
    /// let w = GluWeights::new(&zeros, &zeros, k, n, WeightLayout::KN)?
    ///     .with_biases(Some(&bg), Some(&bu))?;
    /// assert_eq!(w.bias_gate(), Some(&bg[..]));
    /// // With zero weights the output is act(bg) · bu.
    /// let out = cpu::forward_alloc(&[5.0f32, 6.0], &[1, k], &w, Activation::Identity)?;
    /// assert_eq!(out, vec![2.0; n]);
    /// // A bias must have N elements.
    /// let bad = GluWeights::new(&zeros, &zeros, k, n, WeightLayout::KN)?.with_biases(None, Some(&bg[..2]));
    /// assert!(matches!(bad, Err(GluError::LengthMismatch { what: "up bias", .. })));
    /// # Ok::<(), GluError>(())
    /// ```
    pub fn with_biases(
        mut self,
        bias_gate: Option<&'a [T]>,
        bias_up: Option<&'a [T]>,
    ) -> Result<Self> {
        check_biases(self.n, bias_gate.map(<[T]>::len), bias_up.map(<[T]>::len))?;
        self.bias_gate = bias_gate;
        self.bias_up = bias_up;
        Ok(self)
    }

    /// Input features K.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let w = [0.0f32; 12];
    /// let gw = GluWeights::new(&w, &w, 4, 3, WeightLayout::NK)?; // K = 4, N = 3
    /// assert_eq!(gw.k(), 4);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn k(&self) -> usize {
        self.k
    }
    /// Hidden (output) features N.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let gate_up = [0.0f32; 2 * 3 * 4]; // [2N, K]
    /// let w = GluWeights::from_gate_up(&gate_up, 4, 3)?; // K = 4, N = 3
    /// assert_eq!(w.n(), 3);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn n(&self) -> usize {
        self.n
    }
    /// Storage layout of both matrices.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let w = [0.0f32; 6];
    /// let kn = GluWeights::new(&w, &w, 2, 3, WeightLayout::KN)?;
    /// assert_eq!(kn.layout(), WeightLayout::KN);
    /// // A concatenated gate_up tensor is always [N, K] per half.
    /// assert_eq!(GluWeights::from_gate_up(&[0.0f32; 12], 2, 3)?.layout(), WeightLayout::NK);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn layout(&self) -> WeightLayout {
        self.layout
    }
    /// The gate matrix, as stored.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let (wg, wu) = ([1.0f32, 2.0], [3.0f32, 4.0]);
    /// let w = GluWeights::new(&wg, &wu, 2, 1, WeightLayout::KN)?;
    /// assert_eq!(w.gate(), &wg);
    /// assert_eq!(w.gate().as_ptr(), wg.as_ptr()); // borrowed, not copied
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn gate(&self) -> &'a [T] {
        self.gate
    }
    /// The up matrix, as stored.
    ///
    /// ```
    /// # use swiglu::GluWeights;
    /// let gate_up = [1.0f32, 2.0, 3.0, 4.0]; // [2N, K] with K = 2, N = 1
    /// let w = GluWeights::from_gate_up(&gate_up, 2, 1)?;
    /// assert_eq!(w.up(), &gate_up[2..]); // rows N..2N
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn up(&self) -> &'a [T] {
        self.up
    }
    /// The gate bias, if any.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let (w, b) = ([0.0f32; 6], [0.5f32; 3]);
    /// let gw = GluWeights::new(&w, &w, 2, 3, WeightLayout::KN)?;
    /// assert_eq!(gw.bias_gate(), None);
    /// assert_eq!(gw.with_biases(Some(&b), None)?.bias_gate(), Some(&b[..]));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn bias_gate(&self) -> Option<&'a [T]> {
        self.bias_gate
    }
    /// The up bias, if any.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let (w, b) = ([0.0f32; 6], [0.5f32; 3]);
    /// let gw = GluWeights::new(&w, &w, 2, 3, WeightLayout::KN)?.with_biases(Some(&b), None)?;
    /// assert_eq!(gw.bias_up(), None); // only the gate has a bias
    /// assert_eq!(gw.with_biases(None, Some(&b))?.bias_up(), Some(&b[..]));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn bias_up(&self) -> Option<&'a [T]> {
        self.bias_up
    }
    /// Logical element `(k, n)` of the gate matrix.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let nk = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [N = 2, K = 3]: row n holds Wg[.., n]
    /// let w = GluWeights::new(&nk, &nk, 3, 2, WeightLayout::NK)?;
    /// assert_eq!(w.gate_at(0, 1), 4.0); // k = 0, n = 1: index 1·K + 0
    /// assert_eq!(w.gate_at(2, 0), 3.0);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `k ≥ K` or `n ≥ N`, as slice indexing does (without the check an
    /// out-of-range `k` of an `[N, K]` matrix would read the next row);
    /// [`GluWeights::get_gate`] returns `None` instead.
    #[inline(always)]
    #[track_caller]
    pub fn gate_at(&self, k: usize, n: usize) -> T {
        match self.get_gate(k, n) {
            Some(v) => v,
            None => self.out_of_range(k, n),
        }
    }
    /// Logical element `(k, n)` of the gate matrix, or `None` when `k ≥ K`
    /// or `n ≥ N`.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let nk = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [N = 2, K = 3]
    /// let w = GluWeights::new(&nk, &nk, 3, 2, WeightLayout::NK)?;
    /// assert_eq!(w.get_gate(2, 0), Some(3.0));
    /// assert_eq!(w.get_gate(3, 0), None); // not row 1's first element
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    #[inline(always)]
    pub fn get_gate(&self, k: usize, n: usize) -> Option<T> {
        (k < self.k && n < self.n).then(|| self.gate[self.layout.index(k, n, self.k, self.n)])
    }
    /// Logical element `(k, n)` of the up matrix, or `None` when `k ≥ K` or
    /// `n ≥ N`.
    #[inline(always)]
    pub fn get_up(&self, k: usize, n: usize) -> Option<T> {
        (k < self.k && n < self.n).then(|| self.up[self.layout.index(k, n, self.k, self.n)])
    }
    #[cold]
    #[track_caller]
    fn out_of_range(&self, k: usize, n: usize) -> ! {
        panic!(
            "weight element (k = {k}, n = {n}) out of range for K = {}, N = {}",
            self.k, self.n
        )
    }
    /// Logical element `(k, n)` of the up matrix.
    ///
    /// ```
    /// # use swiglu::{GluWeights, WeightLayout};
    /// let (wg, wu) = ([0.0f32; 6], [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]); // [K = 3, N = 2]
    /// let w = GluWeights::new(&wg, &wu, 3, 2, WeightLayout::KN)?;
    /// assert_eq!(w.up_at(2, 1), 6.0); // k = 2, n = 1: index 2·N + 1
    /// assert_eq!(w.up_at(1, 0), 3.0);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `k ≥ K` or `n ≥ N` ([`GluWeights::get_up`] returns `None`).
    #[inline(always)]
    #[track_caller]
    pub fn up_at(&self, k: usize, n: usize) -> T {
        match self.get_up(k, n) {
            Some(v) => v,
            None => self.out_of_range(k, n),
        }
    }
}

/// Checks optional gate and up bias lengths against `n`.
pub(crate) fn check_biases(n: usize, gate_len: Option<usize>, up_len: Option<usize>) -> Result<()> {
    if let Some(len) = gate_len {
        check_len("gate bias", &[n], len)?;
    }
    if let Some(len) = up_len {
        check_len("up bias", &[n], len)?;
    }
    Ok(())
}

/// Checks separate gate and up matrices of logical shape `[k, n]` in `layout`.
pub(crate) fn check_pair(
    k: usize,
    n: usize,
    layout: WeightLayout,
    gate_len: usize,
    up_len: usize,
) -> Result<()> {
    check_dims(k, n)?;
    let shape = match layout {
        WeightLayout::KN => [k, n],
        WeightLayout::NK => [n, k],
    };
    check_len("gate weight", &shape, gate_len)?;
    check_len("up weight", &shape, up_len)
}

/// Checks a concatenated `[2N, K]` gate_up tensor of `len` elements; returns
/// where the up half starts (`N * K`).
pub(crate) fn check_gate_up(k: usize, n: usize, len: usize) -> Result<usize> {
    check_dims(k, n)?;
    let two_n = n.checked_mul(2).ok_or_else(|| GluError::Overflow {
        what: "2N",
        dims: vec![2, n],
        limit: "usize",
    })?;
    check_len("gate_up weight", &[two_n, k], len)?;
    Ok(n * k)
}

/// K and N must be positive and `K * N` must fit.
pub(crate) fn check_dims(k: usize, n: usize) -> Result<()> {
    if k == 0 || n == 0 {
        return Err(GluError::BadShape {
            what: "weights",
            shape: vec![k, n],
            why: "K and N must be positive",
        });
    }
    checked_elems("K*N", k, n)?;
    Ok(())
}

/// Validates `x` of shape `x_shape` against `k` and an output of `out_len`
/// elements; returns M.
pub(crate) fn check_io(
    x_len: usize,
    x_shape: &[usize],
    k: usize,
    n: usize,
    out_len: usize,
) -> Result<usize> {
    let m = rows_of(x_shape, k)?;
    check_len("x", x_shape, x_len)?;
    let mn = checked_elems("M*N", m, n)?;
    if out_len != mn {
        let mut shape = x_shape.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        return Err(GluError::LengthMismatch {
            what: "out",
            shape,
            expected: mn,
            got: out_len,
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_flattens_leading_dims() {
        assert_eq!(rows_of(&[2, 3, 5], 5).unwrap(), 6);
        assert_eq!(rows_of(&[5], 5).unwrap(), 1);
        assert_eq!(rows_of(&[0, 5], 5).unwrap(), 0);
        assert!(matches!(rows_of(&[], 5), Err(GluError::BadShape { .. })));
        assert!(matches!(
            rows_of(&[2, 4], 5),
            Err(GluError::DimMismatch { .. })
        ));
        assert!(matches!(
            rows_of(&[usize::MAX, 2, 5], 5),
            Err(GluError::Overflow { .. })
        ));
    }

    #[test]
    fn weights_validate_lengths_and_biases() {
        let w = vec![1.0f32; 12];
        assert!(GluWeights::new(&w, &w, 3, 4, WeightLayout::KN).is_ok());
        assert!(matches!(
            GluWeights::new(&w[..11], &w, 3, 4, WeightLayout::KN),
            Err(GluError::LengthMismatch {
                what: "gate weight",
                ..
            })
        ));
        assert!(matches!(
            GluWeights::new(&w, &w, 0, 4, WeightLayout::KN),
            Err(GluError::BadShape { .. })
        ));
        let gw = GluWeights::new(&w, &w, 3, 4, WeightLayout::NK).unwrap();
        let b = vec![0.0f32; 3];
        assert!(matches!(
            gw.with_biases(Some(&b), None),
            Err(GluError::LengthMismatch {
                what: "gate bias",
                ..
            })
        ));
        assert!(matches!(
            gw.with_biases(None, Some(&b)),
            Err(GluError::LengthMismatch {
                what: "up bias",
                ..
            })
        ));
        assert!(matches!(
            GluWeights::<f32>::new(&[], &[], usize::MAX, 3, WeightLayout::NK),
            Err(GluError::Overflow { .. })
        ));
    }

    #[test]
    fn gate_up_splits_without_copy() {
        let (k, n) = (3, 2);
        let gu: Vec<f32> = (0..2 * n * k).map(|i| i as f32).collect();
        let w = GluWeights::from_gate_up(&gu, k, n).unwrap();
        assert_eq!(w.gate().as_ptr(), gu.as_ptr());
        // up row 0 starts at N*K.
        assert_eq!(w.up_at(0, 0), (n * k) as f32);
        assert_eq!(w.gate_at(2, 1), (k + 2) as f32);
        assert!(GluWeights::from_gate_up(&gu[1..], k, n).is_err());
    }
}
