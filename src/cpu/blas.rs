//! Bounds-checked strided f32 matrix views over the `gemm` crate, and the
//! element-type conversions the CPU path needs.

use crate::types::{Element, WeightLayout};
use gemm::Parallelism;
use rayon::prelude::*;
use std::any::TypeId;
use std::borrow::Cow;

/// Elements below which conversions and elementwise passes stay on one thread.
pub(crate) const PAR_MIN: usize = 1 << 15;

/// `true` if `(rows, cols)` with strides `(rs, cs)` stays inside `len` elements.
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    (rows - 1)
        .checked_mul(rs)
        .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)))
        .is_some_and(|last| last < len)
}

/// A read-only strided f32 matrix: element `(i, j)` is `data[i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A view; panics (an internal bug, never user input) if it does not fit.
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            fits(data.len(), rows, cols, rs, cs),
            "matrix view out of bounds"
        );
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// A dense row-major `[rows, cols]` matrix.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// A weight matrix of logical shape `[k, n]` stored in `layout`.
    pub(crate) fn weight(data: &'a [f32], k: usize, n: usize, layout: WeightLayout) -> Self {
        match layout {
            WeightLayout::KN => Self::new(data, k, n, n, 1),
            WeightLayout::NK => Self::new(data, k, n, 1, k),
        }
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            data: self.data,
        }
    }

    /// Rows `r0..r0+nr`.
    pub(crate) fn rows(self, r0: usize, nr: usize) -> Self {
        assert!(r0 + nr <= self.rows);
        if nr == 0 || self.cols == 0 {
            return Self {
                data: &[],
                rows: nr,
                ..self
            };
        }
        Self::new(&self.data[r0 * self.rs..], nr, self.cols, self.rs, self.cs)
    }

    /// Columns `c0..c0+nc`.
    pub(crate) fn cols(self, c0: usize, nc: usize) -> Self {
        self.t().rows(c0, nc).t()
    }
}

/// A mutable strided f32 matrix: element `(i, j)` is `data[i*rs + j*cs]`.
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatMut<'a> {
    /// A view; panics (an internal bug, never user input) if it does not fit or
    /// if distinct elements could alias (`rs == cs` with both dims above 1).
    pub(crate) fn new(data: &'a mut [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            fits(data.len(), rows, cols, rs, cs),
            "matrix view out of bounds"
        );
        assert!(rows <= 1 || cols <= 1 || rs != cs, "aliasing destination");
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// A dense row-major `[rows, cols]` matrix.
    pub(crate) fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// A weight-shaped destination of logical shape `[k, n]` stored in `layout`.
    pub(crate) fn weight(data: &'a mut [f32], k: usize, n: usize, layout: WeightLayout) -> Self {
        match layout {
            WeightLayout::KN => Self::new(data, k, n, n, 1),
            WeightLayout::NK => Self::new(data, k, n, 1, k),
        }
    }
}

/// `dst = a·b` (or `dst += a·b` when `accumulate`), f32 accumulation.
///
/// Shapes are internal invariants: a mismatch is a bug and panics.
pub(crate) fn matmul(
    dst: &mut MatMut<'_>,
    a: Mat<'_>,
    b: Mat<'_>,
    accumulate: bool,
    par: Parallelism,
) {
    assert!(
        a.rows == dst.rows && b.cols == dst.cols && a.cols == b.rows,
        "matmul shapes"
    );
    let (m, n, k) = (dst.rows, dst.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.rs + j * dst.cs] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: every view was bounds-checked against its slice when built
    // (`fits`), the shapes agree (asserted above), `dst` is borrowed mutably
    // and cannot alias `a` or `b` (they are shared borrows), and its distinct
    // elements do not alias (checked in `MatMut::new`). Strides fit `isize`
    // because they index into slices, whose lengths do.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

/// `s` viewed as `f32` if `T` is `f32`.
pub(crate) fn as_f32<T: Element>(s: &[T]) -> Option<&[f32]> {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32 (same TypeId), so this is the identity cast.
        Some(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
    } else {
        None
    }
}

/// `s` viewed as mutable `f32` if `T` is `f32`.
pub(crate) fn as_f32_mut<T: Element>(s: &mut [T]) -> Option<&mut [f32]> {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32 (same TypeId), so this is the identity cast.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
    } else {
        None
    }
}

/// Widens `src` into `dst` (same length), in parallel for large inputs.
pub(crate) fn widen_into<T: Element>(src: &[T], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len());
    if src.len() >= PAR_MIN {
        dst.par_chunks_mut(PAR_MIN)
            .zip(src.par_chunks(PAR_MIN))
            .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, s)| *d = s.to_f32()));
    } else {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.to_f32());
    }
}

/// `src` as f32: borrowed for `f32`, a widened copy otherwise.
pub(crate) fn to_f32<T: Element>(src: &[T]) -> Cow<'_, [f32]> {
    match as_f32(src) {
        Some(s) => Cow::Borrowed(s),
        None => {
            let mut v = vec![0.0f32; src.len()];
            widen_into(src, &mut v);
            Cow::Owned(v)
        }
    }
}

/// Rounds `src` into `dst` (same length), in parallel for large inputs.
pub(crate) fn narrow_into<G: Element>(src: &[f32], dst: &mut [G]) {
    debug_assert_eq!(src.len(), dst.len());
    if src.len() >= PAR_MIN {
        dst.par_chunks_mut(PAR_MIN)
            .zip(src.par_chunks(PAR_MIN))
            .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, s)| *d = G::from_f32(*s)));
    } else {
        dst.iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = G::from_f32(*s));
    }
}
