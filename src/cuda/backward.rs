//! Backward-pass building blocks on the device.

use super::elementwise::EltOp;
use super::params::GluEltParams;
use super::{CudaElement, CudaGlu};
use crate::error::{GluError, Result};
use crate::types::Activation;
use crate::weights::checked_elems;
use cudarc::driver::{DevicePtr, DevicePtrMut};
use std::ffi::c_void;

impl CudaGlu {
    /// The gate stage of the backward pass, in one elementwise pass computed
    /// in f32: `dGate = dOut ⊙ up ⊙ act'(gate)` and `dUp = dOut ⊙ act(gate)`,
    /// where `gate` and `up` are the saved pre-activations (biases included),
    /// all `[rows, n]` row-major.
    ///
    /// [`CudaGlu::backward_into`] runs this stage itself; it is public for
    /// callers that keep the pre-activations in their own buffers.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// use swiglu::Activation;
    /// let g = CudaGlu::new(0)?;
    /// let s = g.stream();
    /// let (rows, n) = (4, 8);
    /// let gate = s.clone_htod(&vec![0.0f32; rows * n])?; // σ(0) = 0.5, silu'(0) = 0.5
    /// let up = s.clone_htod(&vec![3.0f32; rows * n])?;
    /// let d_out = s.clone_htod(&vec![1.0f32; rows * n])?;
    /// let mut d_gate = s.alloc_zeros::<f32>(rows * n)?;
    /// let mut d_up = s.alloc_zeros::<f32>(rows * n)?;
    /// g.gate_grads(&gate, &up, &d_out, rows, n, Activation::Silu, &mut d_gate, &mut d_up)?;
    /// assert!(s.clone_dtoh(&d_gate)?.iter().all(|&v| v == 1.5)); // 1 · 3 · 0.5
    /// assert!(s.clone_dtoh(&d_up)?.iter().all(|&v| v == 0.0)); // 1 · silu(0)
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn gate_grads<T: CudaElement, I: DevicePtr<T>, O: DevicePtrMut<T>>(
        &self,
        gate: &I,
        up: &I,
        d_out: &I,
        rows: usize,
        n: usize,
        act: Activation,
        d_gate: &mut O,
        d_up: &mut O,
    ) -> Result<()> {
        act.validate()?;
        let len = checked_elems("rows*N", rows, n)?;
        for (what, got) in [
            ("gate", gate.len()),
            ("up", up.len()),
            ("d_out", d_out.len()),
            ("d_gate", d_gate.len()),
            ("d_up", d_up.len()),
        ] {
            if got != len {
                return Err(GluError::LengthMismatch {
                    what,
                    shape: vec![rows, n],
                    expected: len,
                    got,
                });
            }
        }
        let s = &self.stream;
        let (g, _g1) = gate.device_ptr(s);
        let (u, _g2) = up.device_ptr(s);
        let (d, _g3) = d_out.device_ptr(s);
        let (dg, _g4) = d_gate.device_ptr_mut(s);
        let (du, _g5) = d_up.device_ptr_mut(s);
        let mut p = GluEltParams::empty(rows, n, act.code(), act.beta());
        p.a = g as *const c_void;
        p.b = u as *const c_void;
        p.c = d as *const c_void;
        p.out0 = dg as *mut c_void;
        p.out1 = du as *mut c_void;
        // SAFETY: all five buffers were checked to hold rows*n elements of T
        // and stay borrowed (guards above) until the launch is queued.
        unsafe { self.launch_elt(EltOp::GluBwd, T::DTYPE, &p) }
    }
}
