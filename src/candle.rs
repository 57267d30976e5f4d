//! [candle](https://github.com/huggingface/candle) integration (feature
//! `candle`): the fused gated FFN as a candle [`Module`] that trains inside
//! candle's autograd.
//!
//! - [`GatedFfn`] is `act(x·Wgᵀ + bg) ⊙ (x·Wuᵀ + bu)`, the part of a
//!   LLaMA-style MLP a candle model usually writes as
//!   `(silu(gate_proj(x)) * up_proj(x))`, run as one candle `CustomOp`
//!   whose forward is this crate's fused [`cpu::forward`] and whose backward
//!   is [`cpu::backward`].
//! - [`SwiGluMlp`] is the whole MLP: [`GatedFfn`] followed by `down_proj`
//!   (a [`candle_nn::Linear`]), the drop-in replacement for a LLaMA `Mlp`.
//! - [`glu`] is the functional form.
//!
//! Weights follow the `nn.Linear` convention, `[N, K]` (`[out, in]`) per
//! projection, and are loaded from a [`VarBuilder`] under the Hugging Face
//! names `gate_proj`, `up_proj`, `down_proj`, or a merged `gate_up_proj`
//! (`[2N, K]`, gate rows first). `x` is `[.., K]`, the output `[.., N]`;
//! f32, f16 and bf16 are supported (all inputs must share one dtype);
//! arithmetic is f32 and the output is rounded once, as everywhere in this
//! crate.
//!
//! **Devices.** candle's CPU device always; candle's CUDA devices (compute
//! capability 8.0 or newer) with the `candle-cuda` feature, which runs this
//! crate's CUDA kernels
//! ([`crate::cuda::CudaGlu`]) on the candle device's own stream, reading
//! candle's device buffers in place and returning new device storage (no
//! host round trips, forward and backward). Without that feature CUDA (and
//! always Metal) tensors give a candle error saying so. `candle-cuda` turns
//! on candle's `cuda` feature, so building it needs what candle's needs:
//! nvcc (for candle-kernels, with `CUDA_COMPUTE_CAP` where no GPU is
//! visible) and the CUDA libraries at link time (candle links cudarc
//! dynamically, so the binaries need libcuda to start). f32 tensors on CUDA
//! take the exact kernel unless candle's own
//! `candle_core::cuda::set_gemm_reduced_precision_f32(true)` allows tf32 for
//! f32 matmuls; then they take the tf32 tensor-core kernel too.
//!
//! **Autograd.** When any input is a [`Var`](candle_core::Var) (or depends
//! on one), the forward pass keeps what the backward pass needs according to
//! [`SaveMode`] (by default the pre-activations, held by the graph until it
//! is dropped; [`SaveMode::Recompute`] keeps nothing and recomputes them in
//! the backward pass). On the CPU they are kept in f32 (`2·M·N·4` bytes). On
//! CUDA they are kept in the tensors' dtype (`2·M·N·size` bytes), and the
//! GPU training forward (cuBLAS GEMMs by default, see
//! [`crate::cuda::TrainingKernels`]) rounds them to that dtype before the
//! activation: with bf16/f16 and a `Var` in the graph, a CUDA output can
//! differ from the no-grad forward (one rounding) by about one more
//! rounding, as in frameworks that keep their activations in 16 bits.
//! Gradients come back for `x`, the weights and the biases, in their dtype.
//! Without a `Var` in sight nothing is saved.
//!
//! **Copies.** `x` and the weights are used in place when contiguous
//! (otherwise made contiguous first, as candle's own matmul does). With
//! biases the op takes the weights as one `[2N, K]` tensor, so separate
//! `gate_proj`/`up_proj` weights *with* biases are concatenated on every
//! call (bias-free LLaMA-style MLPs and merged checkpoints never are).
//!
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//! use swiglu::candle::SwiGluMlp;
//! use swiglu::Activation;
//!
//! let dev = Device::Cpu;
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
//! // hidden_size 16, intermediate_size 40, LLaMA names under `mlp.`.
//! let mlp = SwiGluMlp::load(vb.pp("mlp"), 16, 40, Activation::Silu, false)?;
//! let x = Tensor::randn(0f32, 1.0, (2, 5, 16), &dev)?;
//! let y = mlp.forward(&x)?;
//! assert_eq!(y.dims(), &[2, 5, 16]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use crate::cpu::{self, Grads, SaveMode, Saved};
use crate::types::{Activation, Element, WeightLayout};
use crate::weights::GluWeights;
use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CudaStorage, CustomOp2, CustomOp3, Layout, MetalStorage, Module, Shape, Storage,
    Tensor, WithDType, bail,
};
use candle_nn::VarBuilder;
use std::any::Any;
use std::sync::Mutex;

pub use candle_core::{Error, Result};

/// The element types the op computes in: f32, f16, bf16 (for both crates).
trait Elem: Element + WithDType {}
impl<T: Element + WithDType> Elem for T {}

