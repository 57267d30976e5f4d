//! The op on candle's CUDA storage (feature `candle-cuda`): this crate's
//! [`CudaGlu`] runs on the candle device's own stream, reading the inputs
//! in place and writing fresh device buffers that become candle storage.
//! Nothing is copied to the host.

use super::{Elem, GluOp, Inputs, check_dtypes, glu_err, out_len};
use crate::cuda::{CudaElement, CudaGlu, DeviceGluWeights, DeviceGrads, DeviceSaved, Path};
use crate::types::WeightLayout;
use candle_core::cuda::{CudaDType, CudaDevice};
use candle_core::op::BackpropOp;
use candle_core::{CudaStorage, DType, Error, Layout, Result, Shape, Storage, Tensor, bail};
use cudarc::driver::CudaView;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// An element type both sides handle on the device.
pub(super) trait CudaElem: Elem + CudaElement + CudaDType {}
impl<T: Elem + CudaElement + CudaDType> CudaElem for T {}

/// The [`CudaGlu`] for a candle device's GPU and stream, made on first use
/// and kept for the life of the process (it holds the stream, a cuBLAS
/// handle and the loaded kernels). Keyed by (GPU ordinal, stream handle),
/// not by candle's device id, so reopening a device reuses the entry
/// instead of adding one each time. `Device::new_cuda` devices use the
/// per-thread default stream, one handle value that names a different
/// stream on every thread: those entries are also keyed by the thread, so
/// that two threads never share a cuBLAS handle (and its workspace) while
/// running on different streams. Entries are never removed: a program that
/// runs the op on `Device::new_cuda` devices from many short-lived threads
/// keeps one handle (cuBLAS handle, loaded kernels, scratch) per thread
/// that ever ran it; a `Device::new_cuda_with_stream` device's one handle
/// is shared by all threads instead.
fn glu_for(dev: &CudaDevice) -> Result<Arc<CudaGlu>> {
    /// (GPU ordinal, stream handle, thread for the per-thread stream) → its `CudaGlu`.
    type Key = (usize, usize, Option<std::thread::ThreadId>);
    static GLUS: OnceLock<Mutex<HashMap<Key, Arc<CudaGlu>>>> = OnceLock::new();
    // cudarc's `CU_STREAM_PER_THREAD` handle value.
    const PER_THREAD: usize = 0x2;
    let stream = dev.cuda_stream();
    let handle = stream.cu_stream() as usize;
    let thread = (handle == PER_THREAD).then(|| std::thread::current().id());
    let key = (stream.context().ordinal(), handle, thread);
    let mut map = GLUS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(g) = map.get(&key) {
        return Ok(g.clone());
    }
    let g = Arc::new(CudaGlu::with_stream(stream).map_err(glu_err)?);
    map.insert(key, g.clone());
    Ok(g)
}

/// The contiguous part of a tensor's CUDA storage that its layout covers.
fn view<'s, T: CudaElem>(s: &'s CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'s, T>> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| {
        Error::Msg(format!("swiglu: {what} must be contiguous (layout {l:?})")).bt()
    })?;
    Ok(s.as_cuda_slice::<T>()?.slice(a..b))
}

fn cuda_of<'s>(s: &'s Storage, what: &str) -> Result<&'s CudaStorage> {
    match s {
        Storage::Cuda(c) => Ok(c),
        _ => bail!("swiglu: {what} is not on the CUDA device the op ran on"),
    }
}

fn tensor<T: CudaElem>(
    s: cudarc::driver::CudaSlice<T>,
    dev: &CudaDevice,
    shape: &[usize],
) -> Tensor {
    Tensor::from_storage(
        Storage::Cuda(CudaStorage::wrap_cuda_slice(s, dev.clone())),
        shape,
        BackpropOp::none(),
        false,
    )
}

