//! The crate's gated FFN on the CPU (`swiglu::cpu`) or a GPU (`swiglu::cuda`).
//!
//! On the GPU only the gated FFN runs on the device: its input and weights
//! are copied to the device for the forward pass and its output back, and
//! the upstream gradient to the device and the gradients back for the
//! backward pass, every step. Fine for an example, slow for real training.
#![allow(clippy::too_many_arguments)]

use swiglu::cpu::{self, SaveMode};
use swiglu::{Activation, GluWeights, WeightLayout};

/// Errors of this example.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The gated FFN's activation.
pub const ACT: Activation = Activation::Silu;

/// Where the gated FFN runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA if `CudaGlu::new(0)` works, else the CPU.
    Auto,
    /// Always the CPU.
    Cpu,
    /// CUDA or fail.
    Cuda,
}

/// Runs the crate's gated FFN on the CPU or a GPU.
pub enum Glu {
    /// `swiglu::cpu`.
    Cpu,
    /// `swiglu::cuda`.
    #[cfg(feature = "cuda")]
    Cuda(Box<swiglu::cuda::CudaGlu>),
}

/// What the gated FFN's forward keeps for its backward.
pub enum GluSaved {
    /// The CPU path's saved pre-activations.
    Cpu(cpu::Saved<f32>),
    /// The device input, weights and saved state.
    #[cfg(feature = "cuda")]
    Cuda(Box<CudaSaved>),
}

/// The device copies the backward pass reuses.
#[cfg(feature = "cuda")]
pub struct CudaSaved {
    x: cudarc::driver::CudaSlice<f32>,
    w: [cudarc::driver::CudaSlice<f32>; 4],
    saved: swiglu::cuda::DeviceSaved<f32>,
}

/// Gradients of one gated FFN: `dx`, `dWg`, `dWu`, `dbg`, `dbu`.
pub type GluGrads = [Vec<f32>; 5];

impl Glu {
    /// Picks the device; `Err` only when CUDA was demanded and is unusable.
    pub fn select(choice: DeviceChoice) -> Res<(Self, String)> {
        if choice == DeviceChoice::Cpu {
            return Ok((Glu::Cpu, "cpu".into()));
        }
        #[cfg(feature = "cuda")]
        match swiglu::cuda::CudaGlu::new(0) {
            Ok(g) => {
                let name = g.device_name().unwrap_or_else(|_| "?".into());
                // A training loop allocates the same buffers every step
                // (inputs, saved state, gradients): the device's memory pool
                // keeps them between steps instead of returning them at each
                // synchronization, as a framework's caching allocator does.
                g.set_pool_release_threshold(u64::MAX)?;
                return Ok((Glu::Cuda(Box::new(g)), format!("cuda ({name})")));
            }
            Err(e) if choice == DeviceChoice::Cuda => return Err(e.into()),
            Err(e) => return Ok((Glu::Cpu, format!("cpu (cuda not used: {e})"))),
        }
        #[cfg(not(feature = "cuda"))]
        if choice == DeviceChoice::Cuda {
            return Err("this build has no cuda feature".into());
        }
        #[allow(unreachable_code)]
        Ok((Glu::Cpu, "cpu (built without the cuda feature)".into()))
    }

    /// `out = silu(x·Wg + bg) ⊙ (x·Wu + bu)` for `x: [m, d]`, `w = [Wg, Wu, bg, bu]`
    /// with `Wg, Wu: [d, h]`.
    pub fn forward(
        &self,
        x: &[f32],
        m: usize,
        d: usize,
        w: [&[f32]; 4],
        out: &mut [f32],
    ) -> Res<GluSaved> {
        let h = w[2].len();
        match self {
            Glu::Cpu => {
                let gw = GluWeights::new(w[0], w[1], d, h, WeightLayout::KN)?
                    .with_biases(Some(w[2]), Some(w[3]))?;
                let s = cpu::forward_train(x, &[m, d], &gw, ACT, SaveMode::PreActivations, out)?;
                Ok(GluSaved::Cpu(s))
            }
            #[cfg(feature = "cuda")]
            Glu::Cuda(g) => {
                let s = g.stream();
                let dx = s.clone_htod(x)?;
                let dw = [
                    s.clone_htod(w[0])?,
                    s.clone_htod(w[1])?,
                    s.clone_htod(w[2])?,
                    s.clone_htod(w[3])?,
                ];
                let gw = cuda_weights(&dw, d, h)?;
                let mut dout = s.alloc_zeros::<f32>(m * h)?;
                let saved =
                    g.forward_train(&dx, &[m, d], &gw, ACT, SaveMode::PreActivations, &mut dout)?;
                s.memcpy_dtoh(&dout, out)?;
                Ok(GluSaved::Cuda(Box::new(CudaSaved {
                    x: dx,
                    w: dw,
                    saved,
                })))
            }
        }
    }

    /// Gradients given `d_out: [m, h]`.
    pub fn backward(
        &self,
        x: &[f32],
        m: usize,
        d: usize,
        w: [&[f32]; 4],
        saved: &GluSaved,
        d_out: &[f32],
    ) -> Res<GluGrads> {
        let h = w[2].len();
        match (self, saved) {
            (Glu::Cpu, GluSaved::Cpu(s)) => {
                let gw = GluWeights::new(w[0], w[1], d, h, WeightLayout::KN)?
                    .with_biases(Some(w[2]), Some(w[3]))?;
                let g = cpu::backward::<f32, f32>(x, &[m, d], &gw, ACT, s, d_out)?;
                let none = || Box::<dyn std::error::Error>::from("missing bias gradient");
                Ok([
                    g.dx,
                    g.d_w_gate,
                    g.d_w_up,
                    g.d_b_gate.ok_or_else(none)?,
                    g.d_b_up.ok_or_else(none)?,
                ])
            }
            #[cfg(feature = "cuda")]
            (Glu::Cuda(g), GluSaved::Cuda(cs)) => {
                let s = g.stream();
                let gw = cuda_weights(&cs.w, d, h)?;
                let dd = s.clone_htod(d_out)?;
                let mut gr = swiglu::cuda::DeviceGrads::<f32>::zeros(g, m, &gw)?;
                g.backward_into(&cs.x, &[m, d], &gw, ACT, &cs.saved, &dd, &mut gr, false)?;
                let bias = |b: &Option<cudarc::driver::CudaSlice<f32>>| -> Res<Vec<f32>> {
                    Ok(s.clone_dtoh(b.as_ref().ok_or("missing bias gradient")?)?)
                };
                Ok([
                    s.clone_dtoh(&gr.dx)?,
                    s.clone_dtoh(&gr.d_w_gate)?,
                    s.clone_dtoh(&gr.d_w_up)?,
                    bias(&gr.d_b_gate)?,
                    bias(&gr.d_b_up)?,
                ])
            }
            #[cfg(feature = "cuda")]
            _ => Err("saved state from another device".into()),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_weights(
    w: &[cudarc::driver::CudaSlice<f32>; 4],
    d: usize,
    h: usize,
) -> Res<swiglu::cuda::DeviceGluWeights<'_, f32>> {
    Ok(
        swiglu::cuda::DeviceGluWeights::new(
            w[0].as_view(),
            w[1].as_view(),
            d,
            h,
            WeightLayout::KN,
        )?
        .with_biases(Some(w[2].as_view()), Some(w[3].as_view()))?,
    )
}