/// M (the product of `x`'s leading dims) and the output's `M·N` elements
/// of `T`, checked before the output is allocated: an empty last dim lets
/// the leading dims multiply past `usize`, and N > K an output larger than
/// any buffer.
fn out_len<T>(x_dims: &[usize], k: usize, n: usize) -> Result<(usize, usize)> {
    let m = crate::weights::rows_of(x_dims, k).map_err(glu_err)?;
    let mn = crate::weights::checked_len::<T>("M*N", m, n).map_err(glu_err)?;
    Ok((m, mn))
}

fn glu_err(e: crate::GluError) -> Error {
    Error::wrap(e)
}

fn unsupported_device(what: &str) -> Error {
    let hint = if what.contains("Cuda") || what.contains("CUDA") {
        "candle CUDA tensors need swiglu's `candle-cuda` feature"
    } else {
        "move the tensors to Device::Cpu or a CUDA device"
    };
    Error::Msg(format!(
        "swiglu: {what} tensors are not supported by the swiglu candle op ({hint})"
    ))
    .bt()
}

#[cfg(feature = "candle-cuda")]
mod cuda;

/// Without `candle-cuda`: CUDA storage is refused.
#[cfg(not(feature = "candle-cuda"))]
mod cuda {
    use super::{GluOp, unsupported_device};
    use candle_core::{CudaStorage, Layout, Result, Shape, Tensor};

    impl GluOp {
        pub(super) fn cuda_fwd_any(
            &self,
            _: (&CudaStorage, &Layout),
            _: (&CudaStorage, &Layout),
            _: Option<(&CudaStorage, &Layout)>,
        ) -> Result<(CudaStorage, Shape)> {
            Err(unsupported_device("CUDA"))
        }

        pub(super) fn cuda_bwd_any(
            &self,
            _: &Tensor,
            _: &Tensor,
            _: Option<&Tensor>,
            _: &Tensor,
        ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
            Err(unsupported_device("CUDA"))
        }
    }
}

/// All inputs of the op must share x's dtype.
fn check_dtypes(
    x: candle_core::DType,
    a: candle_core::DType,
    b: Option<candle_core::DType>,
) -> Result<()> {
    for (d, what) in [(Some(a), "weight"), (b, "weight/bias")] {
        if let Some(d) = d {
            if d != x {
                bail!("swiglu: all inputs must have one dtype: x is {x:?}, a {what} is {d:?}")
            }
        }
    }
    Ok(())
}

/// How the op's tensor inputs are arranged.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Inputs {
    /// `(x, gate [N,K], up [N,K])`.
    Separate,
    /// `(x, gate_up [2N,K])`.
    Merged,
    /// `(x, gate_up [2N,K], bias [2N])`.
    MergedBias,
}

/// The fused gated-FFN candle op. One is made per call, so what the forward
/// pass saves belongs to that call's graph node.
struct GluOp {
    act: Activation,
    inputs: Inputs,
    mode: SaveMode,
    /// Whether candle will keep this node for backprop (save state then).
    track: bool,
    saved: Mutex<Option<Box<dyn Any + Send + Sync>>>,
}

/// A contiguous CPU slice of a tensor's storage.
fn cpu_slice<'s, T: WithDType>(s: &'s CpuStorage, l: &Layout, what: &str) -> Result<&'s [T]> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| {
        Error::Msg(format!("swiglu: {what} must be contiguous (layout {l:?})")).bt()
    })?;
    Ok(&s.as_slice::<T>()?[a..b])
}

fn storage_slice<'s, T: WithDType>(s: &'s Storage, l: &Layout, what: &str) -> Result<&'s [T]> {
    match s {
        Storage::Cpu(c) => cpu_slice(c, l, what),
        Storage::Cuda(_) => Err(unsupported_device("CUDA")),
        Storage::Metal(_) => Err(unsupported_device("Metal")),
    }
}

impl GluOp {
    fn new(act: Activation, inputs: Inputs, mode: SaveMode, args: &[&Tensor]) -> Self {
        Self {
            act,
            inputs,
            mode,
            track: args.iter().any(|t| t.track_op()),
            saved: Mutex::new(None),
        }
    }

    /// (K, N) from the shapes of x, the first weight and the op's second
    /// input (`second`: checked only when it is the merged bias; the up
    /// weight of separate inputs is checked where the weights are built).
    fn dims(&self, x: &[usize], w: &[usize], second: Option<&[usize]>) -> Result<(usize, usize)> {
        let bias = second.filter(|_| self.inputs == Inputs::MergedBias);
        let Some(&k) = x.last() else {
            bail!("swiglu: x must have at least one dimension ([.., K]), got a scalar")
        };
        let (rows, wk) = match *w {
            [r, c] => (r, c),
            _ => bail!("swiglu: weights must be 2-D [N, K] (or [2N, K] merged), got {w:?}"),
        };
        if wk != k {
            bail!("swiglu: x is [.., {k}] but the weights are {w:?} (expected [.., {k}])")
        }
        let n = match self.inputs {
            Inputs::Separate => rows,
            Inputs::Merged | Inputs::MergedBias => {
                if rows % 2 != 0 {
                    bail!("swiglu: merged gate_up weight must be [2N, K], got {w:?}")
                }
                rows / 2
            }
        };
        if let Some(b) = bias {
            if b != [2 * n] {
                bail!("swiglu: merged bias must be [2N] = [{}], got {b:?}", 2 * n)
            }
        }
        Ok((k, n))
    }

