//! The cuBLAS baselines B1, B2, B3: what users run today without fusion.

use super::blas::Operand;
use super::elementwise::EltOp;
use super::params::{GluEltParams, GluParams};
use super::{CudaElement, CudaGlu, Path};
use crate::error::Result;
use crate::types::{DType, WeightLayout};
use cudarc::driver::DevicePtrMut;
use std::ffi::c_void;

impl CudaGlu {
    /// Row-major `C[m, n] (ldc) = x[m, k] · W` where `W` is `[k, n]` in `layout`.
    ///
    /// # Safety
    /// As [`CudaGlu::gemm_rm`]: `x`, `w`, `c` hold `m*k`, `k*n` and
    /// `(m-1)*ldc + n` elements of `dtype`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn gemm_rowmajor(
        &self,
        dtype: DType,
        x: u64,
        w: u64,
        layout: WeightLayout,
        c: u64,
        (m, n, k): (i64, i64, i64),
        ldc: i64,
    ) -> Result<()> {
        let (m, n, k) = (m as usize, n as usize, k as usize);
        let wop = Operand::weight(w, dtype, layout, n, k, false);
        let xop = Operand::rm(x, dtype, k);
        // SAFETY: forwarded from the caller.
        unsafe {
            self.gemm_rm(
                (m, n, k),
                xop,
                wop,
                Operand::rm(c, dtype, ldc as usize),
                0.0,
            )
        }
    }

    /// Runs baseline `path` for the validated parameters `p`.
    pub(crate) fn baseline<T: CudaElement>(
        &self,
        path: Path,
        p: &GluParams,
        layout: WeightLayout,
    ) -> Result<()> {
        let (m, n, k) = (p.m, p.n, p.k);
        let (mu, nu) = (m as usize, n as usize);
        let d = T::DTYPE;
        // SAFETY: uninitialised scratch is fully written by the GEMMs below
        // before anything reads it.
        let mut scratch = unsafe { self.stream.alloc::<T>(2 * mu * nu) }?;
        let (sp, _gs) = scratch.device_ptr_mut(&self.stream);
        let esize = d.size() as u64;
        let mut e = GluEltParams::empty(mu, nu, p.act, p.beta);
        e.bias_a = p.b_gate;
        e.bias_b = p.b_up;
        e.out0 = p.out;
        // SAFETY (all blocks below): `p` was validated by `forward` (x [m,k],
        // weights [k*n] in `layout`, biases [n] or null, out [m,n]); the
        // scratch holds 2*m*n elements, used either as two [m,n] halves
        // (gate at sp, up at sp + m*n) or as one [m,2n] matrix.
        unsafe {
            match path {
                Path::CublasSplit | Path::CublasEager => {
                    let (g, u) = (sp, sp + (mu * nu) as u64 * esize);
                    self.gemm_rowmajor(d, p.x as u64, p.w_gate as u64, layout, g, (m, n, k), n)?;
                    self.gemm_rowmajor(d, p.x as u64, p.w_up as u64, layout, u, (m, n, k), n)?;
                    e.a = g as *const c_void;
                    e.b = u as *const c_void;
                    if path == Path::CublasSplit {
                        self.launch_elt(EltOp::ActAndMul, d, &e)?;
                    } else {
                        // Eager: act in place into the gate buffer, then multiply.
                        let mut act = e;
                        act.out0 = g as *mut c_void;
                        act.bias_b = std::ptr::null();
                        self.launch_elt(EltOp::ActInplace, d, &act)?;
                        let mut mul = e;
                        mul.bias_a = std::ptr::null();
                        self.launch_elt(EltOp::MulBias, d, &mul)?;
                    }
                }
                Path::CublasConcat => {
                    // gate_up is [2N, K] (NK): one GEMM with N' = 2N into [m, 2n].
                    self.gemm_rowmajor(
                        d,
                        p.x as u64,
                        p.w_gate as u64,
                        WeightLayout::NK,
                        sp,
                        (m, 2 * n, k),
                        2 * n,
                    )?;
                    e.a = sp as *const c_void;
                    e.b = (sp + nu as u64 * esize) as *const c_void;
                    e.ld_a = 2 * n;
                    e.ld_b = 2 * n;
                    self.launch_elt(EltOp::ActAndMul, d, &e)?;
                }
                _ => unreachable!("not a baseline"),
            }
        }
        Ok(())
    }
}
