//! The fused forward kernel and the unfused baseline.
//!
//! Fused: the `[M, N]` output is cut into tiles of `mb` rows by `nb` columns.
//! Each tile is one rayon task that computes the matching gate and up tiles
//! with two sequential `gemm` calls (f32 accumulation, the weights read in
//! place through strides), applies bias + `act(g)·u` in f32 and rounds once
//! into `out`. Only two `mb × nb` f32 tiles per task are ever live, never the
//! `[M, 2N]` intermediate.

use super::blas::{Mat, MatMut, PAR_MIN, matmul, to_f32};
use crate::types::{Activation, Element};
use crate::weights::GluWeights;
use gemm::Parallelism;
use rayon::prelude::*;
use std::borrow::Cow;

/// Rows per tile (at most). Large on purpose: `gemm` packs the weight block
/// of every call, so each row block costs one packing pass over the weights;
/// 512 rows keep that below 1% of the arithmetic (64-row tiles measured 35%
/// slower than the unfused path at M=512, K=1024, N=2816).
pub(crate) const TILE_M: usize = 512;
/// Target elements per tile (`mb · nb`): 512 × 64, i.e. 128 KiB per f32 tile.
const TILE_AREA: usize = TILE_M * 64;
/// Column-tile bounds.
const TILE_N_MIN: usize = 16;
const TILE_N_MAX: usize = 2048;
/// Tiles to aim for, whatever the thread count (see [`plan`]).
const TASKS: usize = 32;
/// `gemm` computes outputs of at most this many elements with a dot-product
/// kernel, measured 2× slower than its GEMV path for skinny tiles.
const DOT_PATH_MAX: usize = 256;

/// Tile sizes `(mb, nb)` for an `[m, n]` output.
///
/// Rows: balanced blocks of at most [`TILE_M`]. Columns: about [`TASKS`]
/// tiles in all, at most [`TILE_AREA`] elements each (so wide tiles for small
/// M), never so small that `gemm` takes its slow dot-product path. Widths are
/// multiples of 16 (the f32 micro-kernel width).
///
/// The plan depends on the shape only, not on the thread count, so results
/// are bit-for-bit the same on every pool size.
pub(crate) fn plan(m: usize, n: usize) -> (usize, usize) {
    let mb = m.div_ceil(m.div_ceil(TILE_M).max(1)).max(1);
    let row_blocks = m.div_ceil(mb).max(1);
    let col_blocks = TASKS.div_ceil(row_blocks);
    let cap = (TILE_AREA / mb).clamp(TILE_N_MIN, TILE_N_MAX);
    let floor = (DOT_PATH_MAX / mb + 1)
        .next_multiple_of(TILE_N_MIN)
        .min(cap);
    let nb = n.div_ceil(col_blocks).min(cap).next_multiple_of(TILE_N_MIN);
    (mb, nb.max(floor).min(n).max(1))
}

/// Extra memory of the fused path in bytes for an `[m, n]` output with
/// reduction dim `k` and element size `elem`: the per-task f32 gate and up
/// tiles of every rayon thread, plus the f32 copies of `x` and both weights
/// that 16-bit inputs need. Saturates instead of overflowing.
pub(crate) fn working_set_bytes(m: usize, n: usize, k: usize, elem: usize) -> usize {
    let (mb, nb) = plan(m, n);
    let threads = rayon::current_num_threads().max(1);
    let tiles = (2 * mb * nb).saturating_mul(threads);
    let widened = if elem == 4 {
        0
    } else {
        m.saturating_mul(k)
            .saturating_add(k.saturating_mul(n).saturating_mul(2))
    };
    tiles.saturating_add(widened).saturating_mul(4)
}

/// A raw pointer that may be shared between rayon tasks writing disjoint parts.
#[derive(Clone, Copy)]
struct SendPtr<P>(*mut P);
// SAFETY: used only for writes to disjoint tiles (see `fused`).
unsafe impl<P> Send for SendPtr<P> {}
// SAFETY: as above.
unsafe impl<P> Sync for SendPtr<P> {}