    fn weights<'s, T: Elem>(
        &self,
        a: &'s [T],
        b: Option<&'s [T]>,
        k: usize,
        n: usize,
    ) -> Result<GluWeights<'s, T>> {
        match (self.inputs, b) {
            (Inputs::Separate, Some(up)) => GluWeights::new(a, up, k, n, WeightLayout::NK),
            (Inputs::Merged, _) => GluWeights::from_gate_up(a, k, n),
            (Inputs::MergedBias, Some(bias)) => {
                let (bg, bu) = bias.split_at(n.min(bias.len()));
                GluWeights::from_gate_up(a, k, n).and_then(|w| w.with_biases(Some(bg), Some(bu)))
            }
            _ => bail!(
                "swiglu: internal error: op inputs {:?} without their second weight",
                self.inputs
            ),
        }
        .map_err(glu_err)
    }

    fn fwd<T: Elem>(
        &self,
        x: (&CpuStorage, &Layout),
        a: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let (k, n) = self.dims(x.1.dims(), a.1.dims(), b.map(|b| b.1.dims()))?;
        let xs = cpu_slice::<T>(x.0, x.1, "x")?;
        let as_ = cpu_slice::<T>(a.0, a.1, "weight")?;
        let bs = b.map(|b| cpu_slice::<T>(b.0, b.1, "weight")).transpose()?;
        let w = self.weights(as_, bs, k, n)?;
        let x_dims = x.1.dims();
        let (_, mn) = out_len::<T>(x_dims, k, n)?;
        let mut out = vec![T::default(); mn];
        if self.track {
            let saved = cpu::forward_train(xs, x_dims, &w, self.act, self.mode, &mut out)
                .map_err(glu_err)?;
            *self.saved.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(saved));
        } else {
            cpu::forward(xs, x_dims, &w, self.act, &mut out).map_err(glu_err)?;
        }
        let mut out_dims = x_dims.to_vec();
        *out_dims.last_mut().expect("x has a last dim") = n;
        Ok((T::to_cpu_storage_owned(out), Shape::from(out_dims)))
    }

    fn fwd_any(
        &self,
        x: (&CpuStorage, &Layout),
        a: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let dt = x.0.dtype();
        check_dtypes(dt, a.0.dtype(), b.map(|b| b.0.dtype()))?;
        match x.0 {
            CpuStorage::F32(_) => self.fwd::<f32>(x, a, b),
            CpuStorage::F16(_) => self.fwd::<half::f16>(x, a, b),
            CpuStorage::BF16(_) => self.fwd::<half::bf16>(x, a, b),
            _ => bail!("swiglu: unsupported dtype {dt:?} (f32, f16 and bf16 are)"),
        }
    }

    /// Gradients for (x, a, b) as tensors.
    fn bwd_t<T: Elem>(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: Option<&Tensor>,
        grad: &Tensor,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (k, n) = self.dims(x.dims(), a.dims(), b.map(|b| b.dims()))?;
        let (xs, xl) = x.storage_and_layout();
        let (as_, al) = a.storage_and_layout();
        let bsl = b.map(|b| b.storage_and_layout());
        let (gs, gl) = grad.storage_and_layout();
        let xv = storage_slice::<T>(&xs, xl, "x")?;
        let av = storage_slice::<T>(&as_, al, "weight")?;
        let bv = match &bsl {
            Some((s, l)) => Some(storage_slice::<T>(s, l, "weight")?),
            None => None,
        };
        let gv = storage_slice::<T>(&gs, gl, "output gradient")?;
        let w = self.weights(av, bv, k, n)?;
        let x_dims = x.dims();
        let guard = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        let grads: Grads<T> = match guard.as_ref().and_then(|s| s.downcast_ref::<Saved<T>>()) {
            Some(saved) => cpu::backward(xv, x_dims, &w, self.act, saved, gv),
            None => {
                // Not saved (should not happen): recompute the pre-activations.
                let mut scratch = vec![T::default(); gv.len()];
                cpu::forward_train(xv, x_dims, &w, self.act, SaveMode::Recompute, &mut scratch)
                    .and_then(|s| cpu::backward(xv, x_dims, &w, self.act, &s, gv))
            }
        }
        .map_err(glu_err)?;
        drop(guard);
        let dev = x.device();
        let dx = Tensor::from_vec(grads.dx, x.shape(), dev)?;
        Ok(match self.inputs {
            Inputs::Separate => (
                dx,
                Tensor::from_vec(grads.d_w_gate, (n, k), dev)?,
                Some(Tensor::from_vec(grads.d_w_up, (n, k), dev)?),
            ),
            Inputs::Merged | Inputs::MergedBias => {
                let mut dw = grads.d_w_gate;
                dw.extend_from_slice(&grads.d_w_up);
                let dw = Tensor::from_vec(dw, (2 * n, k), dev)?;
                let db = match (grads.d_b_gate, grads.d_b_up) {
                    (Some(mut g), Some(u)) => {
                        g.extend_from_slice(&u);
                        Some(Tensor::from_vec(g, 2 * n, dev)?)
                    }
                    _ => None,
                };
                (dx, dw, db)
            }
        })
    }

    fn bwd_any(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: Option<&Tensor>,
        grad: &Tensor,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        if x.device().is_cuda() {
            return self.cuda_bwd_any(x, a, b, grad);
        }
        match x.dtype() {
            candle_core::DType::F32 => self.bwd_t::<f32>(x, a, b, grad),
            candle_core::DType::F16 => self.bwd_t::<half::f16>(x, a, b, grad),
            candle_core::DType::BF16 => self.bwd_t::<half::bf16>(x, a, b, grad),
            dt => bail!("swiglu: unsupported dtype {dt:?} (f32, f16 and bf16 are)"),
        }
    }
}

