//! Row-major GEMM on cuBLAS (which is column-major), f32 compute.

use super::CudaGlu;
use crate::error::{GluError, Result};
use crate::types::{DType, WeightLayout};
use cudarc::cublas::{result as blas, sys as bsys};
use std::ffi::{c_int, c_void};

pub(crate) fn to_c_int(what: &'static str, v: usize) -> Result<c_int> {
    c_int::try_from(v).map_err(|_| GluError::Overflow {
        what,
        dims: vec![v],
        limit: "cuBLAS's 32-bit int",
    })
}

pub(crate) fn cuda_dtype(d: DType) -> bsys::cudaDataType {
    match d {
        DType::F32 => bsys::cudaDataType::CUDA_R_32F,
        DType::F16 => bsys::cudaDataType::CUDA_R_16F,
        DType::BF16 => bsys::cudaDataType::CUDA_R_16BF,
    }
}

/// One operand of [`CudaGlu::gemm_rm`]: a device address, its element type,
/// its row stride in elements, and whether it is used transposed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operand {
    pub ptr: u64,
    pub dtype: DType,
    pub ld: usize,
    pub trans: bool,
}

impl Operand {
    /// A row-major matrix used as stored: `ld` elements between rows.
    pub fn rm(ptr: u64, dtype: DType, ld: usize) -> Self {
        Operand {
            ptr,
            dtype,
            ld,
            trans: false,
        }
    }

    /// The same matrix, used transposed.
    pub fn transposed(self) -> Self {
        Operand {
            trans: !self.trans,
            ..self
        }
    }

    /// One projection's `[k, n]` weight `W` (`transpose == false`: the
    /// forward's `x · W`) or `Wᵀ` (`true`: the backward's `dH · Wᵀ`), stored
    /// in `layout`. KN storage is `W` row-major, NK storage is `Wᵀ`.
    pub fn weight(
        ptr: u64,
        dtype: DType,
        layout: WeightLayout,
        n: usize,
        k: usize,
        transpose: bool,
    ) -> Self {
        let (ld, stored_as_w) = match layout {
            WeightLayout::KN => (n, true),
            WeightLayout::NK => (k, false),
        };
        Operand {
            ptr,
            dtype,
            ld,
            trans: stored_as_w == transpose,
        }
    }
}

impl CudaGlu {
    /// Row-major `C[m, n] = op(A)[m, k] · op(B)[k, n] + beta · C`, f32 compute
    /// (no TF32, unless [`CudaGlu::set_allow_tf32`] is on, both inputs are
    /// f32 and m, n, k all exceed 1: then `CUBLAS_COMPUTE_32F_FAST_TF32`). `A` is stored `[m, k]`
    /// (or `[k, m]` when transposed), `B` `[k, n]` (or `[n, k]`), `C` `[m, n]`,
    /// each row-major with its `ld`.
    ///
    /// # Safety
    /// Each operand must address a device allocation on this context that
    /// holds the rows its shape and `ld` imply, live until the stream passes
    /// this call; `c` must not overlap `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn gemm_rm(
        &self,
        (m, n, k): (usize, usize, usize),
        a: Operand,
        b: Operand,
        c: Operand,
        beta: f32,
    ) -> Result<()> {
        if m == 0 || n == 0 {
            return Ok(());
        }
        let (mi, ni, ki) = (to_c_int("M", m)?, to_c_int("N", n)?, to_c_int("K", k)?);
        let (lda, ldb, ldc) = (
            to_c_int("lda", a.ld)?,
            to_c_int("ldb", b.ld)?,
            to_c_int("ldc", c.ld)?,
        );
        let op = |t: bool| {
            if t {
                bsys::cublasOperation_t::CUBLAS_OP_T
            } else {
                bsys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let alpha = 1.0f32;
        // tf32 only for real matrix products: the rank-1 bias broadcast
        // (k = 1) and the bias-gradient column sums (m = 1) stay exact, so
        // an opted-in f32 bias is added exactly, as in the forward kernels.
        let real_product = m > 1 && n > 1 && k > 1;
        let compute = if self.allow_tf32()
            && real_product
            && a.dtype == DType::F32
            && b.dtype == DType::F32
        {
            bsys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
        } else {
            bsys::cublasComputeType_t::CUBLAS_COMPUTE_32F
        };
        // Column-major view: Cᵀ[n, m] = op(B)ᵀ[n, k] · op(A)ᵀ[k, m]; a row-major
        // matrix is its own transpose in column-major, so the ops carry over.
        // SAFETY: extents guaranteed by the caller; alpha/beta are host f32
        // scalars as CUBLAS_COMPUTE_32F expects in the default pointer mode.
        unsafe {
            blas::gemm_ex(
                *self.blas.handle(),
                op(b.trans),
                op(a.trans),
                ni,
                mi,
                ki,
                (&alpha) as *const f32 as *const c_void,
                b.ptr as *const c_void,
                cuda_dtype(b.dtype),
                ldb,
                a.ptr as *const c_void,
                cuda_dtype(a.dtype),
                lda,
                (&beta) as *const f32 as *const c_void,
                c.ptr as *mut c_void,
                cuda_dtype(c.dtype),
                ldc,
                compute,
                bsys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_operands_follow_the_storage_layout() {
        let (n, k) = (3, 5);
        let op = |layout, transpose| {
            let o = Operand::weight(7, DType::BF16, layout, n, k, transpose);
            assert_eq!((o.ptr, o.dtype), (7, DType::BF16));
            (o.ld, o.trans)
        };
        // KN storage is W [k, n] row-major (ld n): W as is, Wᵀ transposed.
        assert_eq!(op(WeightLayout::KN, false), (n, false));
        assert_eq!(op(WeightLayout::KN, true), (n, true));
        // NK storage is Wᵀ [n, k] row-major (ld k): W transposed, Wᵀ as is.
        assert_eq!(op(WeightLayout::NK, false), (k, true));
        assert_eq!(op(WeightLayout::NK, true), (k, false));
        let a = Operand::rm(9, DType::F16, 4);
        assert_eq!((a.ptr, a.dtype, a.ld, a.trans), (9, DType::F16, 4, false));
        assert!(a.transposed().trans && !a.transposed().transposed().trans);
    }
}