impl<P> SendPtr<P> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> *mut P {
        self.0
    }
}

/// Per-task scratch, reused across the tasks one rayon split runs.
struct Scratch {
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// An optional f32 vector, borrowed when the input already is f32.
pub(crate) type MaybeF32<'a> = Option<Cow<'a, [f32]>>;

/// The biases as f32 (borrowed for f32 inputs).
pub(crate) fn biases<'a, T: Element>(w: &GluWeights<'a, T>) -> (MaybeF32<'a>, MaybeF32<'a>) {
    (w.bias_gate().map(to_f32), w.bias_up().map(to_f32))
}

/// Writes one row of the epilogue: `out[c] = round(act(g[c] + bg[c]) · (u[c] + bu[c]))`,
/// also storing the biased pre-activations when `save` is given.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn epilogue_row<T: Element>(
    act: Activation,
    g: &[f32],
    u: &[f32],
    bg: Option<&[f32]>,
    bu: Option<&[f32]>,
    out: &mut [T],
    save: Option<(&mut [f32], &mut [f32])>,
) {
    let cols = out.len();
    let (g, u) = (&g[..cols], &u[..cols]);
    let bias = |b: Option<&[f32]>, c: usize| b.map_or(0.0, |b| b[c]);
    match save {
        None => {
            for c in 0..cols {
                let gv = g[c] + bias(bg, c);
                let uv = u[c] + bias(bu, c);
                out[c] = T::from_f32(act.apply_f32(gv) * uv);
            }
        }
        Some((sg, su)) => {
            for c in 0..cols {
                let gv = g[c] + bias(bg, c);
                let uv = u[c] + bias(bu, c);
                sg[c] = gv;
                su[c] = uv;
                out[c] = T::from_f32(act.apply_f32(gv) * uv);
            }
        }
    }
}

/// The fused forward on validated inputs: `x` is `[m, k]`, `out` is `[m, n]`.
/// When `save` is given (two `[m, n]` f32 buffers) the biased gate and up
/// pre-activations are stored there too.
///
/// 16-bit inputs are widened to f32 once per call (copies of `x` and both
/// weights, `(M·K + 2·K·N)·4` bytes, made in parallel): each row block of `x`
/// meets every column block of the weights and vice versa, so widening per
/// tile would redo each conversion many times over.
pub(crate) fn fused<T: Element>(
    x: &[T],
    m: usize,
    w: &GluWeights<T>,
    act: Activation,
    out: &mut [T],
    save: Option<(&mut [f32], &mut [f32])>,
) {
    let (k, n) = (w.k(), w.n());
    debug_assert_eq!(x.len(), m * k);
    debug_assert_eq!(out.len(), m * n);
    if m == 0 {
        return;
    }
    let wg32 = to_f32(w.gate());
    let wu32 = to_f32(w.up());
    let wg = Mat::weight(&wg32, k, n, w.layout());
    let wu = Mat::weight(&wu32, k, n, w.layout());
    let (bg, bu) = biases(w);
    let (bg, bu) = (bg.as_deref(), bu.as_deref());
    let x32 = to_f32(x);
    let xm = Mat::row_major(&x32, m, k);

    let (mb, nb) = plan(m, n);
    let (row_blocks, col_blocks) = (m.div_ceil(mb), n.div_ceil(nb));
    let out_ptr = SendPtr(out.as_mut_ptr());
    let save_ptrs = save.map(|(g, u)| {
        debug_assert!(g.len() == m * n && u.len() == m * n);
        (SendPtr(g.as_mut_ptr()), SendPtr(u.as_mut_ptr()))
    });

    // Row blocks vary fastest, so a thread sweeping consecutive tasks keeps
    // one weight column block hot in cache while it walks down x.
    (0..row_blocks * col_blocks).into_par_iter().for_each_init(
        || Scratch {
            gate: vec![0.0; mb * nb],
            up: vec![0.0; mb * nb],
        },
        |s, t| {
            let (rb, cb) = (t % row_blocks, t / row_blocks);
            let (r0, c0) = (rb * mb, cb * nb);
            let (rows, cols) = (mb.min(m - r0), nb.min(n - c0));
            let xb = xm.rows(r0, rows);
            let mut gt = MatMut::new(&mut s.gate, rows, cols, nb, 1);
            matmul(&mut gt, xb, wg.cols(c0, cols), false, Parallelism::None);
            let mut ut = MatMut::new(&mut s.up, rows, cols, nb, 1);
            matmul(&mut ut, xb, wu.cols(c0, cols), false, Parallelism::None);

            for r in 0..rows {
                let off = (r0 + r) * n + c0;
                // SAFETY: tasks own disjoint tiles (rb, cb), so rows r0..r0+rows
                // and columns c0..c0+cols of `out` (and of the save buffers,
                // both [m, n]) are written by this task alone; `off + cols <=
                // m*n` because r0 + r < m and c0 + cols <= n. The buffers
                // outlive the parallel loop, which joins before returning.
                let o = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(off), cols) };
                let sv = save_ptrs.map(|(g, u)| unsafe {
                    (
                        std::slice::from_raw_parts_mut(g.get().add(off), cols),
                        std::slice::from_raw_parts_mut(u.get().add(off), cols),
                    )
                });
                let (g, u) = (&s.gate[r * nb..r * nb + cols], &s.up[r * nb..r * nb + cols]);
                let (bgc, buc) = (bg.map(|b| &b[c0..c0 + cols]), bu.map(|b| &b[c0..c0 + cols]));
                epilogue_row(act, g, u, bgc, buc, o, sv);
            }
        },
    );
}