const OP_NAME: &str = "swiglu-fused-glu";

impl CustomOp2 for GluOp {
    fn name(&self) -> &'static str {
        OP_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd_any((s1, l1), (s2, l2), None)
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.cuda_fwd_any((s1, l1), (s2, l2), None)
    }

    fn metal_fwd(
        &self,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
    ) -> Result<(MetalStorage, Shape)> {
        Err(unsupported_device("Metal"))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, da, _) = self.bwd_any(x, a, None, grad)?;
        Ok((Some(dx), Some(da)))
    }
}

impl CustomOp3 for GluOp {
    fn name(&self) -> &'static str {
        OP_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd_any((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.cuda_fwd_any((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn metal_fwd(
        &self,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
    ) -> Result<(MetalStorage, Shape)> {
        Err(unsupported_device("Metal"))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, da, db) = self.bwd_any(x, a, Some(b), grad)?;
        Ok((Some(dx), Some(da), db))
    }
}

/// All on the CPU, or (with `candle-cuda`) all on one CUDA device.
fn check_devices(ts: &[&Tensor]) -> Result<()> {
    for t in ts {
        let d = t.device();
        if !(d.is_cpu() || cfg!(feature = "candle-cuda") && d.is_cuda()) {
            return Err(unsupported_device(&format!("{:?}", d.location())));
        }
        if !d.same_device(ts[0].device()) {
            bail!(
                "swiglu: all tensors must be on one device, got {:?} and {:?}",
                ts[0].device().location(),
                d.location()
            )
        }
    }
    Ok(())
}

/// The fused gated FFN as a function: `act(x·gateᵀ) ⊙ (x·upᵀ)` with `x`
/// `[.., K]` and `gate`, `up` `[N, K]` (`nn.Linear` weights), giving
/// `[.., N]`. Differentiable (see the [module docs](self)); saves the
/// pre-activations for the backward pass when a `Var` is involved.
///
/// `gate` is the projection that goes through the activation. LLaMA's
/// `w2(silu(w1·x) ⊙ w3·x)` is `glu(x, w1, w3, Silu)` followed by `w2`.
/// PyTorch's `F.glu(x·Wᵀ)` splits its input `[a | b]` and returns
/// `a ⊙ σ(b)`: it gates the **second** half, so with `W = [Wa; Wb]` it is
/// `glu(x, Wb, Wa, Sigmoid)`:
///
/// ```
/// use candle_core::{D, Device, Tensor};
/// use swiglu::{Activation, candle::glu};
///
/// let dev = Device::Cpu;
/// let x = Tensor::randn(0f32, 1.0, (3, 8), &dev)?;
/// let w = Tensor::randn(0f32, 0.3, (2 * 5, 8), &dev)?; // one Linear, out = 2N
/// // PyTorch: F.glu(x @ w.T, dim=-1) = a * sigmoid(b)
/// let ab = x.matmul(&w.t()?)?;
/// let (a, b) = (ab.narrow(D::Minus1, 0, 5)?, ab.narrow(D::Minus1, 5, 5)?);
/// let torch_glu = (a * candle_nn::ops::sigmoid(&b)?)?;
/// // Here: the gate is the second half of w, the up projection the first.
/// let (wa, wb) = (w.narrow(0, 0, 5)?, w.narrow(0, 5, 5)?);
/// let ours = glu(&x, &wb, &wa, Activation::Sigmoid)?;
/// let diff = (ours - torch_glu)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(diff < 1e-5);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
///
/// A candle error for shapes that disagree, mixed or unsupported dtypes, or
/// tensors on different or unsupported devices.
pub fn glu(x: &Tensor, gate: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
    GatedFfn::new(gate.clone(), up.clone(), act)?.forward(x)
}

#[derive(Clone, Debug)]
enum WeightParams {
    Separate { gate: Tensor, up: Tensor },
    Merged(Tensor),
}

#[derive(Clone, Debug)]
enum BiasParams {
    None,
    Separate(Option<Tensor>, Option<Tensor>),
    Merged(Tensor),
}

/// The gated part of a gated FFN, `act(x·Wgᵀ + bg) ⊙ (x·Wuᵀ + bu)`, as one
/// fused candle op (a candle [`Module`]). See the [module docs](self).
///
/// In place of candle's unfused `silu(gate_proj(x)) * up_proj(x)`:
///
/// ```
/// use candle_core::{D, DType, Device, Module, Tensor};
/// use swiglu::{Activation, candle::GatedFfn};
///
/// let dev = Device::Cpu;
/// let w = || Tensor::randn(0f32, 0.2, (24, 16), &dev); // [N, K]
/// let (g, u) = (w()?, w()?);
/// let x = Tensor::randn(0f32, 1.0, (2, 3, 16), &dev)?; // [batch, seq, K]
/// let unfused = (x.broadcast_matmul(&g.t()?)?.silu()? * x.broadcast_matmul(&u.t()?)?)?;
/// let fused = GatedFfn::new(g, u, Activation::Silu)?.forward(&x)?; // one op, [2, 3, N]
/// let diff = (fused - unfused)?.abs()?.flatten_all()?.max(D::Minus1)?.to_scalar::<f32>()?;
/// assert!(diff < 1e-5);
/// # let _ = DType::F32;
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct GatedFfn {
    weights: WeightParams,
    bias: BiasParams,
    act: Activation,
    mode: SaveMode,
    k: usize,
    n: usize,
}

fn matrix(t: &Tensor, what: &str) -> Result<(usize, usize)> {
    match *t.dims() {
        [r, c] if r > 0 && c > 0 => Ok((r, c)),
        _ => bail!(
            "swiglu: {what} must be a non-empty 2-D [out, in] tensor, got {:?}",
            t.dims()
        ),
    }
}

impl GatedFfn {
    /// From separate `gate_proj` and `up_proj` weights, each `[N, K]`.
    ///
    /// ```
    /// use candle_core::{Device, Module, Tensor};
    /// use swiglu::{Activation, candle::GatedFfn};
    ///
    /// let dev = Device::Cpu;
    /// let ones = || Tensor::ones((4, 3), candle_core::DType::F32, &dev);
    /// let ffn = GatedFfn::new(ones()?, ones()?, Activation::Identity)?; // K = 3, N = 4
    /// assert_eq!((ffn.k(), ffn.n()), (3, 4));
    /// let y = ffn.forward(&Tensor::new(&[[1f32, 1.0, 1.0]], &dev)?)?;
    /// assert_eq!(y.to_vec2::<f32>()?, [[9.0; 4]]); // (1+1+1) · (1+1+1)
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A candle error if the shapes are not equal 2-D `[N, K]`, the dtypes
    /// differ or are not f32/f16/bf16, or the activation is invalid.
    pub fn new(gate: Tensor, up: Tensor, act: Activation) -> Result<Self> {
        let (n, k) = matrix(&gate, "gate weight")?;
        if up.dims() != gate.dims() {
            bail!(
                "swiglu: up weight {:?} must have the gate weight's shape {:?}",
                up.dims(),
                gate.dims()
            )
        }
        Self::checked(WeightParams::Separate { gate, up }, act, k, n)
    }

    /// From one merged `gate_up_proj` weight `[2N, K]` (rows `0..N` gate).
    ///
    /// ```
    /// use candle_core::{Device, Module, Tensor};
    /// use swiglu::{Activation, candle::GatedFfn};
    ///
    /// let dev = Device::Cpu;
    /// // N = 1, K = 2: gate row [1, 0], up row [0, 1].
    /// let gu = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &dev)?;
    /// let ffn = GatedFfn::from_gate_up(gu, Activation::Relu)?;
    /// assert!(ffn.is_merged() && ffn.n() == 1);
    /// let y = ffn.forward(&Tensor::new(&[[2f32, 3.0], [-2.0, 3.0]], &dev)?)?;
    /// assert_eq!(y.to_vec2::<f32>()?, [[6.0], [0.0]]); // relu(x0) · x1
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and if the first dim is odd.
    pub fn from_gate_up(gate_up: Tensor, act: Activation) -> Result<Self> {
        let (two_n, k) = matrix(&gate_up, "gate_up weight")?;
        if two_n % 2 != 0 {
            bail!(
                "swiglu: gate_up weight must be [2N, K], got {:?}",
                gate_up.dims()
            )
        }
        Self::checked(WeightParams::Merged(gate_up), act, k, two_n / 2)
    }

    fn checked(weights: WeightParams, act: Activation, k: usize, n: usize) -> Result<Self> {
        act.validate().map_err(glu_err)?;
        let s = Self {
            weights,
            bias: BiasParams::None,
            act,
            mode: SaveMode::PreActivations,
            k,
            n,
        };
        let ws = s.tensors();
        for t in &ws[1..] {
            if t.dtype() != ws[0].dtype() {
                bail!(
                    "swiglu: weights have different dtypes: {:?} and {:?}",
                    ws[0].dtype(),
                    t.dtype()
                )
            }
        }
        Ok(s)
    }

    fn tensors(&self) -> Vec<&Tensor> {
        let mut v = match &self.weights {
            WeightParams::Separate { gate, up } => vec![gate, up],
            WeightParams::Merged(t) => vec![t],
        };
        match &self.bias {
            BiasParams::None => {}
            BiasParams::Separate(g, u) => v.extend(g.iter().chain(u.iter())),
            BiasParams::Merged(b) => v.push(b),
        }
        v
    }

    fn check_bias(&self, b: &Tensor, len: usize, what: &str) -> Result<()> {
        if b.dims() != [len] {
            bail!("swiglu: {what} must be [{len}], got {:?}", b.dims())
        }
        let dt = self.tensors()[0].dtype();
        if b.dtype() != dt {
            bail!(
                "swiglu: {what} is {:?} but the weights are {dt:?}",
                b.dtype()
            )
        }
        Ok(())
    }

    /// Attaches gate and up biases (`[N]` each; either may be absent).
    ///
    /// ```
    /// use candle_core::{DType, Device, Module, Tensor};
    /// use swiglu::{Activation, candle::GatedFfn};
    ///
    /// let dev = Device::Cpu;
    /// let w = || Tensor::zeros((2, 3), DType::F32, &dev);
    /// let ffn = GatedFfn::new(w()?, w()?, Activation::Identity)?
    ///     .with_biases(Some(Tensor::new(&[2f32, 3.0], &dev)?), None)?;
    /// // Zero weights and no up bias: the up side is 0 whatever x is.
    /// let y = ffn.forward(&Tensor::ones((1, 3), DType::F32, &dev)?)?;
    /// assert_eq!(y.to_vec2::<f32>()?, [[0.0, 0.0]]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A candle error if a bias is not `[N]` or not of the weights' dtype.
    pub fn with_biases(mut self, gate: Option<Tensor>, up: Option<Tensor>) -> Result<Self> {
        for (b, what) in [(&gate, "gate bias"), (&up, "up bias")] {
            if let Some(b) = b {
                self.check_bias(b, self.n, what)?;
            }
        }
        self.bias = if gate.is_none() && up.is_none() {
            BiasParams::None
        } else {
            BiasParams::Separate(gate, up)
        };
        Ok(self)
    }

    /// Attaches a merged `gate_up_proj` bias `[2N]` (gate half first).
    ///
    /// ```
    /// use candle_core::{DType, Device, Module, Tensor};
    /// use swiglu::{Activation, candle::GatedFfn};
    ///
    /// let dev = Device::Cpu;
    /// let gu = Tensor::zeros((4, 3), DType::F32, &dev)?; // N = 2
    /// let ffn = GatedFfn::from_gate_up(gu, Activation::Identity)?
    ///     .with_merged_bias(Tensor::new(&[2f32, 3.0, 5.0, 7.0], &dev)?)?;
    /// let y = ffn.forward(&Tensor::ones((1, 3), DType::F32, &dev)?)?;
    /// assert_eq!(y.to_vec2::<f32>()?, [[10.0, 21.0]]); // (0 + bg) · (0 + bu)
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A candle error if it is not `[2N]` or not of the weights' dtype.
    pub fn with_merged_bias(mut self, bias: Tensor) -> Result<Self> {
        self.check_bias(&bias, 2 * self.n, "gate_up bias")?;
        self.bias = BiasParams::Merged(bias);
        Ok(self)
    }

    /// What the forward pass saves for the backward pass (default
    /// [`SaveMode::PreActivations`]). The gradients are the same either way;
    /// [`SaveMode::Recompute`] trades the `2·M·N·4` saved bytes for a second
    /// forward GEMM pass in the backward.
    ///
    /// ```
    /// use candle_core::{DType, Device, Module, Tensor, Var};
    /// use swiglu::{Activation, candle::GatedFfn, cpu::SaveMode};
    ///
    /// let dev = Device::Cpu;
    /// let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 8), &dev)?)?;
    /// let w = || Tensor::randn(0f32, 0.3, (6, 8), &dev);
    /// let ffn = GatedFfn::new(w()?, w()?, Activation::Silu)?;
    /// let grad = |f: &GatedFfn| -> candle_core::Result<Tensor> {
    ///     let g = f.forward(x.as_tensor())?.sum_all()?.backward()?;
    ///     Ok(g.get(&x).expect("x has a gradient").clone())
    /// };
    /// let saved = grad(&ffn)?;
    /// let recomputed = grad(&ffn.clone().with_save_mode(SaveMode::Recompute))?;
    /// assert_eq!(saved.to_vec2::<f32>()?, recomputed.to_vec2::<f32>()?);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_save_mode(mut self, mode: SaveMode) -> Self {
        self.mode = mode;
        self
    }

    /// Loads (or, from a [`VarMap`](candle_nn::VarMap)-backed builder,
    /// creates) the weights under `vb`: the merged `gate_up_proj.weight`
    /// (`[2N, K]`) if present, else `gate_proj.weight` and `up_proj.weight`
    /// (`[N, K]` each); with `bias`, the matching `.bias` tensors. New
    /// variables are initialised as [`candle_nn::linear()`] does. `hidden` is
    /// K (the model width), `intermediate` is N.
    ///
    /// ```
    /// use candle_core::{DType, Device, Tensor};
    /// use candle_nn::VarBuilder;
    /// use std::collections::HashMap;
    /// use swiglu::{Activation, candle::GatedFfn};
    ///
    /// let dev = Device::Cpu;
    /// // A merged checkpoint (Phi-3 style): `gate_up_proj.weight` is [2N, K].
    /// let mut ts = HashMap::new();
    /// ts.insert("mlp.gate_up_proj.weight".to_string(), Tensor::zeros((10, 4), DType::F32, &dev)?);
    /// let vb = VarBuilder::from_tensors(ts, DType::F32, &dev);
    /// let ffn = GatedFfn::load(vb.pp("mlp"), 4, 5, Activation::Silu, false)?;
    /// assert!(ffn.is_merged() && ffn.k() == 4 && ffn.n() == 5);
    /// assert_eq!(ffn.activation(), Activation::Silu);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The builder's error for a missing tensor or wrong shape, or as
    /// [`new`](Self::new).
    pub fn load(
        vb: VarBuilder,
        hidden: usize,
        intermediate: usize,
        act: Activation,
        bias: bool,
    ) -> Result<Self> {
        let (k, n) = (hidden, intermediate);
        let init_w = candle_nn::init::DEFAULT_KAIMING_NORMAL;
        let bound = 1.0 / (k as f64).sqrt();
        let init_b = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        if vb.contains_tensor("gate_up_proj.weight") {
            let Some(n2) = n.checked_mul(2) else {
                bail!("swiglu: intermediate size {n}: 2N overflows usize")
            };
            let vb = vb.pp("gate_up_proj");
            let f = Self::from_gate_up(vb.get_with_hints((n2, k), "weight", init_w)?, act)?;
            if bias {
                f.with_merged_bias(vb.get_with_hints(n2, "bias", init_b)?)
            } else {
                Ok(f)
            }
        } else {
            let (vg, vu) = (vb.pp("gate_proj"), vb.pp("up_proj"));
            let f = Self::new(
                vg.get_with_hints((n, k), "weight", init_w)?,
                vu.get_with_hints((n, k), "weight", init_w)?,
                act,
            )?;
            if bias {
                f.with_biases(
                    Some(vg.get_with_hints(n, "bias", init_b)?),
                    Some(vu.get_with_hints(n, "bias", init_b)?),
                )
            } else {
                Ok(f)
            }
        }
    }

    /// Input features K.
    ///
    /// ```
    /// # use candle_core::{DType, Device, Tensor};
    /// # use swiglu::{Activation, candle::GatedFfn};
    /// let w = Tensor::zeros((6, 4), DType::F32, &Device::Cpu)?; // [N, K]
    /// let ffn = GatedFfn::new(w.clone(), w, Activation::Silu)?;
    /// assert_eq!((ffn.k(), ffn.n()), (4, 6));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn k(&self) -> usize {
        self.k
    }
    /// Hidden features N.
    ///
    /// ```
    /// # use candle_core::{DType, Device, Tensor};
    /// # use swiglu::{Activation, candle::GatedFfn};
    /// let gu = Tensor::zeros((12, 4), DType::F32, &Device::Cpu)?; // [2N, K]
    /// assert_eq!(GatedFfn::from_gate_up(gu, Activation::Silu)?.n(), 6);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn n(&self) -> usize {
        self.n
    }
    /// The gate activation.
    ///
    /// ```
    /// # use candle_core::{DType, Device, Tensor};
    /// # use swiglu::{Activation, candle::GatedFfn};
    /// let w = Tensor::zeros((6, 4), DType::F32, &Device::Cpu)?;
    /// let geglu = GatedFfn::new(w.clone(), w, Activation::GeluTanh)?;
    /// assert_eq!(geglu.activation(), Activation::GeluTanh);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn activation(&self) -> Activation {
        self.act
    }
    /// Whether the weights are one merged `[2N, K]` tensor.
    ///
    /// ```
    /// # use candle_core::{DType, Device, Tensor};
    /// # use swiglu::{Activation, candle::GatedFfn};
    /// let w = Tensor::zeros((6, 4), DType::F32, &Device::Cpu)?;
    /// assert!(!GatedFfn::new(w.clone(), w.clone(), Activation::Silu)?.is_merged());
    /// assert!(GatedFfn::from_gate_up(w, Activation::Silu)?.is_merged());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn is_merged(&self) -> bool {
        matches!(self.weights, WeightParams::Merged(_))
    }
}