impl GluOp {
    fn dev_weights<'s, T: CudaElem>(
        &self,
        a: CudaView<'s, T>,
        b: Option<CudaView<'s, T>>,
        k: usize,
        n: usize,
    ) -> Result<DeviceGluWeights<'s, T>> {
        match (self.inputs, b) {
            (Inputs::Separate, Some(up)) => DeviceGluWeights::new(a, up, k, n, WeightLayout::NK),
            (Inputs::Merged, _) => DeviceGluWeights::from_gate_up(a, k, n),
            (Inputs::MergedBias, Some(bias)) => {
                let (bg, bu) = bias.split_at(n.min(bias.len()));
                DeviceGluWeights::from_gate_up(a, k, n)
                    .and_then(|w| w.with_biases(Some(bg), Some(bu)))
            }
            _ => bail!(
                "swiglu: internal error: op inputs {:?} without their second weight",
                self.inputs
            ),
        }
        .map_err(glu_err)
    }

    fn cuda_fwd_t<T: CudaElem>(
        &self,
        x: (&CudaStorage, &Layout),
        a: (&CudaStorage, &Layout),
        b: Option<(&CudaStorage, &Layout)>,
    ) -> Result<(CudaStorage, Shape)> {
        let (k, n) = self.dims(x.1.dims(), a.1.dims(), b.map(|b| b.1.dims()))?;
        let dev = &x.0.device;
        let glu = glu_for(dev)?;
        // f32 follows candle's own switch for its f32 matmuls: tf32 tensor
        // cores only when the user allowed reduced precision there.
        glu.set_allow_tf32(candle_core::cuda::gemm_reduced_precision_f32());
        let xv = view::<T>(x.0, x.1, "x")?;
        let av = view::<T>(a.0, a.1, "weight")?;
        let bv = b.map(|b| view::<T>(b.0, b.1, "weight")).transpose()?;
        let w = self.dev_weights(av, bv, k, n)?;
        let x_dims = x.1.dims();
        let (_, mn) = out_len::<T>(x_dims, k, n)?;
        // SAFETY: uninitialised device memory of m·n elements; every path of
        // `forward` / `forward_train` writes all of it (the GPU tests poison
        // outputs with NaN and check every element), and on an error the
        // buffer is dropped unread.
        let mut out = unsafe { dev.alloc::<T>(mn) }?;
        if self.track {
            let saved = glu
                .forward_train(&xv, x_dims, &w, self.act, self.mode, &mut out)
                .map_err(glu_err)?;
            *self.saved.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(saved));
        } else {
            glu.forward(&xv, x_dims, &w, self.act, &mut out, Path::Auto)
                .map_err(glu_err)?;
        }
        let mut out_dims = x_dims.to_vec();
        *out_dims.last_mut().expect("x has a last dim") = n;
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev.clone()),
            Shape::from(out_dims),
        ))
    }

    pub(super) fn cuda_fwd_any(
        &self,
        x: (&CudaStorage, &Layout),
        a: (&CudaStorage, &Layout),
        b: Option<(&CudaStorage, &Layout)>,
    ) -> Result<(CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        let dt = x.0.dtype();
        check_dtypes(dt, a.0.dtype(), b.map(|b| b.0.dtype()))?;
        match dt {
            DType::F32 => self.cuda_fwd_t::<f32>(x, a, b),
            DType::F16 => self.cuda_fwd_t::<half::f16>(x, a, b),
            DType::BF16 => self.cuda_fwd_t::<half::bf16>(x, a, b),
            _ => bail!("swiglu: unsupported dtype {dt:?} (f32, f16 and bf16 are)"),
        }
    }

    fn cuda_bwd_t<T: CudaElem>(
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
        let xc = cuda_of(&xs, "x")?;
        let dev = &xc.device;
        let glu = glu_for(dev)?;
        // The same precision switch as the forward (it is shared by every
        // user of this device's CudaGlu, so read it again here).
        glu.set_allow_tf32(candle_core::cuda::gemm_reduced_precision_f32());
        let xv = view::<T>(xc, xl, "x")?;
        let av = view::<T>(cuda_of(&as_, "weight")?, al, "weight")?;
        let bv = match &bsl {
            Some((s, l)) => Some(view::<T>(cuda_of(s, "weight")?, l, "weight")?),
            None => None,
        };
        let gv = view::<T>(cuda_of(&gs, "output gradient")?, gl, "output gradient")?;
        let w = self.dev_weights(av, bv, k, n)?;
        let x_dims = x.dims();
        let (m, _) = out_len::<T>(x_dims, k, n)?;
        let mut grads = DeviceGrads::<T>::zeros(&glu, m, &w).map_err(glu_err)?;
        let guard = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        match guard
            .as_ref()
            .and_then(|s| s.downcast_ref::<DeviceSaved<T>>())
        {
            Some(saved) => {
                glu.backward_into(&xv, x_dims, &w, self.act, saved, &gv, &mut grads, false)
            }
            None => {
                // Not saved (should not happen): recompute.
                let mut scratch = dev.alloc_zeros::<T>(gv.len())?;
                glu.forward_train(
                    &xv,
                    x_dims,
                    &w,
                    self.act,
                    crate::cpu::SaveMode::Recompute,
                    &mut scratch,
                )
                .and_then(|s| {
                    glu.backward_into(&xv, x_dims, &w, self.act, &s, &gv, &mut grads, false)
                })
            }
        }
        .map_err(glu_err)?;
        drop(guard);
        let DeviceGrads {
            dx,
            d_w_gate,
            d_w_up,
            d_b_gate,
            d_b_up,
        } = grads;
        let dx = tensor(dx, dev, x_dims);
        let (dg, du) = (tensor(d_w_gate, dev, &[n, k]), tensor(d_w_up, dev, &[n, k]));
        Ok(match self.inputs {
            Inputs::Separate => (dx, dg, Some(du)),
            Inputs::Merged | Inputs::MergedBias => {
                let db = match (d_b_gate, d_b_up) {
                    (Some(g), Some(u)) => Some(Tensor::cat(
                        &[tensor(g, dev, &[n]), tensor(u, dev, &[n])],
                        0,
                    )?),
                    _ => None,
                };
                (dx, Tensor::cat(&[dg, du], 0)?, db)
            }
        })
    }

    pub(super) fn cuda_bwd_any(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: Option<&Tensor>,
        grad: &Tensor,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        match x.dtype() {
            DType::F32 => self.cuda_bwd_t::<f32>(x, a, b, grad),
            DType::F16 => self.cuda_bwd_t::<half::f16>(x, a, b, grad),
            DType::BF16 => self.cuda_bwd_t::<half::bf16>(x, a, b, grad),
            dt => bail!("swiglu: unsupported dtype {dt:?} (f32, f16 and bf16 are)"),
        }
    }
}