/// The two full `[m, n]` f32 pre-activation GEMMs `x·Wg` and `x·Wu` (biases
/// not added), each multi-threaded inside `gemm`. `x32` is `x` widened.
pub(crate) fn full_gemms<T: Element>(
    x32: &[f32],
    m: usize,
    w: &GluWeights<T>,
) -> (Vec<f32>, Vec<f32>) {
    let (k, n) = (w.k(), w.n());
    let xm = Mat::row_major(x32, m, k);
    let mut g = vec![0.0f32; m * n];
    let mut u = vec![0.0f32; m * n];
    {
        let wg32 = to_f32(w.gate());
        let wg = Mat::weight(&wg32, k, n, w.layout());
        matmul(
            &mut MatMut::row_major(&mut g, m, n),
            xm,
            wg,
            false,
            Parallelism::Rayon(0),
        );
    }
    {
        let wu32 = to_f32(w.up());
        let wu = Mat::weight(&wu32, k, n, w.layout());
        matmul(
            &mut MatMut::row_major(&mut u, m, n),
            xm,
            wu,
            false,
            Parallelism::Rayon(0),
        );
    }
    (g, u)
}

/// Rows per parallel chunk for an elementwise pass over `[.., n]` rows.
pub(crate) fn rows_per_chunk(n: usize) -> usize {
    (PAR_MIN / n.max(1)).max(1)
}

/// The unfused baseline on validated inputs: [`full_gemms`] into two `[m, n]`
/// f32 buffers, then a separate bias + activation + multiply pass.
pub(crate) fn unfused<T: Element>(
    x: &[T],
    m: usize,
    w: &GluWeights<T>,
    act: Activation,
    out: &mut [T],
) {
    let n = w.n();
    if m == 0 {
        return;
    }
    let (g, u) = full_gemms(&to_f32(x), m, w);
    let (bg, bu) = biases(w);
    let (bg, bu) = (bg.as_deref(), bu.as_deref());
    let rows = rows_per_chunk(n);
    out.par_chunks_mut(rows * n)
        .zip(g.par_chunks(rows * n).zip(u.par_chunks(rows * n)))
        .for_each(|(o, (g, u))| {
            for ((o, g), u) in o.chunks_mut(n).zip(g.chunks(n)).zip(u.chunks(n)) {
                epilogue_row(act, g, u, bg, bu, o, None);
            }
        });
}