impl Module for GatedFfn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut all = self.tensors();
        all.push(x);
        check_devices(&all)?;
        let x = x.contiguous()?;
        let bias = match &self.bias {
            BiasParams::None => None,
            BiasParams::Merged(b) => Some(b.contiguous()?),
            BiasParams::Separate(g, u) => {
                let zeros = || Tensor::zeros(self.n, x.dtype(), x.device());
                let g = g.clone().map_or_else(zeros, Ok)?;
                let u = u.clone().map_or_else(zeros, Ok)?;
                Some(Tensor::cat(&[g, u], 0)?)
            }
        };
        match (&self.weights, bias) {
            (WeightParams::Separate { gate, up }, None) => {
                let (g, u) = (gate.contiguous()?, up.contiguous()?);
                let op = GluOp::new(self.act, Inputs::Separate, self.mode, &[&x, &g, &u]);
                x.apply_op3(&g, &u, op)
            }
            (WeightParams::Merged(gu), None) => {
                let gu = gu.contiguous()?;
                let op = GluOp::new(self.act, Inputs::Merged, self.mode, &[&x, &gu]);
                x.apply_op2(&gu, op)
            }
            (w, Some(b)) => {
                let gu = match w {
                    WeightParams::Separate { gate, up } => Tensor::cat(&[gate, up], 0)?,
                    WeightParams::Merged(gu) => gu.contiguous()?,
                };
                let op = GluOp::new(self.act, Inputs::MergedBias, self.mode, &[&x, &gu, &b]);
                x.apply_op3(&gu, &b, op)
            }
        }
    }
}

