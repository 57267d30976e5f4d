//! Launchers for the elementwise kernels of `kernels/act_and_mul.cu`.

use super::CudaGlu;
use super::params::{ELT_THREADS, GluEltParams};
use crate::error::Result;
use crate::types::DType;
use cudarc::driver::{CudaFunction, LaunchConfig, PushKernelArg};

/// The elementwise kernels (see `GluEltParams` in `kernels/glu_params.cuh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EltOp {
    /// `out0 = act(a + bias_a) * (b + bias_b)`
    ActAndMul,
    /// `out0 = act(a + bias_a)`
    ActInplace,
    /// `out0 = a * (b + bias_b)`
    MulBias,
    /// `out0 = dOut * u * act'(g)`, `out1 = dOut * act(g)`
    GluBwd,
    /// `out0 = b * act'(a)`: the backward of the activation alone, one of
    /// the separate kernels of [`TrainingKernels::Eager`].
    ///
    /// [`TrainingKernels::Eager`]: super::TrainingKernels::Eager
    ActBwd,
    /// `out0 = round_T(a)` with `a` **f32** (`dtype` names the output, f16
    /// or bf16): the one rounding of a sum accumulated in f32.
    Narrow,
}

impl EltOp {
    fn name(self) -> &'static str {
        match self {
            EltOp::ActAndMul => "act_and_mul",
            EltOp::ActInplace => "act_inplace",
            EltOp::MulBias => "mul_bias",
            EltOp::GluBwd => "glu_bwd",
            EltOp::ActBwd => "act_bwd",
            EltOp::Narrow => "narrow",
        }
    }
}

impl CudaGlu {
    /// The kernel of `op` for `dtype`, loading its module on first use:
    /// callers that launch it after writing their outputs ask for it first,
    /// so that a missing kernel fails the call before anything is written.
    pub(crate) fn elt_function(&self, op: EltOp, dtype: DType) -> Result<CudaFunction> {
        self.function("act_and_mul", &format!("{}_{}", op.name(), dtype.name()))
    }

    /// Launches one elementwise kernel.
    ///
    /// # Safety
    /// Every non-null pointer in `p` must address device memory on this
    /// context holding at least `(rows - 1) * ld + n` elements of `dtype`
    /// (biases `n`; for [`EltOp::Narrow`], `a` holds f32 elements and
    /// `dtype` is f16 or bf16), valid until the stream reaches this launch;
    /// outputs must not overlap inputs other than in place (`out0 == a`,
    /// same `ld`; never for `Narrow`).
    pub(crate) unsafe fn launch_elt(
        &self,
        op: EltOp,
        dtype: DType,
        p: &GluEltParams,
    ) -> Result<()> {
        let total = (p.rows as u64).saturating_mul(p.n as u64);
        if total == 0 {
            return Ok(());
        }
        let f = self.elt_function(op, dtype)?;
        // A grid-stride loop covers any size; 8 elements per thread per pass
        // fills the chip without launching more blocks than useful.
        let want = total.div_ceil(ELT_THREADS as u64 * 8);
        let grid = want.clamp(1, self.sm_count as u64 * 16) as u32;
        let cfg = LaunchConfig {
            grid_dim: (grid, 1, 1),
            block_dim: (ELT_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the caller guarantees the pointers and extents (see above).
        unsafe { self.stream.launch_builder(&f).arg(p).launch(cfg) }?;
        Ok(())
    }
}