/// A LLaMA-style MLP, `down_proj(act(gate_proj(x)) ⊙ up_proj(x))`, with the
/// gated part fused ([`GatedFfn`]) and `down_proj` a [`candle_nn::Linear`]:
/// a drop-in replacement for the `Mlp` of candle-transformers' LLaMA,
/// Mistral or Qwen2 (with [`Activation::Silu`]). It is a candle [`Module`];
/// see [`SwiGluMlp::load`] for loading it under the checkpoint names.
///
/// ```
/// use candle_core::{DType, Device, Module, Tensor};
/// use candle_nn::{VarBuilder, VarMap};
/// use swiglu::{Activation, candle::SwiGluMlp};
///
/// let varmap = VarMap::new();
/// let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
/// let mlp = SwiGluMlp::load(vb.pp("mlp"), 16, 40, Activation::Silu, false)?;
/// let h = Tensor::ones((1, 4, 16), DType::F32, &Device::Cpu)?;
/// let y = (&h + mlp.forward(&h)?)?; // the residual branch of a transformer block
/// assert_eq!(y.dims(), &[1, 4, 16]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SwiGluMlp {
    ffn: GatedFfn,
    down: candle_nn::Linear,
}

impl SwiGluMlp {
    /// From a [`GatedFfn`] (`K → N`) and a down projection (`N → K`).
    ///
    /// ```
    /// use candle_core::{DType, Device, Module, Tensor};
    /// use swiglu::{Activation, candle::{GatedFfn, SwiGluMlp}};
    ///
    /// let dev = Device::Cpu;
    /// let (k, n) = (4, 6);
    /// let w = Tensor::randn(0f32, 0.5, (n, k), &dev)?;
    /// let ffn = GatedFfn::new(w.clone(), w, Activation::Silu)?;
    /// let down = candle_nn::Linear::new(Tensor::randn(0f32, 0.5, (k, n), &dev)?, None);
    /// let mlp = SwiGluMlp::new(ffn, down);
    /// assert_eq!(mlp.forward(&Tensor::ones((2, k), DType::F32, &dev)?)?.dims(), &[2, k]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn new(ffn: GatedFfn, down: candle_nn::Linear) -> Self {
        Self { ffn, down }
    }

    /// Loads (or creates) `gate_proj`/`up_proj` (or `gate_up_proj`) and
    /// `down_proj` under `vb`, as [`GatedFfn::load`]; `bias` applies to all
    /// three projections.
    ///
    /// ```
    /// use candle_core::{DType, Device};
    /// use candle_nn::{VarBuilder, VarMap};
    /// use swiglu::{Activation, candle::SwiGluMlp};
    ///
    /// let varmap = VarMap::new(); // fresh, trainable variables
    /// let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    /// let mlp = SwiGluMlp::load(vb.pp("model.layers.0.mlp"), 16, 40, Activation::Silu, false)?;
    /// let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    /// names.sort();
    /// assert_eq!(names, [
    ///     "model.layers.0.mlp.down_proj.weight",
    ///     "model.layers.0.mlp.gate_proj.weight",
    ///     "model.layers.0.mlp.up_proj.weight",
    /// ]);
    /// # let _ = mlp;
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`GatedFfn::load`].
    pub fn load(
        vb: VarBuilder,
        hidden: usize,
        intermediate: usize,
        act: Activation,
        bias: bool,
    ) -> Result<Self> {
        let ffn = GatedFfn::load(vb.clone(), hidden, intermediate, act, bias)?;
        let down = candle_nn::linear_b(intermediate, hidden, bias, vb.pp("down_proj"))?;
        Ok(Self { ffn, down })
    }

    /// The fused gated part.
    ///
    /// ```
    /// # use candle_core::{DType, Device};
    /// # use candle_nn::{VarBuilder, VarMap};
    /// # use swiglu::{Activation, candle::SwiGluMlp};
    /// # let varmap = VarMap::new();
    /// # let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    /// let mlp = SwiGluMlp::load(vb, 16, 40, Activation::Silu, false)?;
    /// assert_eq!((mlp.gated().k(), mlp.gated().n()), (16, 40));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn gated(&self) -> &GatedFfn {
        &self.ffn
    }

    /// The down projection.
    ///
    /// ```
    /// # use candle_core::{DType, Device};
    /// # use candle_nn::{VarBuilder, VarMap};
    /// # use swiglu::{Activation, candle::SwiGluMlp};
    /// # let varmap = VarMap::new();
    /// # let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    /// let mlp = SwiGluMlp::load(vb, 16, 40, Activation::Silu, false)?;
    /// assert_eq!(mlp.down().weight().dims(), &[16, 40]); // [K, N]: back to the model width
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn down(&self) -> &candle_nn::Linear {
        &self.down
    }
}

impl Module for SwiGluMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.down.forward(&self.ffn.forward(x)?)
    }
}
